package dev.jmoe.tensor;

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
        float[] xp = DOT_BUFFER.get();
        if (xp == null || xp.length < len) {
            xp = new float[len];
            DOT_BUFFER.set(xp);
        }
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
