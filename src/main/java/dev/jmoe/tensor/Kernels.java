package dev.jmoe.tensor;

/**
 * Matrix products of a quantized or float weight matrix with float activations, split over output
 * rows across the threads of a {@link Parallel} pool. Every type has a scalar reference in
 * {@link TypeKernel} beside its Vector API path.
 */
public final class Kernels {
    private Kernels() {}

    /** The kernel for {@code type}, or an exception naming the type if jmoe cannot compute with it. */
    public static TypeKernel forType(GgmlType type) {
        throw new UnsupportedOperationException("TODO");
    }

    /** out[outOff + r] = Σ_c w[r][c]·x[xOff + c] for every row r (vector path). */
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOff, float[] out, int outOff) {
        throw new UnsupportedOperationException("TODO");
    }

    /**
     * Batched product: for b in [0, batch): out[b·outStride + r] = Σ_c w[r][c]·x[b·xStride + c].
     * Each weight row is read once per batch (the prompt / grouped-expert path).
     */
    public static void matMul(Parallel pool, Matrix w, float[] x, int xStride, int batch, float[] out, int outStride) {
        throw new UnsupportedOperationException("TODO");
    }
}
