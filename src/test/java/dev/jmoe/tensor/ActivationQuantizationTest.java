package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Kernels.withActivationQuantization: llama.cpp's rounding of activations, and the integer paths against their scalar references. */
class ActivationQuantizationTest {
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

    private static float half(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    @Test
    void q8_0RoundsLikeLlamaCppAvx2() {
        float[] x = new float[96];
        // Block 0: amax 127, so x·127/amax = x and halves go to the even neighbour.
        float[] b0 = {2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, 127f, -126.49f};
        System.arraycopy(b0, 0, x, 0, b0.length);
        // Block 1: amax 1 → d = half(1/127), q = round(x·127).
        x[32] = 1f;
        x[33] = -0.3f;
        x[34] = 0.02f; // 2.54 → 3
        // Block 2: all zero.
        QuantizedActivation a = new QuantizedActivation();
        a.quantize(QuantizedActivation.Scheme.Q8_0, x, 0, 96);
        assertArrayEquals(new byte[] {2, 4, -2, 0, 0, 2, 127, -126}, Arrays.copyOfRange(a.q, 0, 8));
        assertEquals(1f, a.d[0]);
        assertEquals(half(1f / 127f), a.d[1]);
        assertNotEquals(1f / 127f, a.d[1], "the activation scale is stored as a half");
        assertEquals(127, a.q[32]);
        assertEquals(-38, a.q[33]); // −0.3·127 = −38.1
        assertEquals(3, a.q[34]);
        assertEquals(0f, a.d[2]);
        for (int j = 64; j < 96; j++) assertEquals(0, a.q[j]);
        for (int j = 0; j < 96; j++) assertEquals(a.d[j / 32] * a.q[j], a.dequantized()[j]);
    }

    @Test
    void q8_KRoundsLikeGgmlReference() {
        float[] x = new float[768];
        // Block 0: the largest magnitude is negative: iscale = −127/max > 0 (the largest value always maps to −127).
        x[0] = -2f;
        x[1] = 1f;    // 63.5 → 64 (half to even)
        x[2] = -1f;   // −63.5 → −64
        x[3] = 0.5f;  // 31.75 → 32
        // Block 1: the largest magnitude is positive: iscale < 0, the values flip sign.
        x[256] = 4f;
        x[257] = 1f;  // −31.75 → −32
        x[258] = -4f; // 127
        // Block 2: zero.
        QuantizedActivation a = new QuantizedActivation();
        a.quantize(QuantizedActivation.Scheme.Q8_K, x, 0, 768);
        assertArrayEquals(new byte[] {-127, 64, -64, 32, 0}, Arrays.copyOfRange(a.q, 0, 5));
        assertEquals(1f / 63.5f, a.d[0]);
        assertArrayEquals(new byte[] {-127, -32, 127, 0}, Arrays.copyOfRange(a.q, 256, 260));
        assertEquals(1f / (-127f / 4f), a.d[1]);
        assertEquals(0f, a.d[2]);
        for (int j = 512; j < 768; j++) assertEquals(0, a.q[j]);
        assertEquals(-2f, a.dequantized()[0], 1e-6f);
        assertEquals(4f, a.dequantized()[256], 1e-6f);
    }

    /**
     * The fast roundings give the scalar definitions' bytes and scales on random vectors and on the awkward ones:
     * ties, zeros of both signs, subnormal and huge magnitudes, scales that overflow, infinities and NaNs, the largest
     * magnitude at either sign and in either of two places.
     */
    @Test
    void fastRoundingsEqualTheScalarDefinitions() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(7);
        float[] specials = {0f, -0f, 0.5f, -0.5f, 1.5f, 2.5f, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-38f, 1e-37f, 3e-37f, Float.MAX_VALUE,
                -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 65504f, 1e30f};
        int n = 512, cases = 0;
        for (int trial = 0; trial < 400; trial++) {
            float[] x = new float[n + 3];
            int off = trial % 4;
            float scale = (float) Math.pow(10, rnd.nextInt(-40, 39));
            for (int j = 0; j < n; j++) {
                x[off + j] = switch (trial % 5) {
                    case 0 -> (float) rnd.nextGaussian() * scale;
                    case 1 -> rnd.nextInt(-127, 128) / 2f; // many ties at the half
                    case 2 -> rnd.nextInt(10) == 0 ? specials[rnd.nextInt(specials.length)] : (float) rnd.nextGaussian();
                    case 3 -> (rnd.nextBoolean() ? 1 : -1) * (float) (j % 7); // equal magnitudes at both signs
                    default -> j % 97 == 0 ? Float.MIN_VALUE * rnd.nextInt(-8, 9) : 0f; // scales that overflow to an infinity
                };
            }
            for (QuantizedActivation.Scheme scheme : QuantizedActivation.Scheme.values()) {
                byte[] want = new byte[n + 5], got = new byte[n + 5];
                float[] wantD = new float[n / 32 + 2], gotD = new float[n / 32 + 2];
                if (scheme == QuantizedActivation.Scheme.Q8_0) {
                    QuantizedActivation.quantizeQ8_0Scalar(x, off, n, want, 5, wantD, 2);
                    QuantizedActivation.quantizeQ8_0(x, off, n, got, 5, gotD, 2);
                } else {
                    QuantizedActivation.quantizeQ8_KScalar(x, off, n, want, 5, wantD, 2);
                    QuantizedActivation.quantizeQ8_K(x, off, n, got, 5, gotD, 2);
                }
                assertArrayEquals(want, got, scheme + " bytes, trial " + trial);
                for (int b = 0; b < wantD.length; b++) {
                    assertEquals(Float.floatToRawIntBits(wantD[b]), Float.floatToRawIntBits(gotD[b]), scheme + " scale " + b + ", trial " + trial);
                }
                cases++;
            }
        }
        assertEquals(800, cases);
    }

