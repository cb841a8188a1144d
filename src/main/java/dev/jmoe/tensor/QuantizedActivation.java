package dev.jmoe.tensor;

/**
 * An activation vector rounded to 8 bits the way llama.cpp's CPU backend rounds it before the integer
 * dot products of quantized weights ({@link Kernels#withActivationQuantization(boolean, Runnable)}): blocks of 32 with a
 * half-float scale for the 32-value formats (ggml's Q8_0 / Q8_1 activations), blocks of 256 with a float
 * scale for the K-quants (Q8_K). The 8-bit values and scales are kept as they are ({@link #q},
 * {@link #d}); the kernels lay them out again in {@link #s}, {@link #i}, {@link #f} for their hot loops
 * ({@link RowKernel#prepareQ8}). One instance is reused per thread, so everything grows on demand.
 */
final class QuantizedActivation {
    /** 1.5·2^23: a float of magnitude at most 2^22 plus this, minus this, is the float rounded half to even (as Math.rint). */
    static final float ROUNDING = 12582912f;
    /** {@link #ROUNDING} as an int: the sum's int value minus this is the rounded integer ({@link #roundTimes}). */
    private static final int ROUNDING_INT = (int) ROUNDING;

    /** Block formats of the rounded activations. */
    enum Scheme {
        /**
         * ggml's AVX2 quantize_row_q8_0 (also the values of Q8_1): d = amax/127 stored as a half,
         * q = round-half-even(x · 127/amax).
         */
        Q8_0(32),
        /** ggml's quantize_row_q8_K_ref: iscale = −127/max (max: the value of largest magnitude), q = min(127, round-half-even(iscale·x)), d = 1/iscale. */
        Q8_K(256);

        final int block;

        Scheme(int block) {
            this.block = block;
        }
    }

    Scheme scheme;
    int n;
    /** The 8-bit values. */
    byte[] q = new byte[0];
    /** Scale of each block (Q8_0: already rounded to a half). */
    float[] d = new float[0];
    /** Kernel-specific layouts ({@link RowKernel#prepareQ8}). */
    short[] s = new short[0];
    int[] i = new int[0];
    float[] f = new float[0];
    /** d·q per value: the rounded activation as floats (filled by {@link #quantize}). */
    float[] deq = new float[0];

    /** Rounds x[xOff .. xOff+n) with {@code scheme}; n must be a multiple of its block. */
    void quantize(Scheme scheme, float[] x, int xOff, int n) {
        if (n % scheme.block != 0) {
            throw new IllegalArgumentException(scheme + " activations come in blocks of " + scheme.block + "; " + n + " is not a multiple");
        }
        this.scheme = scheme;
        this.n = n;
        if (q.length < n) q = new byte[n];
        int nb = n / scheme.block;
        if (d.length < nb) d = new float[nb];
        if (scheme == Scheme.Q8_0) quantizeQ8_0(x, xOff, n, q, d);
        else quantizeQ8_K(x, xOff, n, q, d);
        if (deq.length < n) deq = new float[n];
        int bs = scheme.block;
        for (int b = 0; b < nb; b++) {
            float db = d[b];
            for (int j = b * bs; j < (b + 1) * bs; j++) deq[j] = db * q[j];
        }
    }

    static void quantizeQ8_0(float[] x, int xOff, int n, byte[] q, float[] d) {
        quantizeQ8_0(x, xOff, n, q, 0, d, 0);
    }

    /**
     * n values from x[xOff], their bytes to q[qOff ..] and their block scales to d[dOff ..]: the values of
     * {@link #quantizeQ8_0Scalar}, in loops C2 vectorises itself. Rounding runs once per vector and product before the
     * integer kernels; with Math.rint per value it took 3-6% of an 8-bit prompt's samples (perf, Qwen3-like Q4_K_M).
     * No Vector API here on purpose: written with it, this code shared the JDK's vector methods (and their type
     * profiles) with the packed kernels, and C2 then left the kernels' vectors boxed in most runs (prompts 0.6×).
     */
    static void quantizeQ8_0(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 32; b++) {
            int o = xOff + 32 * b, qo = qOff + 32 * b;
            float amax = 0; // Math.max keeps a NaN whatever the order, and every |x| is at least +0
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
            float id = amax != 0 ? 127f / amax : 0f;
            if (!(amax < Float.POSITIVE_INFINITY) || !(id < Float.POSITIVE_INFINITY)) { // NaN, infinities, a subnormal amax
                quantizeQ8_0Scalar(x, o, 32, q, qo, d, dOff + b);
                continue;
            }
            d[dOff + b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            roundTimes(x, o, 32, id, q, qo);
        }
    }

