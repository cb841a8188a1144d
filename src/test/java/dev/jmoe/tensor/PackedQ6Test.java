package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class PackedQ6Test {
    private static Parallel pool2;

    @BeforeAll static void start() { pool2 = new Parallel(2); }
    @AfterAll static void stop() { pool2.close(); }

    private static Matrix q6(float[] src, int rows, int cols) {
        return new Matrix(GgmlType.Q6_K, TypeKernelTest.quantize(GgmlType.Q6_K, src, rows, cols), rows, cols);
    }

    private static Matrix random(int rows, int cols, Random rnd) {
        return q6(TypeKernelTest.gaussian(rnd, rows * cols, 0.05f), rows, cols);
    }

    private static Matrix packed(Matrix m) {
        return m.withPacked(PackedQ6.pack(m, null));
    }

    /**
     * Batches of 8-bit activations (Q8_K, four vectors per pass, multipliers paired as ints) give every vector exactly
     * the bits a product of that vector alone gives: odd and even batches, an odd number of pairs, several chunks of pairs,
     * groups from the middle of the copy, results at a stride with gaps, and a block at the activation's extreme steps.
     */
    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4, 5, 6, 9, 37})
    void eightBitBatchesEqualEachVectorAlone(int batch) {
        Random rnd = new Random(500 + batch);
        int rows = 80, cols = 512, outStride = rows + 5;
        PackedQ6 p = PackedQ6.pack(random(rows, cols, rnd), null);
        float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
        java.util.Arrays.fill(x, 0, 32, -2f); // every value at the largest step of its Q8_K block
        float[] got = PackedProducts.checkBatchEqualsEachVectorAlone(p, PackedQ4.Precision.Q6_BITS_8, QuantizedActivation.Scheme.Q8_K, x, batch, 5,
                outStride);
        for (int b = 0; b < batch; b++) assertNotEquals(0f, got[3 + b * outStride + 17], "vector " + b + " was computed");
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
        Kernels.withActivationQuantization(true, () -> {
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
        });
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

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int BLOCK = 210;

    /**
     * Sets every super-block's f16 d and int8 scales of {@code m}'s rows in the file's bytes: zeros of both signs,
     * normal and subnormal halves of both signs (the smallest and largest), any finite half; scales −128, 127, 0 and
     * any byte. With {@code specials}, some d are ±infinity and NaNs (quiet and signalling).
     */
    private static Matrix withExtremeScales(Matrix m, Random rnd, boolean specials) {
        short[] halves = {0x3C00, (short) 0xBC00, 0x0000, (short) 0x8000, 0x0001, (short) 0x8001, 0x03FF, (short) 0x83FF, 0x0200,
                0x0400, (short) 0x8400, 0x7BFF, (short) 0xFBFF, 0x2E66, 0x1400};
        short[] nonFinite = {0x7C00, (short) 0xFC00, 0x7E00, (short) 0xFE01, 0x7C01};
        MemorySegment seg = m.data();
        for (int r = 0; r < m.rows(); r++) {
            for (int s = 0; s < m.cols() / 256; s++) {
                long p = r * m.rowBytes() + (long) s * BLOCK;
                short d;
                if (specials && rnd.nextInt(8) == 0) d = nonFinite[rnd.nextInt(nonFinite.length)];
                else if (rnd.nextBoolean()) d = halves[rnd.nextInt(halves.length)];
                else do d = (short) rnd.nextInt(); while ((d & 0x7C00) == 0x7C00);
                seg.set(HALF, p + 208, d);
                for (int j = 0; j < 16; j++) {
                    int sc = switch ((j + r + s) % 8) { case 0 -> -128; case 1 -> 127; case 2 -> 0; default -> rnd.nextInt(256) - 128; };
                    seg.set(ValueLayout.JAVA_BYTE, p + 192 + j, (byte) sc);
                }
            }
        }
        return m;
    }

    /** Quant v (0..63) of the super-block at p of the file's rows, from ql and qh as in ggml. */
    private static int quant(MemorySegment seg, long p, int v) {
        int h = v / 128, t = (v % 128) / 32, l = v % 32;
        int ql = seg.get(ValueLayout.JAVA_BYTE, p + 64 * h + 32 * (t & 1) + l) & 0xFF, qh = seg.get(ValueLayout.JAVA_BYTE, p + 128 + 32 * h + l) & 0xFF;
        return (t < 2 ? ql & 0xF : ql >>> 4) | ((qh >>> (2 * t)) & 3) << 4;
    }

    /** Row r's scale of sub-block j as the copy with float scales stored it: the file's half d widened, times the int8 scale, in float. */
    private static float scale(Matrix m, int r, int j) {
        long p = r * m.rowBytes() + (long) (j / 16) * BLOCK;
        return Float.float16ToFloat(m.data().get(HALF, p + 208)) * m.data().get(ValueLayout.JAVA_BYTE, p + 192 + j % 16);
    }

    /**
     * What the kernels compute for rows [r0, r1), in their float order, scalar: per sub-block j the exact integer sum
     * t = Σ(q − 32)·x over its 16 values (x = 256·hi + lo, or the 8-bit q, read back from the laid-out multipliers),
     * then acc = fma(t, scale·d_x, acc) sub-block after sub-block, scale as {@link #scale}.
     */
    private static float[] reference(Matrix m, PackedQ4.Activation a, int r0, int r1) {
        boolean rounded = a.precision == PackedQ4.Precision.Q6_BITS_8;
        int perHalf = rounded ? 9 : 18;
        short[] v = a.v;
        float[] out = new float[r1 - r0];
        for (int r = r0; r < r1; r++) {
            float acc = 0;
            for (int j = 0; j < m.cols() / 16; j++) {
                long p = r * m.rowBytes() + (long) (j / 16) * BLOCK;
                long t = 0;
                for (int h = 0; h < 2; h++) {
                    int o = j * 2 * perHalf + h * perHalf;
                    for (int i = 0; i < 4; i++) {
                        int va = 16 * (j % 16) + 8 * h + i, xa, xb;
                        if (rounded) {
                            int k = o + 1 + 2 * i;
                            xa = v[k];
                            xb = v[k + 1] + 64 * v[k];
                        } else {
                            int k = o + 2 + 4 * i;
                            xa = 256 * v[k] + v[k + 1];
                            xb = 256 * (v[k + 2] + 64 * v[k]) + v[k + 3] + 64 * v[k + 1];
                        }
                        t += (long) (quant(m.data(), p, va) - 32) * xa + (long) (quant(m.data(), p, va + 4) - 32) * xb;
                    }
                }
                acc = Math.fma((float) t, scale(m, r, j) * a.d[j / 2], acc);
            }
            out[r - r0] = acc;
        }
        return out;
    }

    private static PackedQ4.Activation activation(float[] x, boolean rounded) {
        PackedQ4.Activation a = new PackedQ4.Activation();
        if (rounded) a.prepare(PackedQ4.Precision.Q6_BITS_8, QuantizedActivation.Scheme.Q8_K, x, 0, x.length, 1, x.length);
        else a.prepare(PackedQ4.Precision.Q6_BITS_16, null, x, 0, x.length, 1, x.length);
        return a;
    }

    private static void assertBitsEqual(float[] want, float[] got, String what) {
        for (int r = 0; r < want.length; r++) {
            // assertEquals on floats compares Float.floatToIntBits: −0 differs from 0, every NaN equals every NaN
            assertEquals(want[r], got[r], what + " row " + r + ": " + want[r] + " vs " + got[r]);
        }
    }

    /**
     * Every product has the bits of the scalar reference (float scales d·scale, sub-blocks fused-multiply-added in
     * order), whatever layout keeps the scales: both precisions, 3 groups (a pair and an odd one) and a slice starting at
     * group 1, on d of every kind (negative, subnormal, ±0, the largest) and scales −128, 127 and 0.
     */
    @ParameterizedTest
    @ValueSource(ints = {256, 768})
    void productsKeepTheBitsOfFloatScales(int cols) {
        Random rnd = new Random(77 + cols);
        Matrix m = withExtremeScales(random(48, cols, rnd), rnd, false);
        PackedQ6 p = PackedQ6.pack(m, null);
        float[] x = PackedProducts.activation(rnd, cols);
        for (boolean rounded : new boolean[] {false, true}) {
            PackedQ4.Activation a = activation(x, rounded);
            float[] got = new float[48], slice = new float[32];
            p.product(a, 0, 0, 0, 3, got, 0);
            float[] want = reference(m, a, 0, 48);
            assertBitsEqual(want, got, (rounded ? "8-bit " : "16-bit ") + cols);
            p.rows(16, 32).product(a, 0, 0, 0, 2, slice, 0);
            assertBitsEqual(Arrays.copyOfRange(want, 16, 48), slice, "slice, " + (rounded ? "8-bit " : "16-bit ") + cols);
            int subnormal = 0, negative = 0;
            for (int r = 0; r < 48; r++) {
                for (int b = 0; b < cols / 256; b++) {
                    short d = m.data().get(HALF, r * m.rowBytes() + (long) b * BLOCK + 208);
                    if ((d & 0x7C00) == 0 && (d & 0x3FF) != 0) subnormal++;
                    if (d < 0 && d != (short) 0x8000) negative++;
                }
            }
            assertTrue(subnormal > 0 && negative > 0, "the halves cover the cases: " + subnormal + " subnormal, " + negative + " negative");
        }
    }

    /** Panels decode each value as n·s − 32·s in one FMA with s the float scale of {@link #scale}, from any column of 16. */
    @Test
    void panelsUseTheFloatScales() {
        Random rnd = new Random(31);
        Matrix m = withExtremeScales(random(32, 768, rnd), rnd, true);
        PackedQ6 p = PackedQ6.pack(m, null);
        for (int c0 : new int[] {0, 272}) {
            for (int c1 : new int[] {512, 768}) {
                float[] panel = new float[16 * (c1 - c0)];
                for (int g = 0; g < 2; g++) {
                    p.panel(g, c0, c1, panel);
                    for (int r = 0; r < 16; r++) {
                        int row = 16 * g + r;
                        for (int c = c0; c < c1; c++) {
                            float s = scale(m, row, c / 16);
                            float want = Math.fma((float) quant(m.data(), row * m.rowBytes() + (long) (c / 256) * BLOCK, c % 256), s, s * -32f);
                            assertEquals(want, panel[16 * (c - c0) + r], "row " + row + " column " + c);
                        }
                    }
                }
            }
        }
    }

    /**
     * A copy laid out for 8-bit activations (the file's int8 scales at each pair of sub-blocks' head, d per super-block,
     * widened in the kernels) gives every product the bits of the copy with float scales: single vectors at 16 and 8
     * bits (group pairs and a group alone), 8-bit batches of the paired kernel's sizes, float batches on panels, and the
     * panels themselves; on one thread and two; with d of every kind, ±infinity and NaN among them, and scales −128, 127
     * and 0. It takes 8.63 bits per weight where the float-scale copy takes 10.
     */
    @ParameterizedTest
    @ValueSource(ints = {256, 768, 3584})
    void compactCopiesGiveTheBitsOfTheFloatScaleCopy(int cols) {
        Random rnd = new Random(cols + 3);
        int rows = 80; // five groups: two pairs and one alone
        Matrix m = withExtremeScales(random(rows, cols, rnd), rnd, true);
        PackedQ6 wide = PackedQ6.pack(m, pool2, false), compact = PackedQ6.pack(m, pool2, true);
        long weights = (long) rows * cols;
        assertEquals(weights * 10 / 8, wide.byteSize());
        assertEquals(weights * 69 / 64, compact.byteSize(), "8.625 bits per weight");
        assertEquals(PackedQ6.packedBytes(m, true), compact.byteSize());
        float[] x = PackedProducts.activation(rnd, cols);
        for (boolean rounded : new boolean[] {false, true}) {
            PackedQ4.Activation a = activation(x, rounded);
            float[] alone = new float[rows];
            compact.product(a, 0, 0, 0, rows / 16, alone, 0);
            assertBitsEqual(reference(m, a, 0, rows), alone, "compact, scalar reference, rounded " + rounded);
        }
        int[] nonFinite = {0};
        PackedProducts.checkLayoutsGiveTheSameBits(m, wide, compact, pool2, got -> {
            for (float f : got) if (!Float.isFinite(f)) nonFinite[0]++;
            assertNotEquals(0f, got[rows - 1]);
        });
        assertTrue(nonFinite[0] > 0, "some rows meet an infinite or NaN d");
    }

    /** {@link Packing#pack} lays Q6_K out compact for 8-bit activations only; planning counts the larger copy. */
    @Test
    void packingFollowsTheThreadsActivationRounding() {
        Matrix m = random(32, 512, new Random(8));
        assertEquals(PackedQ6.packedBytes(m, false), Packing.pack(m, null).byteSize());
        Kernels.withActivationQuantization(true, () -> {
            assertEquals(PackedQ6.packedBytes(m, true), Packing.pack(m, null).byteSize());
            assertEquals(PackedQ6.packedBytes(m, true), Packing.packBytes(m));
        });
        assertTrue(PackedQ6.packedBytes(m, true) < PackedQ6.packedBytes(m, false));
        assertEquals(PackedQ6.packedBytes(m, false), Packing.largestPackedBytes(m));
        assertEquals(PackedQ6.packedBytes(m, false), Packing.packBytes(m));
    }

    /**
     * Infinite and NaN d still give the float scales' products:
     * ±infinity and NaN exactly where the float layout gave them, finite rows elsewhere.
     */
    @Test
    void infiniteAndNaNScalesGiveTheFloatScalesProducts() {
        Random rnd = new Random(5);
        Matrix m = withExtremeScales(random(64, 512, rnd), rnd, true);
        PackedQ6 p = PackedQ6.pack(m, null);
        float[] x = PackedProducts.activation(rnd, 512);
        for (boolean rounded : new boolean[] {false, true}) {
            PackedQ4.Activation a = activation(x, rounded);
            float[] got = new float[64];
            p.product(a, 0, 0, 0, 4, got, 0);
            assertBitsEqual(reference(m, a, 0, 64), got, rounded ? "8-bit" : "16-bit");
            int nonFinite = 0;
            for (float f : got) if (!Float.isFinite(f)) nonFinite++;
            assertTrue(nonFinite > 0 && nonFinite < 64, nonFinite + " of 64 rows not finite");
        }
    }
}
