package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

/**
 * Base of the per-format kernels: adds the matVec fast path, where the activation vector is first
 * rearranged once per product ({@link #prepare}) into whatever layout lets the format's hot loop avoid
 * per-value shuffles, and every row is then dotted against that prepared copy.
 */
abstract class RowKernel implements TypeKernel {

    /** Separate from the buffer matVec prepares into, since a prepared dot may fall back on {@link #dot}. */
    private static final ThreadLocal<float[]> DOT_BUFFER = new ThreadLocal<>();

    /** Vector dot of one row: prepares x into a per-thread buffer, then runs the matVec loop. */
    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(type(), n);
        if (xOff < 0 || xOff + n > x.length) {
            throw new IllegalArgumentException("x needs " + n + " floats from offset " + xOff + " but has length " + x.length);
        }
        int len = preparedLength(n);
        float[] xp = ThreadArrays.floats(DOT_BUFFER, len);
        prepare(x, xOff, n, xp);
        return dotPrepared(src, off, xp, n);
    }

    /** Floats {@link #prepare} writes for a row of n values. */
    int preparedLength(int n) {
        return n;
    }

    /** Writes the prepared form of x[xOff .. xOff+n) into xp[0 ..). */
    void prepare(float[] x, int xOff, int n, float[] xp) {
        System.arraycopy(x, xOff, xp, 0, n);
    }

    /** Dot product of a row with an activation vector prepared by {@link #prepare}. */
    abstract float dotPrepared(MemorySegment src, long off, float[] xp, int n);

    /**
     * How llama.cpp's CPU backend rounds the activations before this type's dot products, or null if it
     * keeps them in float (F32 weights) or in another format (F16, BF16), where jmoe has no quantized path.
     */
    QuantizedActivation.Scheme activationScheme() {
        return null;
    }

    /**
     * Lays out an activation rounded by {@link QuantizedActivation#quantize} with {@link #activationScheme}
     * for {@link #dotQ8}. This default dequantizes it and prepares the floats for {@link #dotPrepared}
     * (llama.cpp's rounded activations, but its integer sums only up to float rounding); types with an
     * integer path override it.
     */
    void prepareQ8(QuantizedActivation a) {
        int n = a.n;
        float[] deq = a.dequantized();
        float[] xp = a.floats(preparedLength(n));
        prepare(deq, 0, n, xp);
    }

    /** Dot product of a row with an activation laid out by {@link #prepareQ8}. */
    float dotQ8(MemorySegment src, long off, QuantizedActivation a, int n) {
        return dotPrepared(src, off, a.f, n);
    }

    /**
     * {@link #dotQ8} of one row with the activations {@code acts[b0 .. b0 + 4)}, into out[outOff + i·outStride] for i in
     * 0..3: each exactly what dotQ8 gives it. This default calls dotQ8 four times; a type may read the row once for all
     * four.
     */
    void dotQ8x4(MemorySegment src, long off, QuantizedActivation[] acts, int b0, int n, float[] out, int outOff, int outStride) {
        for (int i = 0; i < 4; i++) out[outOff + i * outStride] = dotQ8(src, off, acts[b0 + i], n);
    }

    /**
     * Scalar reference for {@link #dotQ8}, from the rounded values {@link QuantizedActivation#q} and
     * scales {@link QuantizedActivation#d} only; integer sums per block, scaled as llama.cpp scales them.
     * This default is the scalar float dot with the dequantized activation.
     */
    float dotQ8Scalar(MemorySegment src, long off, QuantizedActivation a, int n) {
        return dotScalar(src, off, a.dequantized(), 0, n);
    }

    /**
     * Sum of eight float lanes in the order of ggml's hsum_float_8: (x0+x4 + x2+x6) + (x1+x5 + x3+x7).
     * The integer paths keep llama.cpp's lanes, FMAs and this order, so they give its results to the bit
     * (their hot methods spell it out: called at their end, it would not be inlined).
     */
    static float hsum8(FloatVector v) {
        float r0 = v.lane(4) + v.lane(0), r1 = v.lane(5) + v.lane(1), r2 = v.lane(6) + v.lane(2), r3 = v.lane(7) + v.lane(3);
        return (r0 + r2) + (r1 + r3);
    }

    /**
     * Batch size from which matMul decodes tiles of rows to floats once instead of running the
     * prepared dot per vector (measured crossover: decoding a quantized row costs about a dot).
     */
    int tileMinBatch() {
        return 4;
    }

    /** Sums of consecutive groups of {@code group} values of x, written to xp[at ..]. */
    static void groupSums(float[] x, int xOff, int n, int group, float scale, float[] xp, int at) {
        for (int g = 0; g < n / group; g++) {
            float s = 0;
            int o = xOff + g * group;
            for (int i = 0; i < group; i++) s += x[o + i];
            xp[at + g] = s * scale;
        }
    }
}