    /**
     * q[qo + j] = round-half-even(x[o + j]·scale) for j in [0, n), where every |x·scale| is at most 127 and a little (a
     * finite scale of at most 127/max|x|): adding 1.5·2^23 leaves a float rounded to an integer, exactly as Math.rint,
     * for |v| <= 2^22, and the sum converts to an int exactly.
     */
    private static void roundTimes(float[] x, int o, int n, float scale, byte[] q, int qo) {
        for (int j = 0; j < n; j++) q[qo + j] = (byte) ((int) (x[o + j] * scale + ROUNDING) - ROUNDING_INT);
    }

    /** {@link #quantizeQ8_0} one value at a time: ggml's AVX2 quantize_row_q8_0, the definition the fast form must equal. */
    static void quantizeQ8_0Scalar(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 32; b++) {
            int o = xOff + 32 * b;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
            d[dOff + b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) q[qOff + 32 * b + j] = (byte) (int) Math.rint(x[o + j] * id);
        }
    }

    static void quantizeQ8_K(float[] x, int xOff, int n, byte[] q, float[] d) {
        quantizeQ8_K(x, xOff, n, q, 0, d, 0);
    }

    /**
     * As {@link #quantizeQ8_0(float[], int, int, byte[], int, float[], int)}, one scale per 256 values: the values of
     * {@link #quantizeQ8_KScalar}. Its cap at 127 cannot bind for a finite scale (|x·scale| <= 127 and a little); a
     * block with a NaN, an infinity or an infinite scale takes the scalar form, which also skips NaNs.
     */
    static void quantizeQ8_K(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 256; b++) {
            int o = xOff + 256 * b, qo = qOff + 256 * b;
            // The scalar loop keeps the first value of the largest magnitude, with its sign. The largest and the smallest
            // value tell which it is unless both signs reach that magnitude; only then is the first one looked for (a
            // search in every block took as long as the rest of the rounding).
            float hi = 0, lo = 0;
            for (int j = 0; j < 256; j++) {
                float v = x[o + j];
                hi = Math.max(hi, v);
                lo = Math.min(lo, v);
            }
            float amax = Math.max(hi, -lo);
            if (amax == 0) {
                d[dOff + b] = 0;
                java.util.Arrays.fill(q, qo, qo + 256, (byte) 0);
                continue;
            }
            float iscale = Float.NaN;
            if (amax < Float.POSITIVE_INFINITY) {
                float max;
                if (hi != -lo) {
                    max = hi == amax ? hi : lo;
                } else {
                    int first = 0;
                    while (Math.abs(x[o + first]) != amax) first++;
                    max = x[o + first];
                }
                iscale = -127f / max;
            }
            if (!(Math.abs(iscale) < Float.POSITIVE_INFINITY)) {
                quantizeQ8_KScalar(x, o, 256, q, qo, d, dOff + b);
                continue;
            }
            roundTimes(x, o, 256, iscale, q, qo);
            d[dOff + b] = 1 / iscale;
        }
    }

    /** {@link #quantizeQ8_K} one value at a time: ggml's quantize_row_q8_K_ref, the definition the fast form must equal. */
    static void quantizeQ8_KScalar(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 256; b++) {
            int o = xOff + 256 * b;
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float ax = Math.abs(x[o + j]);
                if (ax > amax) {
                    amax = ax;
                    max = x[o + j];
                }
            }
            if (amax == 0) {
                d[dOff + b] = 0;
                for (int j = 0; j < 256; j++) q[qOff + 256 * b + j] = 0;
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) q[qOff + 256 * b + j] = (byte) Math.min(127, (int) Math.rint(iscale * x[o + j]));
            d[dOff + b] = 1 / iscale;
        }
    }

    /** d·q for every value (read only). */
    float[] dequantized() {
        return deq;
    }

    short[] shorts(int len) {
        if (s.length < len) s = new short[len];
        return s;
    }

    int[] ints(int len) {
        if (i.length < len) i = new int[len];
        return i;
    }

    float[] floats(int len) {
        if (f.length < len) f = new float[len];
        return f;
    }
}
