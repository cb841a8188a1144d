package dev.jmoe.tensor;

/**
 * A copy of a quantized matrix regrouped 16 rows at a time for matrix-vector products: {@link PackedQ4} (Q4_0, Q4_K) and
 * {@link PackedQ6} (Q6_K), integer products, or {@link PackedQ8} (Q8_0), float products; made by {@link Packing}. A {@link Matrix} carrying one computes single vectors and
 * small batches on it.
 */
public sealed interface PackedMatrix permits PackedQ4, PackedQ6, PackedQ8 {
    /** Rows per group: one per 16-bit lane of a 256-bit vector. */
    int ROWS = 16;

    /** The format of the rows this copy was made from. */
    GgmlType type();

    int rows();

    int cols();

    /** Bytes of the packed copy (of this slice's rows). */
    long byteSize();

    /** Rows [first, first + count) sharing the arrays, or null unless both are whole groups. */
    PackedMatrix rows(int first, int count);

    /**
     * How activations rounded by {@code rounding} (null: not rounded, the exact default) are laid out for this copy, or
     * null if this copy has no kernel for them (the caller then multiplies on the file's rows).
     */
    PackedQ4.Precision precision(QuantizedActivation.Scheme rounding);

    /**
     * out[outOff + 16·(g − g0) + i] = row (16·g + i) · x for groups g in [g0, g1), x the vector at {@code vOff}/{@code dOff}
     * of {@code a}, laid out with {@link #precision}.
     */
    void product(PackedQ4.Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff);

    /**
     * {@link #product} for {@code batch} vectors laid out in {@code a} one after another (vector b at offsets
     * b·stride and b·blocks), vector b's results at out[outOff + b·outStride ..]: each exactly what {@link #product}
     * gives it alone. A copy may share work between the vectors (decoding its weights once for all of them).
     */
    default void productBatch(PackedQ4.Activation a, int batch, int stride, int blocks, int g0, int g1, float[] out, int outOff, int outStride) {
        for (int b = 0; b < batch; b++) product(a, b * stride, b * blocks, g0, g1, out, outOff + b * outStride);
    }

    /**
     * The weights of group g's 16 rows in columns [c0, c1) as floats, column by column: p[16·(c − c0) + r] is row
     * 16·g + r, column c, for {@link FloatGemm#panel16}. c0 and c1 are multiples of 32.
     */
    void panel(int g, int c0, int c1, float[] p);

    /**
     * out[outOff + b·outStride + 16·(g − g0) + r] = Σ_c row(16·g + r)[c]·x[xOff + b·xStride + c] for groups [g0, g1) and
     * vectors b &lt; batch. Here each group's {@link #panel}s, {@code panelCols} columns at a time into {@code panel}, are
     * multiplied by {@link FloatGemm#panel16}, which reads the batch's last vectors from {@code xt} as
     * {@link FloatGemm#interleaveTail} laid them out; a copy may instead multiply its weights without writing panels.
     */
    default void panelProduct(int g0, int g1, float[] x, int xOff, int xStride, float[] xt, int batch, float[] panel, int panelCols,
                              float[] out, int outOff, int outStride) {
        int cols = cols();
        for (int g = g0; g < g1; g++) {
            for (int c0 = 0; c0 < cols; c0 += panelCols) {
                int c1 = Math.min(cols, c0 + panelCols);
                panel(g, c0, c1, panel);
                FloatGemm.panel16(panel, c1 - c0, x, xOff + c0, xStride, xt, c0, cols, batch, out, outStride, outOff + (g - g0) * ROWS, c0 > 0);
            }
        }
    }
}
