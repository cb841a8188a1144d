package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class PackedQ6Test {
    private static Parallel pool2;

    @BeforeAll static void start() { pool2 = new Parallel(2); }
    @AfterAll static void stop() { pool2.close(); }
    @AfterEach void exact() { Kernels.setActivationQuantization(false); }

    private static Matrix q6(float[] src, int rows, int cols) {
        return new Matrix(GgmlType.Q6_K, TypeKernelTest.quantize(GgmlType.Q6_K, src, rows, cols), rows, cols);
    }

    private static Matrix random(int rows, int cols, Random rnd) {
        return q6(TypeKernelTest.gaussian(rnd, rows * cols, 0.05f), rows, cols);
    }

    private static Matrix packed(Matrix m) {
        return m.withPacked(PackedQ6.pack(m, null));
    }

    /** 48 rows: a pair of groups and a last odd group, on one and on two threads. */
    @ParameterizedTest
    @ValueSource(ints = {256, 1024, 3584})
    void sixteenBitProductsStayWithinTheirRoundingBound(int cols) {
        Random rnd = new Random(cols);
        Matrix m = random(48, cols, rnd), p = packed(m);
        float[] x = PackedProducts.activation(rnd, cols);
        for (Parallel pool : new Parallel[] {null, pool2}) {
            float[] got = new float[48];
            Kernels.matVec(pool, p, x, 0, got, 0);
            // the rounding really happens (the kernel is not secretly the float path) but stays inside the bound
            assertTrue(PackedProducts.checkWithinRoundingBound(m, got, x, "Q6_K " + cols) > 0, "no rounding error at all");
        }
    }

    /**
     * The 16-bit sums at their limits: rows whose every quant is 0 (q − 32 = −32) or, after one −32 per sub-block, 63,
     * against activations whose every value splits into hi = 126, lo = 128 (the largest low byte). Half a sub-block then
     * sums to exactly −32768 in the low bytes; one more value per sum, or a wider low byte, would wrap and be off by
     * 65536 steps.
     */
    @Test
    void extremeQuantsAndActivationsStayInTheSixteenBitRange() {
        int rows = 32, cols = 512;
        float[] src = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                float c = 0.01f * (1 + r % 3);
                src[r * cols + j] = r % 2 == 0 ? -c : (j % 16 == 0 ? -c : c * 31 / 32);
            }
        }
        Matrix m = q6(src, rows, cols);
        float[] x = new float[cols];
        Arrays.fill(x, 32384f / 32512f);
        for (int j = 0; j < cols; j += 32) x[j] = 1f; // the block maximum: 32512 steps, the others 32384 = 256·126 + 128
        x[64] = -1f;
        float[] got = new float[rows];
        Kernels.matVec(pool2, packed(m), x, 0, got, 0);
        PackedProducts.checkWithinRoundingBound(m, got, x, "extreme");
        assertTrue(got[0] < -1 && got[1] > 1, "the products are far from zero: " + got[0] + ", " + got[1]);
    }

    /**
     * With activations rounded as llama.cpp does (Q8_K), the packed products are ggml's integer sums per sub-block: only
     * the float order differs from the row path's dotQ8. Includes rows of all-0 quants against activations that round to
     * ±127 everywhere, the largest 16-bit sums the kernel forms.
     */
    @ParameterizedTest
    @ValueSource(ints = {256, 3584})
    void eightBitProductsEqualTheIntegerDotsOfTheRowPath(int cols) {
        Random rnd = new Random(21 + cols);
        float[] src = TypeKernelTest.gaussian(rnd, 48 * cols, 0.05f);
        for (int j = 0; j < cols; j++) src[j] = -0.02f; // row 0: every quant 0, q − 32 = −32
        Matrix m = q6(src, 48, cols), p = packed(m);
        float[] x = PackedProducts.activation(rnd, cols);
        java.util.Arrays.fill(x, 0, 256, 3f); // the first super-block rounds to −127 everywhere
        Kernels.setActivationQuantization(true);
        float[] got = new float[48];
        Kernels.matVec(pool2, p, x, 0, got, 0);
        QuantizedActivation a = new QuantizedActivation();
        a.quantize(QuantizedActivation.Scheme.Q8_K, x, 0, cols);
        assertEquals(-127, a.q[0], "the extreme activation");
        PackedProducts.checkIntegerDots(m, got, a, "Q6_K");
        // batches of rounded vectors take the packed path too, vector by vector
        float[] two = new float[2 * cols], batched = new float[96];
        System.arraycopy(x, 0, two, 0, cols);
        System.arraycopy(x, 0, two, cols, cols);
        Kernels.matMul(pool2, p, two, cols, 2, batched, 48);
        for (int r = 0; r < 48; r++) {
            assertEquals(got[r], batched[r], "batched row " + r);
            assertEquals(got[r], batched[48 + r], "batched row " + r);
        }
    }

    /** Groups run in pairs; a group run alone (a row slice, or the last of an odd count) gives the same bits. */
    @Test
    void groupPairsGiveTheSameBitsAsSingleGroups() {
        Random rnd = new Random(9);
        Matrix m = packed(random(80, 512, rnd));
        float[] x = PackedProducts.activation(rnd, 512);
        float[] all = new float[80], one = new float[16];
        Kernels.matVec(null, m, x, 0, all, 0); // one thread over groups 0..4: pairs (0,2), (1,3), then 4 alone
        for (int g = 0; g < 5; g++) {
            Kernels.matVec(null, m.rows(16 * g, 16), x, 0, one, 0);
            for (int r = 0; r < 16; r++) assertEquals(one[r], all[16 * g + r], "group " + g + " row " + r);
        }
        assertNull(m.rows(8, 16).packed(), "a slice that cuts a group keeps only the file's rows");
    }

    @Test
    void smallBatchesAndGatedProductsAgreeWithSingleVectors() {
        Random rnd = new Random(3);
        int rows = 64, cols = 512;
        Matrix g = packed(random(rows, cols, rnd)), u = packed(random(rows, cols, rnd));
        float[] x = PackedProducts.activation(rnd, 3 * cols);
        float[] batched = new float[3 * rows], one = new float[rows];
        Kernels.matMul(pool2, g, x, cols, 3, batched, rows); // below the tile threshold: packed, vector by vector
        for (int b = 0; b < 3; b++) {
            Kernels.matVec(pool2, g, x, b * cols, one, 0);
            for (int r = 0; r < rows; r++) assertEquals(one[r], batched[b * rows + r], "vector " + b + " row " + r);
        }
        float[] gated = new float[rows], gu = new float[rows], uu = new float[rows];
        Kernels.gatedMatVec(pool2, g, u, (a, b) -> a * 2 + b, x, cols, gated, 0);
        Kernels.matVec(pool2, g, x, cols, gu, 0);
        Kernels.matVec(pool2, u, x, cols, uu, 0);
        for (int r = 0; r < rows; r++) assertEquals(gu[r] * 2 + uu[r], gated[r], "gated row " + r);
    }

    /** Panels hold (q − 32)·d·scale rounded once, the floats the file's rows decode to, from any multiple of 16 columns. */
    @Test
    void panelsHoldTheValuesTheFileRowsDecodeTo() {
        Matrix m = random(32, 768, new Random(8));
        PackedQ6 p = PackedQ6.pack(m, null);
        PackedProducts.checkPanels(m, p, 0, 0f);
        PackedProducts.checkPanels(m, p, 272, 0f);
    }

    /** Float batches multiply decoded panels (two column ranges of 512 and 256, 6 tokens at a time plus the rest). */
    @ParameterizedTest
    @ValueSource(ints = {4, 9})
    void largeFloatBatchesMultiplyDecodedPanels(int batch) {
        Random rnd = new Random(9);
        Matrix m = random(48, 768, rnd);
        PackedProducts.checkBatchOnPanels(pool2, m, packed(m), batch, rnd);
    }

    @Test
    void onlyQ6_KWithWholeGroupsIsPackedAsQ6() {
        Random rnd = new Random(6);
        assertTrue(PackedQ6.canPack(random(16, 256, rnd)));
        assertFalse(PackedQ6.canPack(random(24, 256, rnd)));
        float[] src = TypeKernelTest.gaussian(rnd, 16 * 256, 0.05f);
        Matrix q40 = new Matrix(GgmlType.Q4_0, TypeKernelTest.quantize(GgmlType.Q4_0, src, 16, 256), 16, 256);
        assertFalse(PackedQ6.canPack(q40));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PackedQ6.pack(q40, null));
        assertTrue(e.getMessage().contains("Q4_0 16x256"), e.getMessage());
        assertInstanceOf(PackedQ4.class, Packing.packed(q40).packed());
        Matrix m = random(32, 512, rnd);
        // 2 groups × 32 sub-blocks: 128 shorts of quants and 16 float scales each
        assertEquals(2 * 32 * (256 + 64), Packing.packedBytes(m));
        assertEquals(Packing.packedBytes(m), Packing.packed(m).packed().byteSize());
        assertEquals(Packing.packedBytes(m) / 2, Packing.packed(m).rows(16, 16).packed().byteSize());
    }
}