    @Test
    void rejectsPartialBlocks() {
        QuantizedActivation a = new QuantizedActivation();
        assertThrows(IllegalArgumentException.class, () -> a.quantize(QuantizedActivation.Scheme.Q8_0, new float[48], 0, 48));
        assertThrows(IllegalArgumentException.class, () -> a.quantize(QuantizedActivation.Scheme.Q8_K, new float[512], 0, 288));
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16"})
    void floatTypesKeepFloatActivations(GgmlType t) {
        assertNull(Kernels.rowKernel(t).activationScheme());
        Random rnd = new Random(3);
        Matrix w = new Matrix(t, TypeKernelTest.quantize(t, TypeKernelTest.gaussian(rnd, 40 * 256, 0.05f), 40, 256), 40, 256);
        float[] x = TypeKernelTest.gaussian(rnd, 256, 1f);
        float[] plain = new float[40], rounded = new float[40];
        Kernels.matVec(pool2, w, x, 0, plain, 0);
        Kernels.withActivationQuantization(true, () -> Kernels.matVec(pool2, w, x, 0, rounded, 0));
        assertArrayEquals(plain, rounded);
    }

    static final String QUANTIZED = "Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q4_K,Q5_K,Q6_K";

    /** Σ|w·x'| per row, x' the dequantized rounded activation: the scale float rounding error is relative to. */
    private static double[] magnitude(Matrix w, float[] xq) {
        TypeKernel k = Kernels.forType(w.type());
        float[] row = new float[w.cols()];
        double[] out = new double[w.rows()];
        for (int r = 0; r < w.rows(); r++) {
            k.dequantizeRow(w.data(), r * w.rowBytes(), row, 0, w.cols());
            for (int c = 0; c < w.cols(); c++) out[r] += Math.abs((double) row[c] * xq[c]);
        }
        return out;
    }

    /** The scalar reference of the rounded-activation product, row by row. */
    private static float[] scalar(Matrix w, float[] x, int xOff) {
        RowKernel k = Kernels.rowKernel(w.type());
        QuantizedActivation a = new QuantizedActivation();
        a.quantize(k.activationScheme(), x, xOff, w.cols());
        float[] out = new float[w.rows()];
        for (int r = 0; r < w.rows(); r++) out[r] = k.dotQ8Scalar(w.data(), r * w.rowBytes(), a, w.cols());
        return out;
    }

    private static float[] dequantizedActivation(GgmlType t, float[] x, int xOff, int n) {
        QuantizedActivation a = new QuantizedActivation();
        a.quantize(Kernels.rowKernel(t).activationScheme(), x, xOff, n);
        return Arrays.copyOf(a.dequantized(), n);
    }

    private static void assertClose(float[] want, double[] mag, float[] got, int gotOff, String what) {
        for (int r = 0; r < want.length; r++) {
            double tol = 1e-5 * mag[r] + 1e-6;
            if (!(Math.abs(want[r] - got[gotOff + r]) <= tol)) {
                fail(what + ": row " + r + " scalar " + want[r] + " vector " + got[gotOff + r] + " (tol " + tol + ")");
            }
        }
    }

    private static Matrix matrix(GgmlType t, int rows, int cols, Random rnd, boolean rawBytes) {
        MemorySegment data = rawBytes ? TypeKernelTest.randomBlocks(t, rows * cols, rnd)
                : TypeKernelTest.quantize(t, TypeKernelTest.gaussian(rnd, rows * cols, 0.05f), rows, cols);
        return new Matrix(t, data, rows, cols);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void matVecMatchesScalarReference(GgmlType t) {
        Random rnd = new Random(40 + t.ordinal());
        int odd = t.blockSize() == 256 ? 768 : 352;
        for (boolean raw : new boolean[] {false, true}) {
            for (int[] shape : new int[][] {{37, 256}, {301, 512}, {45, odd}, {20, 2048}}) {
                Matrix w = matrix(t, shape[0], shape[1], rnd, raw);
                float[] x = TypeKernelTest.gaussian(rnd, shape[1] + 5, 1f);
                float[] want = scalar(w, x, 5);
                double[] mag = magnitude(w, dequantizedActivation(t, x, 5, shape[1]));
                Kernels.withActivationQuantization(true, () -> {
                    for (Parallel pool : new Parallel[] {pool1, pool2}) {
                        float[] out = new float[shape[0] + 2];
                        out[0] = out[shape[0] + 1] = 42f;
                        Kernels.matVec(pool, w, x, 5, out, 1);
                        assertClose(want, mag, out, 1, t + (raw ? " raw" : "") + " matVec " + shape[0] + "x" + shape[1] + " threads=" + pool.threads());
                        assertEquals(42f, out[0]);
                        assertEquals(42f, out[shape[0] + 1]);
                    }
                    // The scalar-reference setting routes through the same scalar dot.
                    float[] ref = new float[shape[0]];
                    Kernels.withScalarReference(true, () -> {
                        Kernels.matVec(pool2, w, x, 5, ref, 0);
                        return null;
                    });
                    assertArrayEquals(want, ref);
                });
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void matMulMatchesScalarReferenceAtEveryBatchSize(GgmlType t) {
        Random rnd = new Random(70 + t.ordinal());
        int rows = 67, cols = 512, xStride = cols + 8, outStride = rows + 3;
        Matrix w = matrix(t, rows, cols, rnd, false);
        // Batches on both sides of the float path's tile threshold: rounded activations take the same dots at all.
        for (int batch : new int[] {1, 2, 3, 5, 9}) {
            float[] x = TypeKernelTest.gaussian(rnd, xStride * batch, 1f);
            Kernels.withActivationQuantization(true, () -> {
                for (Parallel pool : new Parallel[] {pool1, pool2}) {
                    float[] out = new float[outStride * batch];
                    Arrays.fill(out, Float.NaN);
                    Kernels.matMul(pool, w, x, xStride, batch, out, outStride);
                    for (int b = 0; b < batch; b++) {
                        double[] mag = magnitude(w, dequantizedActivation(t, x, b * xStride, cols));
                        assertClose(scalar(w, x, b * xStride), mag, out, b * outStride, t + " matMul batch=" + batch + " b=" + b + " threads=" + pool.threads());
                        for (int r = rows; r < outStride && b < batch - 1; r++) assertTrue(Float.isNaN(out[b * outStride + r]));
                    }
                }
            });
        }
    }

    /**
     * With rounded activations a batch's rows give every token exactly its matVec's bits, whatever the batch: Q8_0's
     * rows take four tokens per pass over a row, the other formats one at a time; batches with and without a rest of
     * fewer than four.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q5_K", "Q4_1"})
    void batchedRoundedRowsGiveEachTokenItsMatVec(GgmlType t) {
        Random rnd = new Random(90 + t.ordinal());
        int rows = 37, cols = t.blockSize() == 256 ? 768 : 544, xStride = cols + 3, outStride = rows + 2;
        Matrix w = matrix(t, rows, cols, rnd, false);
        for (int batch : new int[] {4, 7, 9}) {
            float[] x = TypeKernelTest.gaussian(rnd, xStride * batch, 1f);
            Kernels.withActivationQuantization(true, () -> {
                float[] out = new float[outStride * batch], one = new float[rows];
                Kernels.matMul(pool2, w, x, xStride, batch, out, outStride);
                for (int b = 0; b < batch; b++) {
                    Kernels.matVec(pool1, w, x, b * xStride, one, 0);
                    assertArrayEquals(one, Arrays.copyOfRange(out, b * outStride, b * outStride + rows), t + " batch=" + batch + " b=" + b);
                }
            });
        }
    }

    /**
     * Weights and activations at the ends of their ranges with every sign pattern: the integer paths keep
     * pairs of products in 16-bit halves, so these are where an overflow would show. The result must be the
     * scalar integer sum (to float rounding of the block scales).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void extremeValuesStayExact(GgmlType t) {
        int cols = 512, rows = 6;
        long rb = t.bytesFor(cols);
        MemorySegment seg = Arena.ofAuto().allocate(rows * rb, 64);
        // Rows of all-ones bits (largest quants; Q8_0: −1), all-zero bits (smallest; Q8_0: 0 → replaced by
        // −128), alternating, and random extremes.
        Random rnd = new Random(9);
        for (int r = 0; r < rows; r++) {
            for (long i = 0; i < rb; i++) {
                byte v = switch (r) {
                    case 0 -> (byte) 0xFF;
                    case 1 -> t == GgmlType.Q8_0 ? (byte) 0x80 : 0;
                    case 2 -> (byte) (i % 2 == 0 ? 0xFF : (t == GgmlType.Q8_0 ? 0x80 : 0));
                    case 3 -> t == GgmlType.Q8_0 ? (byte) 0x7F : (byte) 0xF0;
                    default -> (byte) (rnd.nextBoolean() ? 0xFF : (t == GgmlType.Q8_0 ? 0x80 : 0x0F));
                };
                seg.set(Num.BYTE, r * rb + i, v);
            }
            // Sane scales: the integer sums are what is under test.
            for (int b = 0; b < cols / t.blockSize(); b++) {
                long p = r * rb + (long) b * t.blockBytes();
                switch (t) {
                    case Q8_0, Q4_0 -> Num.putF16(seg, p, 0.5f);
                    case Q4_K, Q5_K -> {
                        Num.putF16(seg, p, 0.5f);
                        Num.putF16(seg, p + 2, 0.25f);
                    }
                    case Q6_K -> Num.putF16(seg, p + 208, 0.5f);
                    default -> throw new AssertionError(t);
                }
            }
        }
        Matrix w = new Matrix(t, seg, rows, cols);
        float[][] xs = {new float[cols], new float[cols], new float[cols], new float[cols]};
        Arrays.fill(xs[0], 1f); // Q8_0: every value rounds to 127; Q8_K: to −127 (its largest value maps to −127)
        Arrays.fill(xs[1], -1f);
        for (int c = 0; c < cols; c++) xs[2][c] = (c & 1) == 0 ? 1f : -1f;
        Arrays.fill(xs[3], 1f); // Q8_K: all but the first round to +127
        xs[3][0] = -1.0001f;
        for (float[] x : xs) {
            float[] want = scalar(w, x, 0);
            double[] mag = magnitude(w, dequantizedActivation(t, x, 0, cols));
            float[] out = new float[rows];
            Kernels.withActivationQuantization(true, () -> Kernels.matVec(pool1, w, x, 0, out, 0));
            assertClose(want, mag, out, 0, t + " extremes x[0]=" + x[0]);
        }
    }

    /** The rounded-activation product stays within the 8-bit rounding of x of the exact one. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void closeToTheFloatActivationProduct(GgmlType t) {
        Random rnd = new Random(11);
        Matrix w = matrix(t, 64, 1024, rnd, false);
        float[] x = TypeKernelTest.gaussian(rnd, 1024, 1f);
        float[] exact = new float[64], rounded = new float[64];
        Kernels.matVec(pool2, w, x, 0, exact, 0);
        Kernels.withActivationQuantization(true, () -> Kernels.matVec(pool2, w, x, 0, rounded, 0));
        TypeKernel k = Kernels.forType(t);
        float[] row = new float[1024];
        boolean differs = false;
        for (int r = 0; r < 64; r++) {
            k.dequantizeRow(w.data(), r * w.rowBytes(), row, 0, 1024);
            // |Δx| ≤ d/2 per value, d ≤ amax/127 of its block.
            double bound = 0;
            for (int c = 0; c < 1024; c++) {
                int bs = t.blockSize() == 256 ? 256 : 32, b0 = c / bs * bs;
                float amax = 0;
                for (int j = b0; j < b0 + bs; j++) amax = Math.max(amax, Math.abs(x[j]));
                bound += Math.abs(row[c]) * amax / 127 * 0.5 * 1.01;
            }
            assertTrue(Math.abs(exact[r] - rounded[r]) <= bound, t + " row " + r + ": " + exact[r] + " vs " + rounded[r] + " bound " + bound);
            differs |= exact[r] != rounded[r];
        }
        assertTrue(differs, "rounding the activations changed nothing");
    }
}
