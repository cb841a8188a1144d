package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * An activation vector rounded to 8 bits the way llama.cpp's CPU backend rounds it before the integer
 * dot products of quantized weights ({@link Kernels#withActivationQuantization(boolean, Runnable)}): blocks of 32 with a
 * half-float scale for the 32-value formats (ggml's Q8_0 / Q8_1 activations), blocks of 256 with a float
 * scale for the K-quants (Q8_K). The 8-bit values and scales are kept as they are ({@link #q},
 * {@link #d}); the kernels lay them out again in {@link #s}, {@link #i}, {@link #f} for their hot loops
 * ({@link RowKernel#prepareQ8}). One instance is reused per thread, so everything grows on demand.
 */
final class QuantizedActivation {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
    /** 1.5·2^23: see {@link #round}. */
    private static final float ROUNDING = 12582912f;

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
     * {@link #quantizeQ8_0Scalar}, 8 at a time. Rounding activations runs once per vector and product before the
     * integer kernels, and one value at a time it took 3-6% of an 8-bit prompt's samples (perf, Qwen3-like Q4_K_M).
     */
    static void quantizeQ8_0(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 32; b++) {
            int o = xOff + 32 * b, qo = qOff + 32 * b;
            FloatVector x0 = FloatVector.fromArray(F, x, o), x1 = FloatVector.fromArray(F, x, o + 8);
            FloatVector x2 = FloatVector.fromArray(F, x, o + 16), x3 = FloatVector.fromArray(F, x, o + 24);
            // lanewise and reduced MAX follow Math.max: a NaN anywhere gives a NaN, as the scalar loop does
            float amax = x0.abs().max(x1.abs()).max(x2.abs().max(x3.abs())).reduceLanes(VectorOperators.MAX);
            d[dOff + b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            round(x0.mul(id), Integer.MAX_VALUE, q, qo); // no cap, as ggml's: the bytes wrap as (byte) (int) does
            round(x1.mul(id), Integer.MAX_VALUE, q, qo + 8);
            round(x2.mul(id), Integer.MAX_VALUE, q, qo + 16);
            round(x3.mul(id), Integer.MAX_VALUE, q, qo + 24);
        }
    }

    /** {@link #quantizeQ8_0} one value at a time: ggml's AVX2 quantize_row_q8_0, the definition the vector form must equal. */
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

    /**
     * The 8 products in v rounded half to even (as Math.rint), capped at {@code max}, narrowed to bytes at q[at ..]. Adding and
     * subtracting 1.5·2^23 rounds a float to an integer exactly for |v| <= 2^22 (here |v| <= 127 and a little); a NaN
     * stays NaN and converts to 0, as (int) Math.rint does. It takes a vector but C2 inlines it (small, hot): the
     * tests compare it with the scalar forms, and bench/boxcheck.py finds no boxing in a speed run.
     */
    private static void round(FloatVector v, int max, byte[] q, int at) {
        IntVector r = (IntVector) v.add(ROUNDING).sub(ROUNDING).convertShape(VectorOperators.F2I, I, 0);
        ((ByteVector) r.min(max).convertShape(VectorOperators.I2B, B, 0)).intoArray(q, at);
    }

    static void quantizeQ8_K(float[] x, int xOff, int n, byte[] q, float[] d) {
        quantizeQ8_K(x, xOff, n, q, 0, d, 0);
    }

    /**
     * As {@link #quantizeQ8_0(float[], int, int, byte[], int, float[], int)}, one scale per 256 values: the values of
     * {@link #quantizeQ8_KScalar}. A block whose largest magnitude is not finite takes the scalar form, which skips NaNs.
     */
    static void quantizeQ8_K(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 256; b++) {
            int o = xOff + 256 * b, qo = qOff + 256 * b;
            FloatVector m0 = FloatVector.fromArray(F, x, o).abs(), m1 = FloatVector.fromArray(F, x, o + 8).abs();
            for (int j = 16; j < 256; j += 16) {
                m0 = m0.max(FloatVector.fromArray(F, x, o + j).abs());
                m1 = m1.max(FloatVector.fromArray(F, x, o + j + 8).abs());
            }
            float amax = m0.max(m1).reduceLanes(VectorOperators.MAX);
            if (!(amax < Float.POSITIVE_INFINITY)) { // NaN or infinite: the scalar loop's order decides which value counts
                quantizeQ8_KScalar(x, o, 256, q, qo, d, dOff + b);
                continue;
            }
            if (amax == 0) {
                d[dOff + b] = 0;
                java.util.Arrays.fill(q, qo, qo + 256, (byte) 0);
                continue;
            }
            // the scalar loop keeps the first value of the largest magnitude (and its sign)
            int first = 0;
            while (Math.abs(x[o + first]) != amax) first++;
            float iscale = -127f / x[o + first];
            for (int j = 0; j < 256; j += 8) round(FloatVector.fromArray(F, x, o + j).mul(iscale), 127, q, qo + j);
            d[dOff + b] = 1 / iscale;
        }
    }

    /** {@link #quantizeQ8_K} one value at a time: ggml's quantize_row_q8_K_ref, the definition the vector form must equal. */
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
