package dev.jmoe.model;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.ADD;
import static jdk.incubator.vector.VectorOperators.FMA;

/** Small float-array operations of the forward pass (norms, attention dots, activations). */
final class Ops {
    // 256 bits, the width of the packed and float kernels, on every machine. At 512 bits (SPECIES_PREFERRED on AVX-512)
    // Ops was the one 512-bit float code of an 8-bit run, and C2 then left PackedQ4.group8Quad (the 8-bit prompt kernel)
    // with unfolded species checks in 5 of 6 runs (Mixtral-like Q4_K_M, bench/boxcheck.py), 2 of them boxed
    // (7-11 GB, prompts 41 t/s against ~250): its fma calls meet the Float512 receivers that Ops' fma, mul and
    // lanewise calls leave in the JDK's shared profiles (siluTimes and exp at 256 bits alone still left the checks in
    // 6 of 6 runs: the attention's 512-bit lanewise calls share FloatVector.lanewiseTemplate). With Ops at 256 bits:
    // 0 checks in 6 of 6 runs (docs/speed.md, session 40). The attention code keeps the rule for wide code anyway
    // (lanewise(op, ...), stores through intoMemorySegment, its own lane sums), should the width change again.
    static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private Ops() {}

    // dot4's reduction of four accumulators into four sums: swap neighbouring lanes, then neighbouring pairs,
    // then fold the remaining blocks of four (none for 4 lanes, one step for 8, two for 16).
    // (needs at least 4 lanes; a narrower preferred species computes the four dots one by one)
    private static final boolean WIDE = S.length() >= 4;
    private static final VectorShuffle<Float> SWAP_1 = WIDE ? swap(1) : null, SWAP_2 = WIDE ? swap(2) : null;
    private static final VectorMask<Float> ODD_1 = WIDE ? mask(1) : null, ODD_2 = WIDE ? mask(2) : null;
    private static final VectorShuffle<Float>[] FOLDS = folds();

    /** Exchanges lane blocks of {@code size}: lane i ↔ i ^ size. */
    private static VectorShuffle<Float> swap(int size) {
        return VectorShuffle.fromOp(S, i -> i ^ size);
    }

    /** Lanes whose index has bit {@code size} set. */
    private static VectorMask<Float> mask(int size) {
        boolean[] bits = new boolean[S.length()];
        for (int i = 0; i < bits.length; i++) bits[i] = (i & size) != 0;
        return VectorMask.fromArray(S, bits, 0);
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] folds() {
        java.util.List<VectorShuffle<Float>> out = new java.util.ArrayList<>();
        for (int size = 4; size < S.length(); size *= 2) out.add(swap(size));
        return out.toArray(new VectorShuffle[0]);
    }

    /**
     * The lane sums of four vectors, in lanes 0..3 of the result, added in a fixed order: lane 4m+r first holds
     * vector r's sum over lane block m (neighbouring lanes, then neighbouring pairs), then the folds add the blocks.
     */
    private static FloatVector sums4(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
        FloatVector c01 = a0.lanewise(ADD, a0.rearrange(SWAP_1)).blend(a1.lanewise(ADD, a1.rearrange(SWAP_1)), ODD_1);
        FloatVector c23 = a2.lanewise(ADD, a2.rearrange(SWAP_1)).blend(a3.lanewise(ADD, a3.rearrange(SWAP_1)), ODD_1);
        FloatVector e = c01.lanewise(ADD, c01.rearrange(SWAP_2)).blend(c23.lanewise(ADD, c23.rearrange(SWAP_2)), ODD_2);
        for (VectorShuffle<Float> fold : FOLDS) e = e.lanewise(ADD, e.rearrange(fold));
        return e;
    }

