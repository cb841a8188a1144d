package dev.jmoe.tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class PackedQ8Test {
    private static Parallel pool2;

    @BeforeAll static void start() { pool2 = new Parallel(2); }
    @AfterAll static void stop() { pool2.close(); }

    private static Matrix random(int rows, int cols, Random rnd) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        return new Matrix(GgmlType.Q8_0, TypeKernelTest.quantize(GgmlType.Q8_0, src, rows, cols), rows, cols);
    }

    /** The vector kernel against its scalar definition (same float operations in the same order), bit for bit. */
    @ParameterizedTest
    @ValueSource(ints = {32, 96, 1024, 3584})
    void groupKernelEqualsItsScalarDefinition(int cols) {
        Random rnd = new Random(cols);
        Matrix m = random(48, cols, rnd);
        PackedQ8 p = PackedQ8.pack(m, null);
        float[] x = TypeKernelTest.gaussian(rnd, cols, 1f);
        PackedQ4.Activation a = new PackedQ4.Activation();
        a.prepare(PackedQ4.Precision.FLOAT, null, x, 0, 0, 1, cols);
        float[] got = new float[48], want = new float[48];
        p.product(a, 0, 0, 0, 3, got, 0);
        for (int g = 0; g < 3; g++) p.groupScalar(g, x, 0, want, 16 * g);
        assertArrayEquals(want, got);
    }

    /**
     * A batch's products (weights widened once for up to four float vectors, or eight rounded ones) give every vector
     * exactly the bits a product of that vector alone gives: float and Q8_0-rounded activations, batches across the pass
     * sizes and their remainders, groups from the middle of the copy (batch invariance).
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 8, 9, 17})
    void batchProductsEqualEachVectorAlone(int batch) {
        Random rnd = new Random(100 + batch);
        int rows = 64, cols = 1024, outStride = rows + 7;
        PackedQ8 p = PackedQ8.pack(random(rows, cols, rnd), null);
        float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
        float[] got = PackedProducts.checkBatchEqualsEachVectorAlone(p, PackedQ4.Precision.FLOAT, null, x, batch, 4, outStride);
        assertNotEquals(0f, got[3]);
        got = PackedProducts.checkBatchEqualsEachVectorAlone(p, PackedQ4.Precision.Q8_FLOATS, QuantizedActivation.Scheme.Q8_0, x, batch, 4, outStride);
        assertNotEquals(0f, got[3]);
    }

    /**
     * Products on the packed copy are the file's float products up to the order of the sums (against the scalar
     * reference, within 1e-5 of Σ|w·x|), on one and two threads, for single vectors and small and tile-sized batches.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 3, 9})
    void productsFollowTheFileRows(int batch) {
        Random rnd = new Random(batch);
        int rows = 80, cols = 1024;
        Matrix m = random(rows, cols, rnd), p = Packing.packed(m);
        assertInstanceOf(PackedQ8.class, p.packed());
        float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
        float[] w = new float[cols];
        TypeKernel k = Kernels.forType(GgmlType.Q8_0);
        for (Parallel pool : new Parallel[] {null, pool2}) {
            float[] got = new float[batch * rows];
            Kernels.matMul(pool, p, x, cols, batch, got, rows);
            for (int r = 0; r < rows; r++) {
                k.dequantize(m.data(), r * m.rowBytes(), w, 0, cols);
                for (int b = 0; b < batch; b++) {
                    double want = 0, mag = 0;
                    for (int c = 0; c < cols; c++) {
                        want += (double) w[c] * x[b * cols + c];
                        mag += Math.abs((double) w[c] * x[b * cols + c]);
                    }
                    assertEquals(want, got[b * rows + r], 1e-5 * mag, "row " + r + " vector " + b + " batch " + batch);
                }
            }
        }
    }

    /**
     * A packed product is bit for bit the file rows' product (the row kernel's float operations in its order), so
     * packing changes no result: even and odd numbers of blocks, single vectors, small batches and float panels, one and two threads.
     */
    @ParameterizedTest
    @ValueSource(ints = {32, 96, 1024, 3584})
    void productsEqualTheFileRowsBitForBit(int cols) {
        Random rnd = new Random(cols + 1);
        int rows = 48;
        Matrix m = random(rows, cols, rnd), p = Packing.packed(m);
        for (int batch : new int[] {1, 2, 3, 9}) { // 9: float panels against float row tiles, each token a column-ordered FMA chain
            float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
            for (Parallel pool : new Parallel[] {null, pool2}) {
                float[] plain = new float[batch * rows], packed = new float[batch * rows];
                Kernels.matMul(pool, m, x, cols, batch, plain, rows);
                Kernels.matMul(pool, p, x, cols, batch, packed, rows);
                assertArrayEquals(plain, packed, cols + " columns, batch " + batch);
            }
        }
    }

    /**
     * The fused product (weights widened in registers, 4, 6 or 8 tokens per pass) gives exactly the bits of decoded
     * panels against {@link FloatGemm#panel16}, 512 columns at a time: every batch from 1 to 26 (each split into passes,
     * padded ones included), groups from the middle of a row slice, strided tokens and outputs.
     */
    @Test
    void fusedPanelProductEqualsDecodedPanelsBitForBit() {
        Random rnd = new Random(6);
        int rows = 64, cols = 1536, xStride = cols + 5, outStride = rows + 3, panelCols = 512;
        PackedQ8 p = PackedQ8.pack(random(rows, cols, rnd), null).rows(16, 48);
        float[] panel = new float[16 * panelCols];
        for (int batch = 1; batch <= 26; batch++) {
            float[] x = TypeKernelTest.gaussian(rnd, batch * xStride, 1f);
            float[] got = new float[batch * outStride + 2], want = new float[batch * outStride + 2];
            p.panelProduct(1, 3, x, 2, xStride, null, batch, null, 0, got, 2 + 16, outStride);
            for (int g = 1; g < 3; g++) {
                for (int c0 = 0; c0 < cols; c0 += panelCols) {
                    p.panel(g, c0, c0 + panelCols, panel);
                    FloatGemm.panel16(panel, panelCols, x, 2 + c0, xStride, batch, want, outStride, 2 + 16 * g, c0 > 0);
                }
            }
            assertArrayEquals(want, got, "batch " + batch);
            assertNotEquals(0f, got[2 + 16]);
            assertEquals(0f, got[2], "group 0 is not asked for");
        }
    }

    /** Panels hold exactly the values the file's rows decode to (q·d in float). */
    @Test
    void panelsDecodeTheFileValues() {
        Random rnd = new Random(3);
        Matrix m = random(32, 1024, rnd);
        PackedProducts.checkPanels(m, PackedQ8.pack(m, null), 512, 0f);
        PackedProducts.checkPanels(m, PackedQ8.pack(m, null), 0, 0f);
    }

    /**
     * Scales the copy widens from halves in registers (subnormal, zero, negative zero, the largest and smallest normal
     * halves) and infinite or NaN ones (which send the copy to its scalar definitions): products of single vectors, of
     * batches and of float panels, and the panels themselves, equal the file rows' bit for bit, on one and two threads.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void extremeAndNonFiniteScalesGiveTheFileRowsBits(boolean nonFinite) {
        Random rnd = new Random(nonFinite ? 8 : 7);
        int rows = 48, cols = 256, nb = cols / 32;
        Matrix m = random(rows, cols, rnd);
        short[] extreme = {0x0001, 0x03ff, 0x0000, (short) 0x8000, 0x7bff, (short) 0xfbff, 0x0400, (short) 0x8001, 0x0200};
        for (int i = 0; i < rows * nb; i += 3) setScale(m, i / nb, i % nb, extreme[(i / 3) % extreme.length]);
        if (nonFinite) {
            setScale(m, 5, 1, (short) 0x7c00);  // +infinity
            setScale(m, 20, 3, (short) 0x7e01); // a NaN with a payload
            setScale(m, 40, 0, (short) 0xfc00); // -infinity
        }
        Matrix p = Packing.packed(m);
        assertInstanceOf(PackedQ8.class, p.packed());
        for (int batch : new int[] {1, 2, 5, 9}) {
            float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
            for (Parallel pool : new Parallel[] {null, pool2}) {
                float[] plain = new float[batch * rows], packed = new float[batch * rows];
                Kernels.matMul(pool, m, x, cols, batch, plain, rows);
                Kernels.matMul(pool, p, x, cols, batch, packed, rows);
                assertArrayEquals(plain, packed, "batch " + batch);
                assertEquals(nonFinite, Float.isNaN(packed[5]) || Float.isInfinite(packed[5]), "row 5's infinite scale");
            }
        }
        PackedProducts.checkPanels(m, (PackedQ8) p.packed(), 0, 0f);
        PackedProducts.checkPanels(m, (PackedQ8) p.packed(), 128, 0f);
    }

    /** Sets row r's scale in block b of a Q8_0 matrix to the half {@code h}. */
    private static void setScale(Matrix m, int r, int b, short h) {
        m.data().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), r * m.rowBytes() + 34L * b, h);
    }

    /**
     * Activations rounded to Q8_0 (llama.cpp's arithmetic, {@code --int8-activations}) give on the packed copy exactly the
     * bits of the file's rows and their integer dots ({@link Q8_0Kernel#dotQ8}, dotQ8x4): single vectors and batches
     * across the eight-vector pass and the integer kernel's fours, on one and two threads (MatVecSetTest covers the layout
     * carried from a gated set). Weights of −128 and ±127 with activations at ±127 reach the largest partial sums; scales include
     * subnormal, zero, negative zero and the extreme normal halves, and some activation blocks are all zero.
     */
    @ParameterizedTest
    @ValueSource(ints = {32, 96, 1024})
    void roundedActivationsGiveTheFileRowsIntegerBits(int cols) {
        Random rnd = new Random(40 + cols);
        int rows = 48, nb = cols / 32;
        Matrix m = random(rows, cols, rnd);
        for (int r = 0; r < rows; r += 5) { // extreme quants: a whole block of -128 or +127
            byte q = r % 2 == 0 ? (byte) -128 : (byte) 127;
            for (int c = 0; c < 32; c++) m.data().set(java.lang.foreign.ValueLayout.JAVA_BYTE, r * m.rowBytes() + 34L * (r % nb) + 2 + c, q);
        }
        short[] extreme = {0x0001, 0x03ff, 0x0000, (short) 0x8000, 0x7bff, (short) 0xfbff, 0x0400};
        for (int i = 0; i < rows * nb; i += 7) setScale(m, i / nb, i % nb, extreme[(i / 7) % extreme.length]);
        Matrix p = Packing.packed(m);
        assertEquals(PackedQ4.Precision.Q8_FLOATS, p.packed().precision(QuantizedActivation.Scheme.Q8_0));
        assertNull(p.packed().precision(QuantizedActivation.Scheme.Q8_K), "Q8_0 weights take Q8_0-rounded activations only");
        for (int batch : new int[] {1, 2, 3, 4, 5, 8, 9, 17}) {
            float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
            for (int b = 0; b < batch; b++) {
                x[b * cols + 3] = b % 2 == 0 ? 1e3f : -1e3f; // the block's largest value rounds to ±127
                if (nb > 1) java.util.Arrays.fill(x, b * cols + 32, b * cols + 64, 0f); // a zero block (scale 0)
            }
            for (Parallel pool : new Parallel[] {null, pool2}) {
                float[] plain = new float[batch * rows], packed = new float[batch * rows];
                Kernels.withActivationQuantization(true, () -> {
                    Kernels.matMul(pool, m, x, cols, batch, plain, rows);
                    Kernels.matMul(pool, p, x, cols, batch, packed, rows);
                });
                assertArrayEquals(plain, packed, cols + " columns, batch " + batch);
                QuantizedActivation a = new QuantizedActivation();
                a.quantize(QuantizedActivation.Scheme.Q8_0, x, 0, cols);
                PackedProducts.checkIntegerDots(m, packed, a, "batch " + batch + ", vector 0");
            }
        }
        float[] x = TypeKernelTest.gaussian(rnd, cols, 1f), plain = new float[rows], packed = new float[rows];
        Kernels.withActivationQuantization(true, () -> {
            Kernels.matVec(pool2, m, x, 0, plain, 0);
            Kernels.matVec(pool2, p, x, 0, packed, 0);
        });
        assertArrayEquals(plain, packed, "matVec");
        assertNotEquals(0f, packed[1]);
    }

    /**
     * A copy with an infinite or NaN scale offers no layout for rounded activations: they take the file's rows, and the
     * results are theirs; a layout made for rounded activations anyway is refused with a clear error.
     */
    @Test
    void roundedActivationsOnANonFiniteCopyTakeTheFileRows() {
        Random rnd = new Random(4);
        Matrix m = random(32, 256, rnd);
        setScale(m, 5, 1, (short) 0x7c00);
        Matrix p = Packing.packed(m);
        assertNull(p.packed().precision(QuantizedActivation.Scheme.Q8_0));
        float[] x = TypeKernelTest.gaussian(rnd, 256, 1f), fromPacked = new float[32], plain = new float[32];
        Kernels.withActivationQuantization(true, () -> {
            Kernels.matVec(pool2, p, x, 0, fromPacked, 0);
            Kernels.matVec(pool2, m, x, 0, plain, 0);
        });
        assertArrayEquals(plain, fromPacked);
        assertTrue(Float.isInfinite(plain[5]) || Float.isNaN(plain[5]));
        PackedQ4.Activation a = new PackedQ4.Activation();
        a.prepare(PackedQ4.Precision.Q8_FLOATS, QuantizedActivation.Scheme.Q8_0, x, 0, 0, 1, 256);
        var e = assertThrows(IllegalArgumentException.class, () -> p.packed().product(a, 0, 0, 0, 2, new float[32], 0));
        assertTrue(e.getMessage().contains("non-finite scale"), e.getMessage());
    }

    @Test
    void onlyQ8_0WithWholeGroupsIsPacked() {
        Random rnd = new Random(5);
        assertFalse(PackedQ8.canPack(random(24, 64, rnd)));
        assertFalse(Packing.canPack(random(24, 64, rnd)));
        Matrix m = random(32, 64, rnd);
        // 2 groups × 2 blocks: 512 bytes of quants and 16 half scales each, the file's bytes
        assertEquals(2 * 2 * (512 + 32), Packing.packedBytes(m));
        assertEquals(m.rows() * m.rowBytes(), Packing.packedBytes(m));
        assertEquals(Packing.packedBytes(m), Packing.packed(m).packed().byteSize());
        assertEquals(Packing.packedBytes(m) / 2, Packing.packed(m).rows(16, 16).packed().byteSize());
    }
}
