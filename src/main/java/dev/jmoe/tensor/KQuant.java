package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;

/** Shared pieces of the 256-value "K" super-block formats. */
final class KQuant {
    private KQuant() {}

    static final int QK_K = 256;

    /**
     * Unpacks the 12-byte table of eight 6-bit scales and eight 6-bit mins used by Q4_K and Q5_K
     * (ggml's get_scale_min_k4): entries 0-3 sit in the low 6 bits of bytes 0-7, entries 4-7 take
     * their low 4 bits from bytes 8-11 and their top 2 bits from the spare bits of bytes 0-7.
     */
    static void scaleMins(MemorySegment src, long p, int[] sc, int[] mn) {
        int[] q = new int[12];
        for (int i = 0; i < 12; i++) q[i] = Num.u8(src, p + i);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                sc[j] = q[j] & 63;
                mn[j] = q[j + 4] & 63;
            } else {
                sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >>> 6) << 4);
                mn[j] = (q[j + 4] >>> 4) | ((q[j] >>> 6) << 4);
            }
        }
    }

    /** Packs eight 6-bit scales and mins into the 12-byte layout {@link #scaleMins} reads. */
    static void packScaleMins(int[] sc, int[] mn, MemorySegment dst, long p) {
        byte[] q = new byte[12];
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                q[j] |= (byte) sc[j];
                q[j + 4] |= (byte) mn[j];
            } else {
                q[j + 4] = (byte) ((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
                q[j - 4] |= (byte) ((sc[j] >>> 4) << 6);
                q[j] |= (byte) ((mn[j] >>> 4) << 6);
            }
        }
        for (int i = 0; i < 12; i++) dst.set(Num.BYTE, p + i, q[i]);
    }

    /**
     * Fits x ≈ scale·q − min with q in [0, nmax] and min ≥ 0 for one sub-block: start from the value
     * range, then alternate rounding and a least-squares refit, keeping the best squared error.
     * Returns {scale, min}.
     */
    static float[] fitScaleMin(float[] x, int off, int len, int nmax) {
        float lo = 0, hi = -Float.MAX_VALUE;
        for (int i = 0; i < len; i++) {
            lo = Math.min(lo, x[off + i]);
            hi = Math.max(hi, x[off + i]);
        }
        if (hi <= lo) return new float[] {0f, -lo};
        float scale = (hi - lo) / nmax, min = -lo;
        float bestScale = scale, bestMin = min, bestErr = error(x, off, len, nmax, scale, min);
        for (int it = 0; it < 4; it++) {
            double sq = 0, sq2 = 0, sx = 0, sxq = 0;
            for (int i = 0; i < len; i++) {
                int q = clamp(Num.roundf((x[off + i] + min) / scale), 0, nmax);
                sq += q;
                sq2 += (double) q * q;
                sx += x[off + i];
                sxq += (double) x[off + i] * q;
            }
            double det = len * sq2 - sq * sq;
            if (det <= 0) break;
            double a = (len * sxq - sq * sx) / det;
            double b = (sx - a * sq) / len; // x ≈ a·q + b, so min = −b
            if (b > 0) { // min would be negative: pin it at zero and refit the scale alone
                b = 0;
                a = sq2 > 0 ? sxq / sq2 : 0;
            }
            if (!(a > 0)) break;
            scale = (float) a;
            min = (float) -b;
            float err = error(x, off, len, nmax, scale, min);
            if (err < bestErr) {
                bestErr = err;
                bestScale = scale;
                bestMin = min;
            }
        }
        return new float[] {bestScale, bestMin};
    }

    private static float error(float[] x, int off, int len, int nmax, float scale, float min) {
        float e = 0;
        for (int i = 0; i < len; i++) {
            int q = clamp(Num.roundf((x[off + i] + min) / scale), 0, nmax);
            float diff = scale * q - min - x[off + i];
            e += diff * diff;
        }
        return e;
    }

    static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    /**
     * Quantizes one 256-value super-block into 6-bit sub-block scales/mins and integer quants in
     * [0, nmax] (Q4_K: 15, Q5_K: 31). Writes d and dmin (halves) at p and the scale table at p+4;
     * returns the quants in {@code q}.
     */
    static void quantizeScaleMinBlock(float[] x, int off, int nmax, MemorySegment dst, long p, int[] q) {
        float[] scales = new float[8], mins = new float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float[] sm = fitScaleMin(x, off + 32 * j, 32, nmax);
            scales[j] = sm[0];
            mins[j] = sm[1];
            maxScale = Math.max(maxScale, sm[0]);
            maxMin = Math.max(maxMin, sm[1]);
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        int[] ls = new int[8], lm = new int[8];
        for (int j = 0; j < 8; j++) {
            ls[j] = Math.min(63, Num.roundf(invScale * scales[j]));
            lm[j] = Math.min(63, Num.roundf(invMin * mins[j]));
        }
        Num.putF16(dst, p, maxScale / 63f);
        Num.putF16(dst, p + 2, maxMin / 63f);
        packScaleMins(ls, lm, dst, p + 4);
        // Quantize against the scales exactly as a decoder will see them.
        float d = Num.f16(dst, p), dmin = Num.f16(dst, p + 2);
        for (int j = 0; j < 8; j++) {
            float dl = d * ls[j], ml = dmin * lm[j];
            for (int i = 0; i < 32; i++) {
                int k = 32 * j + i;
                q[k] = dl == 0 ? 0 : clamp(Num.roundf((x[off + k] + ml) / dl), 0, nmax);
            }
        }
    }
}
