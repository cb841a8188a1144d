package dev.jmoe.tensor;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Row-by-row checks of packed products (Q4 and Q6) against the file's rows. */
final class PackedProducts {
    private PackedProducts() {}

    /**
     * {@link PackedMatrix#productBatch} of the {@code batch} vectors x[b·cols ..] for groups [1, g1), results at
     * out[3 + b·outStride ..], against {@link PackedMatrix#product} of each vector laid out alone: asserts the same bits
     * and returns the batch's results.
     */
    static float[] checkBatchEqualsEachVectorAlone(PackedMatrix p, PackedQ4.Precision precision, QuantizedActivation.Scheme rounding,
                                                   float[] x, int batch, int g1, int outStride) {
        int cols = p.cols();
        PackedQ4.Activation a = new PackedQ4.Activation();
        a.prepare(precision, rounding, x, 0, cols, batch, cols);
        float[] got = new float[batch * outStride + 3], want = new float[batch * outStride + 3];
        p.productBatch(a, batch, a.stride(), cols / 32, 1, g1, got, 3, outStride);
        PackedQ4.Activation one = new PackedQ4.Activation();
        for (int b = 0; b < batch; b++) {
            one.prepare(precision, rounding, x, b * cols, cols, 1, cols);
            p.product(one, 0, 0, 1, g1, want, 3 + b * outStride);
        }
        assertArrayEquals(want, got);
        return got;
    }

    /**
     * Two packed copies of {@code m} in different layouts give the same bits: single vectors and batches of 2–37
     * (8-bit and 16-bit rounding, on one thread and on {@code pool2}), every panel of 256 columns, and rows 32..63 of a
     * row slice of {@code second} against its whole. Each result of {@code second} also goes to {@code eachResult}.
     */
    static void checkLayoutsGiveTheSameBits(Matrix m, PackedMatrix first, PackedMatrix second, Parallel pool2,
                                            java.util.function.Consumer<float[]> eachResult) {
        int rows = m.rows(), cols = m.cols(), batchMax = 37;
        Matrix w = m.withPacked(first), c = m.withPacked(second);
        float[] x = new float[batchMax * cols];
        Random rnd = new Random(cols + rows);
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (Parallel pool : new Parallel[] {null, pool2}) {
            for (boolean rounded : new boolean[] {false, true}) {
                for (int batch : new int[] {1, 2, 3, 5, 9, 13, batchMax}) {
                    float[] want = new float[batch * rows], got = new float[batch * rows];
                    Kernels.withActivationQuantization(rounded, () -> {
                        if (batch == 1) {
                            Kernels.matVec(pool, w, x, 0, want, 0);
                            Kernels.matVec(pool, c, x, 0, got, 0);
                        } else {
                            Kernels.matMul(pool, w, x, cols, batch, want, rows);
                            Kernels.matMul(pool, c, x, cols, batch, got, rows);
                        }
                    });
                    assertArrayEquals(want, got, "rounded " + rounded + " batch " + batch + " pool " + pool);
                    eachResult.accept(got);
                }
            }
        }
        float[] pw = new float[PackedMatrix.ROWS * 256], pc = new float[PackedMatrix.ROWS * 256];
        for (int g = 0; g < rows / PackedMatrix.ROWS; g++) {
            for (int c0 = 0; c0 < cols; c0 += 256) {
                first.panel(g, c0, c0 + 256, pw);
                second.panel(g, c0, c0 + 256, pc);
                assertArrayEquals(pw, pc, "panel of group " + g + " from column " + c0);
            }
        }
        PackedMatrix slice = second.rows(32, 32);
        assertEquals(second.byteSize() * 32 / rows, slice.byteSize());
        float[] whole = new float[rows], part = new float[32];
        Kernels.withActivationQuantization(true, () -> {
            Kernels.matVec(null, c, x, 0, whole, 0);
            Kernels.matVec(null, m.rows(32, 32).withPacked(slice), x, 0, part, 0);
        });
        assertArrayEquals(java.util.Arrays.copyOfRange(whole, 32, 64), part, "rows 32..63 of a slice");
    }

