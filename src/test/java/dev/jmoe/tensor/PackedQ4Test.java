package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static dev.jmoe.tensor.PackedMatrix.ROWS;
import static org.junit.jupiter.api.Assertions.*;

class PackedQ4Test {
    private static Parallel pool2;

    @BeforeAll static void start() { pool2 = new Parallel(2); }
    @AfterAll static void stop() { pool2.close(); }

    private static Matrix randomQ4_0(int rows, int cols, Random rnd) {
        return random(GgmlType.Q4_0, rows, cols, rnd);
    }

    private static Matrix random(GgmlType type, int rows, int cols, Random rnd) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        // Q4_K: an offset per row so that the mins are not all alike
        if (type == GgmlType.Q4_K) for (int i = 0; i < src.length; i++) src[i] += 0.02f * ((i / cols) % 5 - 2);
        return new Matrix(type, TypeKernelTest.quantize(type, src, rows, cols), rows, cols);
    }

    private static Matrix packed(Matrix m) {
        return m.withPacked(PackedQ4.pack(m));
    }

    /**
     * 16-bit activations: x is rounded to steps of amax/32512 per block of 32, so a row's product may move by at
     * most Σ_blocks (amax_b/65024)·Σ_{j in b}|w_j| from the exact one (plus float rounding). The bound is checked
     * row by row against the scalar reference on the file's rows.
     */
    @ParameterizedTest
    @CsvSource({"Q4_0, 32", "Q4_0, 256", "Q4_0, 1024", "Q4_0, 3584", "Q4_K, 256", "Q4_K, 1024", "Q4_K, 3584"})
    void sixteenBitProductsStayWithinTheirRoundingBound(GgmlType type, int cols) {
        Random rnd = new Random(cols);
        Matrix m = random(type, 48, cols, rnd);
        Matrix p = packed(m);
        float[] x = PackedProducts.activation(rnd, cols);
        float[] got = new float[48];
        Kernels.matVec(pool2, p, x, 0, got, 0);
        // the rounding really happens (the kernel is not secretly the float path) but stays inside the bound
        assertTrue(PackedProducts.checkWithinRoundingBound(m, got, x, type.toString()) > 0, "no rounding error at all");
    }

    /** With activations rounded as llama.cpp does, the packed products are ggml's integer sums: only the float order differs. */
    @ParameterizedTest
    @CsvSource({"Q4_0, Q8_0, 32", "Q4_0, Q8_0, 1024", "Q4_0, Q8_0, 3584", "Q4_K, Q8_K, 256", "Q4_K, Q8_K, 3584"})
    void eightBitProductsEqualTheIntegerDotsOfTheRowPath(GgmlType type, QuantizedActivation.Scheme rounding, int cols) {
        Random rnd = new Random(7 + cols);
        Matrix m = random(type, 32, cols, rnd);
        Matrix p = packed(m);
        float[] x = PackedProducts.activation(rnd, cols);
        Kernels.withActivationQuantization(true, () -> {
            float[] got = new float[32];
            Kernels.matVec(pool2, p, x, 0, got, 0);
            QuantizedActivation a = new QuantizedActivation();
            a.quantize(rounding, x, 0, cols);
            PackedProducts.checkIntegerDots(m, got, a, type.toString());
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q4_0", "Q4_K"})
    void batchedAndGatedProductsAgreeWithSingleVectors(GgmlType type) {
        Random rnd = new Random(3);
        int rows = 64, cols = 512;
        Matrix g = packed(random(type, rows, cols, rnd)), u = packed(random(type, rows, cols, rnd));
        float[] x = new float[3 * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (boolean rounded : new boolean[] {false, true}) {
            Kernels.withActivationQuantization(rounded, () -> {
                // batch of 3: below the tile threshold, so packed vector by vector (rounded: at any batch size)
                float[] batched = new float[3 * rows];
                Kernels.matMul(pool2, g, x, cols, 3, batched, rows);
                float[] one = new float[rows];
                for (int b = 0; b < 3; b++) {
                    Kernels.matVec(pool2, g, x, b * cols, one, 0);
                    for (int r = 0; r < rows; r++) assertEquals(one[r], batched[b * rows + r], "rounded " + rounded + " vector " + b + " row " + r);
                }
                float[] gated = new float[rows], gu = new float[rows], uu = new float[rows];
                Kernels.gatedMatVec(pool2, g, u, (a, b) -> a * 2 + b, x, cols, gated, 0);
                Kernels.matVec(pool2, g, x, cols, gu, 0);
                Kernels.matVec(pool2, u, x, cols, uu, 0);
                for (int r = 0; r < rows; r++) assertEquals(gu[r] * 2 + uu[r], gated[r], "rounded " + rounded + " gated row " + r);
            });
        }
    }

    /** A panel holds each group's weights column by column: for Q4_0 the very floats the file's rows decode to. */
    @ParameterizedTest
    @CsvSource({"Q4_0, 1056", "Q4_K, 768"})
    void panelsHoldTheValuesTheFileRowsDecodeTo(GgmlType type, int cols) {
        Matrix m = random(type, 32, cols, new Random(7));
        float maxAbs = 0, row[] = new float[cols];
        for (int r = 0; r < 32; r++) {
            Kernels.forType(type).dequantize(m.data(), r * m.rowBytes(), row, 0, cols);
            for (float v : row) maxAbs = Math.max(maxAbs, Math.abs(v));
        }
        // Q4_K: n·scale + (offset − 8·scale) rounds the stored offset once more than the file's d·sc·q − dmin·m
        float tolerance = type == GgmlType.Q4_0 ? 0f : 4 * Math.ulp(maxAbs);
        PackedQ4 p = PackedQ4.pack(m);
        PackedProducts.checkPanels(m, p, 0, tolerance);
        PackedProducts.checkPanels(m, p, 256, tolerance); // a panel need not start at column 0
    }

    /**
     * Float batches from the tile size on multiply decoded panels: the float product of the file's rows up to the
     * order of the sums, over panels of several column ranges and batches of 6 tokens plus the rest.
     */
    @ParameterizedTest
    @CsvSource({"Q4_0, 1056, 4", "Q4_0, 1056, 13", "Q4_K, 768, 8", "Q4_K, 768, 7"})
    void largeFloatBatchesMultiplyDecodedPanels(GgmlType type, int cols, int batch) {
        Random rnd = new Random(4);
        Matrix m = random(type, 64, cols, rnd);
        PackedProducts.checkBatchOnPanels(pool2, m, packed(m), batch, rnd);
    }

    /** Each token's sums run over the columns in order whatever kernel takes it: a token's result ignores the batch. */
    @Test
    void panelProductsOfATokenDoNotDependOnTheBatch() {
        Random rnd = new Random(5);
        int rows = 32, cols = 1024;
        Matrix m = packed(random(GgmlType.Q4_0, rows, cols, rnd));
        float[] x = new float[13 * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        float[] all = new float[13 * rows];
        Kernels.matMul(pool2, m, x, cols, 13, all, rows);
        for (int batch : new int[] {4, 5, 7, 8}) {
            float[] some = new float[batch * rows];
            Kernels.matMul(pool2, m, x, cols, batch, some, rows);
            assertArrayEquals(java.util.Arrays.copyOf(all, batch * rows), some, "first " + batch + " tokens");
        }
    }

    /**
     * Batches of 8-bit activations (eight or four vectors per pass, multipliers paired as ints) give every vector exactly
     * the bits a product of that vector alone gives: odd and even batches, an odd number of pairs, several chunks of pairs,
     * groups from the middle of the copy, the results at a stride with gaps, and extreme activations (a block of ±127
     * steps, one all zero).
     */
    @ParameterizedTest
    @CsvSource({"Q4_0, Q8_0, 2", "Q4_0, Q8_0, 3", "Q4_0, Q8_0, 4", "Q4_0, Q8_0, 5", "Q4_0, Q8_0, 6", "Q4_0, Q8_0, 9",
            "Q4_K, Q8_K, 2", "Q4_K, Q8_K, 5", "Q4_K, Q8_K, 7", "Q4_K, Q8_K, 8", "Q4_0, Q8_0, 37", "Q4_K, Q8_K, 70"})
    void eightBitBatchesEqualEachVectorAlone(GgmlType type, QuantizedActivation.Scheme rounding, int batch) {
        Random rnd = new Random(300 + batch);
        int rows = 80, cols = 512, outStride = rows + 5;
        PackedQ4 p = PackedQ4.pack(random(type, rows, cols, rnd));
        float[] x = new float[batch * cols];
        for (int b = 0; b < batch; b++) System.arraycopy(PackedProducts.activation(rnd, cols), 0, x, b * cols, cols);
        java.util.Arrays.fill(x, 0, 32, 3f); // every value of a block at the block's largest step: Σ(q−8)·x at its extremes
        java.util.Arrays.fill(x, cols + 32, cols + 64, 0f); // a zero block: scale 0
        float[] got = PackedProducts.checkBatchEqualsEachVectorAlone(p, PackedQ4.Precision.BITS_8, rounding, x, batch, 5, outStride);
        for (int b = 0; b < batch; b++) assertNotEquals(0f, got[3 + b * outStride + 17], "vector " + b + " was computed");
    }

    /** Through a tiled set (a prompt's products) with rounded activations, each token's rows are its matVec's. */
    @ParameterizedTest
    @ValueSource(strings = {"Q4_0", "Q4_K"})
    void roundedPromptsGiveEachTokenItsMatVec(GgmlType type) {
        Random rnd = new Random(41);
        int rows = 96, cols = 768, batch = 11;
        Matrix m = packed(random(type, rows, cols, rnd));
        float[] x = new float[batch * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        float[] all = new float[batch * rows], one = new float[rows];
        Kernels.withActivationQuantization(true, () -> {
            Kernels.matMul(pool2, m, x, cols, batch, all, rows);
            for (int b = 0; b < batch; b++) {
                Kernels.matVec(null, m, x, b * cols, one, 0);
                assertArrayEquals(one, java.util.Arrays.copyOfRange(all, b * rows, (b + 1) * rows), "token " + b);
            }
        });
    }

    /** 16-bit products take two groups per pass where they can; that changes no bit of any row. */
    @ParameterizedTest
    @ValueSource(strings = {"Q4_0", "Q4_K"})
    void groupPairsGiveTheSameBitsAsSingleGroups(GgmlType type) {
        Random rnd = new Random(9);
        Matrix m = packed(random(type, 80, 512, rnd));
        float[] x = PackedProducts.activation(rnd, 512);
        float[] all = new float[80], one = new float[16];
        Kernels.matVec(null, m, x, 0, all, 0); // one thread over groups 0..4: pairs (0,2), (1,3), then 4 alone
        for (int g = 0; g < 5; g++) {
            Kernels.matVec(null, m.rows(16 * g, 16), x, 0, one, 0);
            for (int r = 0; r < 16; r++) assertEquals(one[r], all[16 * g + r], type + " group " + g + " row " + r);
        }
    }

    /**
     * A Q4_0 copy for 8-bit activations also keeps each block's scales as the file's halves, at the block's head, which
     * the matrix-vector kernel widens in line (reading 2 bytes per row and block rather than 4): the same bits as the float-scale copy,
     * for subnormal and negative-zero scales too, whole and as a row slice; a copy with an infinite scale keeps none.
     */
    @ParameterizedTest
    @ValueSource(ints = {768, 3584})
    void q4_0CopiesFor8BitProductsWidenHalfScalesToTheFloatScaleCopysBits(int cols) {
        Random rnd = new Random(cols + 5);
        int rows = 80;
        Matrix m = randomQ4_0(rows, cols, rnd);
        long blockBytes = GgmlType.Q4_0.blockBytes();
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 5 * m.rowBytes() + 2 * blockBytes, (short) 0x0003); // subnormal
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 9 * m.rowBytes() + 7 * blockBytes, (short) 0x8000); // -0
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 70 * m.rowBytes(), (short) 0xfbff); // -65504
        PackedQ4 wide = PackedQ4.pack(m, pool2, false), halves = PackedQ4.pack(m, pool2, true);
        long halfBytes = (long) rows * (cols / 32) * 2;
        assertEquals(wide.byteSize() + halfBytes, halves.byteSize(), "a half per row and block beside the float scales");
        assertEquals(PackedQ4.packedBytes(m, true), halves.byteSize());
        float[] x = PackedProducts.activation(rnd, cols);
        Kernels.withActivationQuantization(true, () -> {
            for (Parallel pool : new Parallel[] {null, pool2}) {
                float[] want = new float[rows], got = new float[rows];
                Kernels.matVec(pool, m.withPacked(wide), x, 0, want, 0);
                Kernels.matVec(pool, m.withPacked(halves), x, 0, got, 0);
                assertArrayEquals(want, got, "pool " + pool);
                assertNotEquals(0f, got[70]);
                float[] wantSlice = new float[32], gotSlice = new float[32];
                Matrix slice = m.rows(48, 32);
                Kernels.matVec(pool, slice.withPacked(wide.rows(48, 32)), x, 0, wantSlice, 0);
                Kernels.matVec(pool, slice.withPacked(halves.rows(48, 32)), x, 0, gotSlice, 0);
                assertArrayEquals(wantSlice, gotSlice, "rows 48-79, pool " + pool);
                assertArrayEquals(java.util.Arrays.copyOfRange(want, 48, 80), gotSlice);
            }
        });
        // the halves sit at each block's head: 16-bit products (which skip the heads), batches, panels and slices too
        PackedProducts.checkLayoutsGiveTheSameBits(m, wide, halves, pool2, got -> assertNotEquals(0f, got[70]));
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 3 * m.rowBytes() + blockBytes, (short) 0x7c00); // +inf
        PackedQ4 infinite = PackedQ4.pack(m, pool2, true);
        assertEquals(PackedQ4.pack(m, pool2, false).byteSize(), infinite.byteSize(), "no halves: the lane widening would make +inf finite");
        Kernels.withActivationQuantization(true, () -> {
            float[] got = new float[rows];
            Kernels.matVec(pool2, m.withPacked(infinite), x, 0, got, 0);
            assertTrue(Float.isNaN(got[3]) || Float.isInfinite(got[3]), "row 3 meets its infinite scale: " + got[3]);
        });
    }

    /**
     * A Q4_K copy laid out for 8-bit activations (the file's sc and m per block, d and dmin per super-block, widened in
     * the kernels) gives every product the bits of the copy with float scales: single vectors at 16 and 8 bits (group
     * pairs and a group alone), 8-bit batches of each kernel's sizes, float batches on panels, and the panels themselves;
     * on one thread and two, with a super-block whose d is infinite and one whose d and dmin are 0.
     */
    @ParameterizedTest
    @ValueSource(ints = {768, 3584})
    void compactQ4_KCopiesGiveTheBitsOfTheFloatScaleCopy(int cols) {
        Random rnd = new Random(cols + 11);
        int rows = 80; // five groups: two pairs and one alone
        Matrix m = random(GgmlType.Q4_K, rows, cols, rnd);
        long superBytes = GgmlType.Q4_K.blockBytes();
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 3 * m.rowBytes() + superBytes, (short) 0x7c00); // row 3, super-block 1: d = +inf
        m.data().set(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 40 * m.rowBytes(), 0); // row 40, super-block 0: d = dmin = 0
        PackedQ4 wide = PackedQ4.pack(m, pool2, false), compact = PackedQ4.pack(m, pool2, true);
        assertEquals(PackedQ4.packedBytes(m, true), compact.byteSize());
        assertTrue(compact.byteSize() <= 1.06 * m.rows() * m.rowBytes(), compact.byteSize() + " bytes for a file of " + m.rows() * m.rowBytes());
        assertTrue(wide.byteSize() > 1.3 * m.rows() * m.rowBytes());
        PackedProducts.checkLayoutsGiveTheSameBits(m, wide, compact, pool2, got -> {
            assertTrue(Float.isNaN(got[3]) || Float.isInfinite(got[3]), "row 3 meets its infinite d: " + got[3]);
            assertNotEquals(0f, got[rows - 1]);
        });
    }

    /**
     * {@link Packing#pack} lays Q4_K and Q4_0 out for the calling thread's rounding (Q4_0's copy for 8-bit activations
     * also keeps half scales), and planning counts the larger copy.
     */
    @Test
    void packingFollowsTheThreadsActivationRounding() {
        Random rnd = new Random(12);
        Matrix q4k = random(GgmlType.Q4_K, 32, 512, rnd), q40 = randomQ4_0(32, 512, rnd);
        long plain = Packing.pack(q4k, null).byteSize();
        long rounded = Kernels.withActivationQuantization(true, () -> Packing.pack(q4k, null).byteSize());
        assertEquals(PackedQ4.packedBytes(q4k), plain);
        assertEquals(PackedQ4.packedBytes(q4k, true), rounded);
        assertTrue(rounded < plain * 0.8, rounded + " against " + plain);
        assertEquals(Packing.largestPackedBytes(q4k), plain, "planning counts the larger copy");
        long plain40 = Packing.pack(q40, null).byteSize(), rounded40 = Kernels.withActivationQuantization(true, () -> Packing.pack(q40, null).byteSize());
        assertEquals(PackedQ4.packedBytes(q40), plain40);
        assertEquals(plain40 + 32 * (512 / 32) * 2, rounded40, "a half per row and block more");
        assertEquals(Packing.largestPackedBytes(q40), rounded40, "planning counts the larger copy");
    }

    /** The vector preparation of 16-bit activations equals the scalar definition bit for bit, ties and zeros included. */
    @Test
    void sixteenBitActivationsAreTheScalarOnes() {
        Random rnd = new Random(12);
        float[] x = PackedProducts.activation(rnd, 1024);
        // block 0: largest value 32512, so the rounding sees exact halves (ties go to even); block 1: all zero
        x[0] = 32512f;
        for (int j = 1; j < 32; j++) x[j] = (j % 2 == 0 ? -1 : 1) * (j * 37 % 300 + 0.5f);
        java.util.Arrays.fill(x, 32, 64, 0f);
        PackedQ4.Activation vector = new PackedQ4.Activation(), scalar = new PackedQ4.Activation();
        vector.prepare(PackedQ4.Precision.BITS_16, null, x, 0, 0, 1, 1024);
        scalar.prepare(PackedQ4.Precision.BITS_16, null, x, 0, 0, 1, 1024);
        scalar.prepare16Scalar(x, 0, 1024, 0, 0);
        assertArrayEquals(scalar.v, vector.v);
        assertArrayEquals(scalar.d, vector.d);
        assertArrayEquals(scalar.sums, vector.sums);
        assertNotEquals(0f, vector.sums[0], "block 0 is not trivially zero");
    }

    /** The vector layout of an 8-bit block for the Q4 kernels equals the scalar one, over the whole byte range. */
    @Test
    void eightBitBlocksAreLaidOutAsTheScalarDefinitionLaysThemOut() {
        Random rnd = new Random(13);
        PackedQ4.Activation vector = new PackedQ4.Activation(), scalar = new PackedQ4.Activation();
        float[] x = PackedProducts.activation(rnd, 256);
        vector.prepare(PackedQ4.Precision.BITS_8, QuantizedActivation.Scheme.Q8_0, x, 0, 0, 1, 256);
        scalar.prepare(PackedQ4.Precision.BITS_8, QuantizedActivation.Scheme.Q8_0, x, 0, 0, 1, 256);
        byte[] q = new byte[8 * 32 + 5];
        for (int i = 0; i < q.length; i++) q[i] = (byte) rnd.nextInt(256);
        q[5] = Byte.MIN_VALUE; // the extremes side by side, within a step and across its lanes
        q[21] = Byte.MAX_VALUE;
        q[6] = Byte.MAX_VALUE;
        q[22] = Byte.MIN_VALUE;
        for (int b = 0; b < 8; b++) {
            int o = b * PackedQ4.Precision.BITS_8.blockShorts, xo = 5 + 32 * b; // an odd start in q
            assertEquals(scalar.layOutNibblesScalar(o, q, xo), vector.layOutNibbles(o, q, xo), "block " + b + "'s sum");
        }
        assertArrayEquals(java.util.Arrays.copyOf(scalar.v, 8 * 33), java.util.Arrays.copyOf(vector.v, 8 * 33));
    }

    @Test
    void rowSlicesKeepThePackingOnlyOnWholeGroups() {
        Random rnd = new Random(5);
        Matrix m = packed(randomQ4_0(64, 256, rnd));
        Matrix aligned = m.rows(16, 32), unaligned = m.rows(8, 16);
        assertNotNull(aligned.packed());
        assertNull(unaligned.packed());
        float[] x = new float[256];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        float[] all = new float[64], part = new float[32];
        Kernels.matVec(null, m, x, 0, all, 0);
        Kernels.matVec(null, aligned, x, 0, part, 0);
        for (int r = 0; r < 32; r++) assertEquals(all[16 + r], part[r], "row " + (16 + r));
    }

    @Test
    void onlyQ4_0AndQ4_KWithWholeGroupsCanBePacked() {
        Random rnd = new Random(6);
        assertFalse(PackedQ4.canPack(randomQ4_0(24, 64, rnd)));
        assertTrue(PackedQ4.canPack(random(GgmlType.Q4_K, 16, 256, rnd)));
        assertFalse(PackedQ4.canPack(random(GgmlType.Q4_K, 8, 256, rnd)));
        // a Q4_K copy cannot stand in for a Q4_0 matrix of the same shape
        Matrix q40 = randomQ4_0(16, 256, rnd);
        PackedQ4 fromK = PackedQ4.pack(random(GgmlType.Q4_K, 16, 256, rnd));
        assertThrows(IllegalArgumentException.class, () -> q40.withPacked(fromK));
        float[] src = TypeKernelTest.gaussian(rnd, 16 * 64, 0.05f);
        Matrix q8 = new Matrix(GgmlType.Q8_0, TypeKernelTest.quantize(GgmlType.Q8_0, src, 16, 64), 16, 64);
        assertFalse(PackedQ4.canPack(q8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PackedQ4.pack(q8));
        assertTrue(e.getMessage().contains("Q8_0 16x64"), e.getMessage());
        Matrix m = randomQ4_0(32, 64, rnd);
        PackedQ4 other = PackedQ4.pack(randomQ4_0(16, 64, rnd));
        assertThrows(IllegalArgumentException.class, () -> m.withPacked(other));
    }

    @Test
    void packedCopiesLiveOnTheHeapAndAreDeclinedWhenItIsFull() {
        Random rnd = new Random(9);
        Matrix q40 = randomQ4_0(32, 256, rnd), q4k = random(GgmlType.Q4_K, 32, 256, rnd);
        // 2 groups x 8 blocks: 128 shorts of quants plus 16 scales (Q4_K: and 16 offsets) per block
        assertEquals(2 * 8 * (256 + 64), PackedQ4.packedBytes(q40));
        assertEquals(2 * 8 * (256 + 128), PackedQ4.packedBytes(q4k));
        assertEquals(PackedQ4.packedBytes(q4k), PackedQ4.pack(q4k).byteSize());
        assertEquals(PackedQ4.packedBytes(q40) / 2, PackedQ4.pack(q40).rows(16, 16).byteSize());
        long mib = 1L << 20, gib = 1L << 30;
        // an eighth of the heap, at least 64 MiB, stays free
        assertTrue(Packing.roomFor(100 * mib, 8 * gib, 6 * gib));
        assertFalse(Packing.roomFor(1100 * mib, 8 * gib, 6 * gib));
        assertTrue(Packing.roomFor(10 * mib, 256 * mib, 100 * mib));
        assertFalse(Packing.roomFor(100 * mib, 256 * mib, 100 * mib));
        // this test JVM has room for a small copy
        assertNotNull(Packing.packIfRoom(q40, null));
    }

    /** The scalar reference mode still reads the file's rows, so it stays the exact reference for a packed matrix. */
    @Test
    void scalarReferenceIgnoresThePackedCopy() {
        Random rnd = new Random(8);
        Matrix m = randomQ4_0(16, 128, rnd);
        float[] x = PackedProducts.activation(rnd, 128);
        float[] plain = new float[16], fromPacked = new float[16];
        Kernels.withScalarReference(true, () -> {
            Kernels.matVec(null, m, x, 0, plain, 0);
            Kernels.matVec(null, packed(m), x, 0, fromPacked, 0);
            return null;
        });
        assertArrayEquals(plain, fromPacked);
    }
}