    /**
     * Four dot products of one vector with four rows: out[o + r] = Σ_i a[aOff + i] · b[bOff + r·stride + i] for r in
     * 0..3 (an attention query against four keys). The query is read once for the four keys, and the four sums are
     * reduced together in a fixed order, so results do not depend on whether the code is JIT-compiled.
     */
    static void dot4(float[] a, int aOff, float[] b, int bOff, int stride, int n, float[] out, int o) {
        if (!WIDE) {
            for (int r = 0; r < 4; r++) out[o + r] = dot(a, aOff, b, bOff + r * stride, n);
            return;
        }
        FloatVector z = FloatVector.zero(S), a0 = z, a1 = z, a2 = z, a3 = z;
        int i = 0, b1 = bOff + stride, b2 = b1 + stride, b3 = b2 + stride;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector q = FloatVector.fromArray(S, a, aOff + i);
            a0 = FloatVector.fromArray(S, b, bOff + i).lanewise(FMA, q, a0);
            a1 = FloatVector.fromArray(S, b, b1 + i).lanewise(FMA, q, a1);
            a2 = FloatVector.fromArray(S, b, b2 + i).lanewise(FMA, q, a2);
            a3 = FloatVector.fromArray(S, b, b3 + i).lanewise(FMA, q, a3);
        }
        FloatVector e = sums4(a0, a1, a2, a3);
        float s0 = e.lane(0), s1 = e.lane(1), s2 = e.lane(2), s3 = e.lane(3);
        for (; i < n; i++) {
            float x = a[aOff + i];
            s0 += x * b[bOff + i];
            s1 += x * b[b1 + i];
            s2 += x * b[b2 + i];
            s3 += x * b[b3 + i];
        }
        out[o] = s0;
        out[o + 1] = s1;
        out[o + 2] = s2;
        out[o + 3] = s3;
    }

    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, aOff + i).lanewise(FMA, FloatVector.fromArray(S, b, bOff + i), acc);
        }
        float sum = 0; // lane by lane in index order (not Lanes.sum: see S)
        for (int l = 0; l < S.length(); l++) sum += acc.lane(l);
        for (; i < n; i++) sum += a[aOff + i] * b[bOff + i];
        return sum;
    }

    /**
     * out[o + d] = Σ_j w[j] · v[vOff + j·stride + d] for d in [0, n), j in [0, count): an attention head's weighted sum of
     * value rows. Each output block stays in registers over all rows (j ascending, one fused multiply-add per term, as
     * {@code count} vector axpy calls into zeros would do, without reloading and storing the output for every row).
     */
    static void weightedRows(float[] w, int count, float[] v, int vOff, int stride, int n, float[] out, int o) {
        weightedRowsFrom(w, count, v, vOff, stride, 0, n, out, o);
    }

    /** {@link #weightedRows} for output columns [from, n) only (every column gets the same arithmetic either way). */
    private static void weightedRowsFrom(float[] w, int count, float[] v, int vOff, int stride, int from, int n, float[] out, int o) {
        int len = S.length(), d = from;
        MemorySegment outs = MemorySegment.ofArray(out);
        for (; d + 4 * len <= n; d += 4 * len) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0, base = vOff + d; j < count; j++, base += stride) {
                FloatVector p = FloatVector.broadcast(S, w[j]);
                a0 = FloatVector.fromArray(S, v, base).lanewise(FMA, p, a0);
                a1 = FloatVector.fromArray(S, v, base + len).lanewise(FMA, p, a1);
                a2 = FloatVector.fromArray(S, v, base + 2 * len).lanewise(FMA, p, a2);
                a3 = FloatVector.fromArray(S, v, base + 3 * len).lanewise(FMA, p, a3);
            }
            a0.intoMemorySegment(outs, (long) (o + d) * Float.BYTES, NATIVE);
            a1.intoMemorySegment(outs, (long) (o + d + len) * Float.BYTES, NATIVE);
            a2.intoMemorySegment(outs, (long) (o + d + 2 * len) * Float.BYTES, NATIVE);
            a3.intoMemorySegment(outs, (long) (o + d + 3 * len) * Float.BYTES, NATIVE);
        }
        for (; d + len <= n; d += len) {
            FloatVector a = FloatVector.zero(S);
            for (int j = 0, base = vOff + d; j < count; j++, base += stride) a = FloatVector.fromArray(S, v, base).lanewise(FMA, FloatVector.broadcast(S, w[j]), a);
            a.intoMemorySegment(outs, (long) (o + d) * Float.BYTES, NATIVE);
        }
        for (; d < n; d++) {
            float a = 0;
            for (int j = 0; j < count; j++) a += w[j] * v[vOff + j * stride + d];
            out[o + d] = a;
        }
    }

    /**
     * Scores of four query heads that share one KV head: out[g][j] = scale · Σ_i q[qOff + g·qStride + i] · k[kOff + j·kStride + i]
     * for g in 0..3, j in [0, count). Each key row is read once for the four queries. (The same shape as dot4 with the
     * roles swapped, written out: calling dot4 per key through a scratch array measured 10-15% slower.)
     */
    static void scores4(float[] q, int qOff, int qStride, float[] k, int kOff, int kStride, int count, int n, float scale, float[][] out) {
        int len = S.length();
        float[] o0 = out[0], o1 = out[1], o2 = out[2], o3 = out[3];
        int q1 = qOff + qStride, q2 = q1 + qStride, q3 = q2 + qStride;
        for (int j = 0; j < count; j++) {
            int kb = kOff + j * kStride;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            int i = 0;
            for (int bound = S.loopBound(n); i < bound; i += len) {
                FloatVector kv = FloatVector.fromArray(S, k, kb + i);
                a0 = FloatVector.fromArray(S, q, qOff + i).lanewise(FMA, kv, a0);
                a1 = FloatVector.fromArray(S, q, q1 + i).lanewise(FMA, kv, a1);
                a2 = FloatVector.fromArray(S, q, q2 + i).lanewise(FMA, kv, a2);
                a3 = FloatVector.fromArray(S, q, q3 + i).lanewise(FMA, kv, a3);
            }
            FloatVector e = sums4(a0, a1, a2, a3);
            float s0 = e.lane(0), s1 = e.lane(1), s2 = e.lane(2), s3 = e.lane(3);
            for (; i < n; i++) {
                float kx = k[kb + i];
                s0 += q[qOff + i] * kx;
                s1 += q[q1 + i] * kx;
                s2 += q[q2 + i] * kx;
                s3 += q[q3 + i] * kx;
            }
            o0[j] = s0 * scale;
            o1[j] = s1 * scale;
            o2[j] = s2 * scale;
            o3[j] = s3 * scale;
        }
    }

    /** {@link #weightedRows} for four heads sharing the value rows: each row block is read once for the four. */
    static void weightedRows4(float[][] w, int count, float[] v, int vOff, int stride, int n, float[] out, int o, int oStride) {
        int len = S.length(), d = 0;
        MemorySegment outs = MemorySegment.ofArray(out);
        float[] w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
        for (; d + 2 * len <= n; d += 2 * len) {
            FloatVector a0 = FloatVector.zero(S), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            for (int j = 0, base = vOff + d; j < count; j++, base += stride) {
                FloatVector x = FloatVector.fromArray(S, v, base), y = FloatVector.fromArray(S, v, base + len);
                FloatVector p = FloatVector.broadcast(S, w0[j]);
                a0 = x.lanewise(FMA, p, a0);
                b0 = y.lanewise(FMA, p, b0);
                p = FloatVector.broadcast(S, w1[j]);
                a1 = x.lanewise(FMA, p, a1);
                b1 = y.lanewise(FMA, p, b1);
                p = FloatVector.broadcast(S, w2[j]);
                a2 = x.lanewise(FMA, p, a2);
                b2 = y.lanewise(FMA, p, b2);
                p = FloatVector.broadcast(S, w3[j]);
                a3 = x.lanewise(FMA, p, a3);
                b3 = y.lanewise(FMA, p, b3);
            }
            a0.intoMemorySegment(outs, (long) (o + d) * Float.BYTES, NATIVE);
            b0.intoMemorySegment(outs, (long) (o + d + len) * Float.BYTES, NATIVE);
            a1.intoMemorySegment(outs, (long) (o + oStride + d) * Float.BYTES, NATIVE);
            b1.intoMemorySegment(outs, (long) (o + oStride + d + len) * Float.BYTES, NATIVE);
            a2.intoMemorySegment(outs, (long) (o + 2 * oStride + d) * Float.BYTES, NATIVE);
            b2.intoMemorySegment(outs, (long) (o + 2 * oStride + d + len) * Float.BYTES, NATIVE);
            a3.intoMemorySegment(outs, (long) (o + 3 * oStride + d) * Float.BYTES, NATIVE);
            b3.intoMemorySegment(outs, (long) (o + 3 * oStride + d + len) * Float.BYTES, NATIVE);
        }
        if (d < n) {
            for (int g = 0; g < 4; g++) weightedRowsFrom(w[g], count, v, vOff, stride, d, n, out, o + g * oStride);
        }
    }

    /** out = x / sqrt(mean(x²) + eps) · w, with the sum of squares in double as ggml does. */
    static void rmsNorm(float[] x, int xOff, float[] w, float eps, float[] out, int outOff, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            sum += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt((float) (sum / n) + eps));
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * scale * w[i];
    }

    /** silu(x) = x / (1 + e^−x) with {@link #exp}: the scalar twin of {@link #siluTimes}' lanes (bit for bit). */
    static float silu(float x) {
        return x / (1f + exp(-x));
    }

    /**
     * g[gOff + i] = silu(g[gOff + i])·u[uOff + i] for i in [0, n), eight lanes at a time: a SwiGLU expert combines
     * thousands of rows per token, and a double Math.exp per row took about as long as a tenth of the expert's
     * products (llama.cpp's SwiGLU also takes a vectorized exp).
     */
    static void siluTimes(float[] g, int gOff, float[] u, int uOff, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, g, gOff + i);
            x.div(exp(x.neg()).add(1f)).mul(FloatVector.fromArray(S, u, uOff + i)).intoArray(g, gOff + i);
        }
        for (; i < n; i++) g[gOff + i] = silu(g[gOff + i]) * u[uOff + i];
    }

    static float sigmoid(float x) {
        return (float) (1.0 / (1.0 + Math.exp(-x)));
    }

    // exp for attention weights and SiLU: Cody-Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, and Cephes' expf polynomial for
    // e^r (about 1 ulp), scaled by 2^n through the exponent bits. Only IEEE float operations (no intrinsic whose
    // result could differ between the interpreter and compiled code), so it is deterministic like the rest.
    private static final float EXP_HI = 88.0f, EXP_LO = -87.3f; // e^x stays a normal float between these
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUNDER = 12582912f; // 1.5·2^23: adding and subtracting it rounds to an integer
    private static final float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
            P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /** e^x, the scalar twin of the vector lanes in {@link #expShifted} (bit for bit). */
    static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float n = (x * LOG2E + ROUNDER) - ROUNDER;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float y = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(P0, r, P1), r, P2), r, P3), r, P4), r, P5);
        y = Math.fma(y, r * r, r) + 1f;
        return y * Float.intBitsToFloat(((int) n + 127) << 23);
    }

    /** x[off + i] = e^(x[off + i] − shift) for i in [0, n). */
    static void expShifted(float[] x, int off, int n, float shift) {
        int i = 0;
        FloatVector sh = FloatVector.broadcast(S, shift);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            exp(FloatVector.fromArray(S, x, off + i).sub(sh)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = exp(x[off + i] - shift);
    }

    /** {@link #exp(float)} lane by lane (small enough for C2 to inline into its callers' loops). */
    private static FloatVector exp(FloatVector x) {
        FloatVector v = x.max(EXP_LO).min(EXP_HI);
        FloatVector m = v.mul(LOG2E).add(ROUNDER).sub(ROUNDER);
        FloatVector r = m.fma(FloatVector.broadcast(S, -LN2_LO), m.fma(FloatVector.broadcast(S, -LN2_HI), v));
        FloatVector y = FloatVector.broadcast(S, P0).fma(r, FloatVector.broadcast(S, P1)).fma(r, FloatVector.broadcast(S, P2))
                .fma(r, FloatVector.broadcast(S, P3)).fma(r, FloatVector.broadcast(S, P4)).fma(r, FloatVector.broadcast(S, P5));
        y = y.fma(r.mul(r), r).add(1f);
        FloatVector pow2 = ((jdk.incubator.vector.IntVector) m.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23)
                .reinterpretAsFloats();
        return y.mul(pow2);
    }

    /**
     * In-place softmax of attention scores x[off..off+n): like {@link #softmax} with {@link #exp} for Math.exp (llama.cpp
     * also uses a vectorized exp here); the sum stays in double, in index order.
     */
    static void attentionSoftmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        expShifted(x, off, n, max);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[off + i];
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }

    /** Index of the first NaN or infinity in x[off, off+n), or -1 (relative to off). */
    static int firstNonFinite(float[] x, int off, int n) {
        // x - x is 0 for every finite x and NaN otherwise; summing keeps the common all-finite case one cheap pass. Four
        // sums: C2 keeps a float sum in its order, and one sum was one dependent add per value (a prompt's 17 checks of
        // 64 hidden states took ~0.5% of its CPU samples on the calling thread while the others waited, perf, AMD EPYC).
        // Plain Java rather than the Vector API: this runs a few times per layer, and until C2 compiles it (with so few
        // calls, late) vector code runs as slow Java objects; in two of six runs a prompt round took 10-20x as long.
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            a0 += x[off + i] - x[off + i];
            a1 += x[off + i + 1] - x[off + i + 1];
            a2 += x[off + i + 2] - x[off + i + 2];
            a3 += x[off + i + 3] - x[off + i + 3];
        }
        for (; i < n; i++) a0 += x[off + i] - x[off + i];
        if (a0 + a1 + (a2 + a3) == 0) return -1;
        for (int j = 0; j < n; j++) if (!Float.isFinite(x[off + j])) return j;
        return -1;
    }

    /** In-place softmax of x[off..off+n). */
    static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }
}