    /** x with blocks of very different magnitudes and some exact zeros, so every block's own scale matters. */
    static float[] activation(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * Math.pow(10, (i / 32) % 4 - 2));
        for (int i = 0; i < n; i += 37) x[i] = 0;
        return x;
    }

    /**
     * Every row's product against the exact one in double on the dequantized row: x is rounded to steps of amax/32512
     * per block of 32, so a row may move by at most Σ_blocks (amax_b/65024)·Σ_{j in b}|w_j| (plus float rounding).
     * Returns the largest error as a fraction of its bound.
     */
    static double checkWithinRoundingBound(Matrix m, float[] got, float[] x, String what) {
        int cols = m.cols();
        float[] row = new float[cols];
        double worst = 0;
        for (int r = 0; r < m.rows(); r++) {
            Kernels.forType(m.type()).dequantizeRow(m.data(), r * m.rowBytes(), row, 0, cols);
            double exact = 0, bound = 0, mag = 0;
            for (int b = 0; b < cols / 32; b++) {
                double amax = 0, w = 0;
                for (int j = 32 * b; j < 32 * b + 32; j++) {
                    amax = Math.max(amax, Math.abs(x[j]));
                    w += Math.abs(row[j]);
                    exact += (double) row[j] * x[j];
                    mag += Math.abs((double) row[j] * x[j]);
                }
                bound += amax / 65024 * w;
            }
            double err = Math.abs(got[r] - exact);
            assertTrue(err <= bound * 1.01 + 1e-6 * mag, what + " row " + r + ": |" + got[r] + " - " + exact + "| = " + err + " > bound " + bound);
            worst = Math.max(worst, err / Math.max(bound, 1e-30));
        }
        return worst;
    }

    /**
     * With activations rounded as llama.cpp does ({@code a}), every row's packed product is ggml's integer dot of the
     * row path ({@code dotQ8Scalar}): only the float order differs, so within 1e-6 of Σ|w·x|.
     */
    static void checkIntegerDots(Matrix m, float[] got, QuantizedActivation a, String what) {
        int cols = m.cols();
        RowKernel k = Kernels.rowKernel(m.type());
        float[] row = new float[cols], xq = a.dequantized();
        for (int r = 0; r < m.rows(); r++) {
            float want = k.dotQ8Scalar(m.data(), r * m.rowBytes(), a, cols);
            k.dequantizeRow(m.data(), r * m.rowBytes(), row, 0, cols);
            double mag = 0; // Σ|w·x|: the scale of float-order differences
            for (int j = 0; j < cols; j++) mag += Math.abs((double) row[j] * xq[j]);
            assertEquals(want, got[r], 1e-6 * mag + 1e-12, what + " row " + r);
        }
    }

    /**
     * Group panels of a packed copy of {@code m} from column c0 to the end against the file's rows decoded row by row,
     * value by value within {@code tolerance}.
     */
    static void checkPanels(Matrix m, PackedMatrix packed, int c0, float tolerance) {
        int cols = m.cols();
        float[] rows = new float[ROWS * cols], panel = new float[ROWS * (cols - c0)];
        TypeKernel k = Kernels.forType(m.type());
        for (int g = 0; g < m.rows() / ROWS; g++) {
            for (int r = 0; r < ROWS; r++) k.dequantize(m.data(), (ROWS * g + r) * m.rowBytes(), rows, r * cols, cols);
            packed.panel(g, c0, cols, panel);
            for (int r = 0; r < ROWS; r++) {
                for (int c = c0; c < cols; c++) {
                    assertEquals(rows[r * cols + c], panel[ROWS * (c - c0) + r], tolerance, m.type() + " row " + (ROWS * g + r) + " column " + c);
                }
            }
        }
    }

    /** A float batch on {@code packed} (a copy of m) against the file's rows: equal up to the order of each sum. */
    static void checkBatchOnPanels(Parallel pool, Matrix m, Matrix packed, int batch, Random rnd) {
        int rows = m.rows(), cols = m.cols();
        float[] x = new float[batch * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        float[] plain = new float[batch * rows], fromPacked = new float[batch * rows];
        Kernels.matMul(pool, m, x, cols, batch, plain, rows);
        Kernels.matMul(pool, packed, x, cols, batch, fromPacked, rows);
        float[] w = new float[cols];
        TypeKernel k = Kernels.forType(m.type());
        for (int r = 0; r < rows; r++) {
            k.dequantize(m.data(), r * m.rowBytes(), w, 0, cols);
            for (int b = 0; b < batch; b++) {
                double abs = 0;
                for (int c = 0; c < cols; c++) abs += Math.abs(w[c] * x[b * cols + c]);
                assertEquals(plain[b * rows + r], fromPacked[b * rows + r], 1e-5 * abs, m.type() + " row " + r + " token " + b);
            }
        }
    }

    private static final int ROWS = PackedMatrix.ROWS;
}
