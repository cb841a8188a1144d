package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class KernelsTest {
    private static Parallel pool1, pool2;

    @BeforeAll
    static void pools() {
        pool1 = new Parallel(1);
        pool2 = new Parallel(2);
    }

    @AfterAll
    static void close() {
        pool1.close();
        pool2.close();
    }

    /** Reference product from the scalar decode, accumulated in double. */
    private static double[] reference(Matrix w, float[] x, int xOff) {
        TypeKernel k = Kernels.forType(w.type());
        float[] row = new float[w.cols()];
        double[] out = new double[w.rows()];
        for (int r = 0; r < w.rows(); r++) {
            k.dequantizeRow(w.data(), r * w.rowBytes(), row, 0, w.cols());
            double s = 0;
            for (int c = 0; c < w.cols(); c++) s += (double) row[c] * x[xOff + c];
            out[r] = s;
        }
        return out;
    }

    /** Σ|w·x| per row: the scale float rounding error is relative to. */
    private static double[] magnitude(Matrix w, float[] x, int xOff) {
        TypeKernel k = Kernels.forType(w.type());
        float[] row = new float[w.cols()];
        double[] out = new double[w.rows()];
        for (int r = 0; r < w.rows(); r++) {
            k.dequantizeRow(w.data(), r * w.rowBytes(), row, 0, w.cols());
            for (int c = 0; c < w.cols(); c++) out[r] += Math.abs((double) row[c] * x[xOff + c]);
        }
        return out;
    }

    private static Matrix randomMatrix(GgmlType t, int rows, int cols, Random rnd) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        return new Matrix(t, TypeKernelTest.quantize(t, src, rows, cols), rows, cols);
    }

    private static void assertClose(double[] want, double[] mag, float[] got, int gotOff, String what) {
        for (int r = 0; r < want.length; r++) {
            double tol = 1e-5 * mag[r] + 1e-7;
            if (Math.abs(want[r] - got[gotOff + r]) > tol) {
                fail(what + ": row " + r + " expected " + want[r] + " got " + got[gotOff + r] + " (tol " + tol + ")");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void matVecMatchesScalarReference(GgmlType t) {
        Random rnd = new Random(t.ordinal());
        int odd = t.blockSize() == 256 ? 768 : 352;
        for (int[] shape : new int[][] {{37, 256}, {301, 512}, {130, 1280}, {45, odd}}) {
            Matrix w = randomMatrix(t, shape[0], shape[1], rnd);
            float[] x = TypeKernelTest.gaussian(rnd, shape[1] + 3, 1f);
            double[] want = reference(w, x, 3), mag = magnitude(w, x, 3);
            for (Parallel pool : new Parallel[] {pool1, pool2}) {
                float[] out = new float[shape[0] + 2];
                out[0] = out[shape[0] + 1] = 42f;
                Kernels.matVec(pool, w, x, 3, out, 1);
                assertClose(want, mag, out, 1, t + " matVec " + shape[0] + "x" + shape[1] + " threads=" + pool.threads());
                assertEquals(42f, out[0], "wrote before outOff");
                assertEquals(42f, out[shape[0] + 1], "wrote past the rows");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void matMulMatchesScalarReferenceForOddBatches(GgmlType t) {
        Random rnd = new Random(100 + t.ordinal());
        int rows = 67, cols = 512;
        Matrix w = randomMatrix(t, rows, cols, rnd);
        // 9, 17 and 40: batches of more than one block of transposed tokens (FloatGemm.rowTile), the last one partial
        for (int batch : new int[] {1, 2, 3, 5, 7, 9, 17, 40}) {
            int xStride = cols + 8, outStride = rows + 3;
            float[] x = TypeKernelTest.gaussian(rnd, xStride * batch, 1f);
            for (Parallel pool : new Parallel[] {pool1, pool2}) {
                float[] out = new float[outStride * batch];
                java.util.Arrays.fill(out, Float.NaN);
                Kernels.matMul(pool, w, x, xStride, batch, out, outStride);
                for (int b = 0; b < batch; b++) {
                    assertClose(reference(w, x, b * xStride), magnitude(w, x, b * xStride), out, b * outStride,
                            t + " matMul batch=" + batch + " b=" + b + " threads=" + pool.threads());
                    for (int r = rows; r < outStride && b < batch - 1; r++) {
                        assertTrue(Float.isNaN(out[b * outStride + r]), "matMul wrote into the stride gap");
                    }
                }
            }
        }
    }

    /**
     * A vector's products in a batch are the ones it gets in any other batch, bit for bit: the float tiles sum each token's
     * products in column order whatever the batch width (8 or 16 tokens side by side) and whichever row tile computes them.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q5_K"})
    void batchedRowsDoNotDependOnTheBatchAround(GgmlType t) {
        Random rnd = new Random(7 + t.ordinal());
        int rows = 40, cols = 256;
        Matrix w = randomMatrix(t, rows, cols, rnd);
        int big = 21;
        float[] x = TypeKernelTest.gaussian(rnd, cols * big, 1f);
        float[] all = new float[rows * big];
        Kernels.matMul(pool2, w, x, cols, big, all, rows);
        // vectors 15..19 of the big batch (across its blocks of 16) as a batch of five (one block of 8)
        float[] part = new float[rows * 5];
        Kernels.matMul(pool1, w, java.util.Arrays.copyOfRange(x, 15 * cols, 20 * cols), cols, 5, part, rows);
        assertArrayEquals(java.util.Arrays.copyOfRange(all, 15 * rows, 20 * rows), part, t + ": a batch of 5 against the same vectors in a batch of 21");
    }

    @Test
    void largeMatMulUsesBothThreadsCorrectly() {
        Random rnd = new Random(5);
        Matrix w = randomMatrix(GgmlType.Q8_0, 203, 1024, rnd);
        int batch = 13;
        float[] x = TypeKernelTest.gaussian(rnd, 1024 * batch, 1f);
        float[] out = new float[203 * batch];
        Kernels.matMul(pool2, w, x, 1024, batch, out, 203);
        for (int b = 0; b < batch; b++) {
            assertClose(reference(w, x, b * 1024), magnitude(w, x, b * 1024), out, b * 203, "batch vector " + b);
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void rowSlicesOfABiggerMatrix(GgmlType t) {
        Random rnd = new Random(7);
        Matrix big = randomMatrix(t, 96, 512, rnd);
        float[] x = TypeKernelTest.gaussian(rnd, 512 * 3, 1f);
        float[] full = new float[96];
        Kernels.matVec(pool2, big, x, 0, full, 0);
        Matrix slice = big.rows(40, 24);
        float[] part = new float[24];
        Kernels.matVec(pool2, slice, x, 0, part, 0);
        for (int r = 0; r < 24; r++) assertEquals(full[40 + r], part[r], 0f, "slice row " + r);
        float[] batched = new float[24 * 3];
        Kernels.matMul(pool2, slice, x, 512, 3, batched, 24);
        for (int b = 0; b < 3; b++) {
            assertClose(reference(slice, x, 512 * b), magnitude(slice, x, 512 * b), batched, 24 * b, t + " slice matMul b=" + b);
        }
        assertClose(reference(big.rows(40, 24), x, 0), magnitude(slice, x, 0), part, 0, t + " slice vs reference");
    }

    @Test
    void rejectsMismatchedBuffers() {
        Matrix w = randomMatrix(GgmlType.Q8_0, 4, 64, new Random(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Kernels.matVec(pool1, w, new float[63], 0, new float[4], 0));
        assertTrue(e.getMessage().contains("x"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Kernels.matVec(pool1, w, new float[64], 0, new float[4], 1));
        assertThrows(IllegalArgumentException.class, () -> Kernels.matMul(pool1, w, new float[64 * 2], 64, 3, new float[12], 4));
        assertThrows(IllegalArgumentException.class, () -> Kernels.matMul(pool1, w, new float[64 * 3], 32, 3, new float[12], 4));
        assertThrows(UnsupportedOperationException.class,
                () -> Kernels.matVec(pool1, new Matrix(GgmlType.Q3_K, MemorySegment.ofArray(new byte[110]), 1, 256),
                        new float[256], 0, new float[1], 0));
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void gatedProductEqualsTwoProductsThenTheGate(GgmlType t) {
        Random rnd = new Random(t.ordinal() + 17);
        int rows = 200, cols = 512;
        Matrix g = randomMatrix(t, rows, cols, rnd), u = randomMatrix(t, rows, cols, rnd);
        float[] x = TypeKernelTest.gaussian(rnd, cols + 3, 1f);
        Kernels.Gate gate = (a, b) -> a / (1f + (float) Math.exp(-a)) * b;
        for (Parallel pool : new Parallel[] {pool1, pool2}) {
            float[] gw = new float[rows], uw = new float[rows], want = new float[rows + 1], got = new float[rows + 1];
            Kernels.matVec(pool, g, x, 3, gw, 0);
            Kernels.matVec(pool, u, x, 3, uw, 0);
            for (int r = 0; r < rows; r++) want[1 + r] = gate.combine(gw[r], uw[r]);
            Kernels.gatedMatVec(pool, g, u, gate, x, 3, got, 1);
            assertArrayEquals(want, got, t + " on " + pool.threads() + " threads: bit for bit");
        }
    }

    @Test
    void gatedProductRejectsMismatchedProjections() {
        Random rnd = new Random(3);
        Matrix g = randomMatrix(GgmlType.Q8_0, 64, 256, rnd), u = randomMatrix(GgmlType.Q8_0, 32, 256, rnd);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Kernels.gatedMatVec(pool1, g, u, (a, b) -> a * b, new float[256], 0, new float[64], 0));
        assertTrue(e.getMessage().contains("64x256") && e.getMessage().contains("32x256"), e.getMessage());
    }
}
