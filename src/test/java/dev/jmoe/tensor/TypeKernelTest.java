package dev.jmoe.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class TypeKernelTest {
    /** Every type jmoe computes with. */
    static final GgmlType[] TYPES = {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0,
            GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K};

    static float[] gaussian(Random rnd, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextGaussian() * std;
        return a;
    }

    static MemorySegment quantize(GgmlType t, float[] src, int rows, int cols) {
        TypeKernel k = Kernels.forType(t);
        long rowBytes = t.bytesFor(cols);
        MemorySegment seg = Arena.ofAuto().allocate(rows * rowBytes + 64, 64);
        for (int r = 0; r < rows; r++) k.quantizeRow(src, r * cols, cols, seg, r * rowBytes);
        return seg;
    }

    /** Random bytes with every half-float scale field forced to a sane small value, so blocks decode finitely. */
    static MemorySegment randomBlocks(GgmlType t, int nValues, Random rnd) {
        int nb = nValues / t.blockSize();
        MemorySegment seg = Arena.ofAuto().allocate(t.bytesFor(nValues) + 64, 64);
        byte[] raw = new byte[(int) t.bytesFor(nValues)];
        rnd.nextBytes(raw);
        MemorySegment.copy(raw, 0, seg, Num.BYTE, 0, raw.length);
        for (int b = 0; b < nb; b++) {
            long p = (long) b * t.blockBytes();
            switch (t) {
                case F32 -> seg.set(Num.LE_FLOAT, p, (float) rnd.nextGaussian());
                case F16 -> Num.putF16(seg, p, (float) rnd.nextGaussian());
                case BF16 -> seg.set(Num.LE_SHORT, p, Num.floatToBf16((float) rnd.nextGaussian()));
                case Q8_0, Q4_0, Q5_0 -> Num.putF16(seg, p, 0.01f + rnd.nextFloat() * 0.05f);
                case Q4_1, Q5_1, Q4_K, Q5_K -> {
                    Num.putF16(seg, p, 0.01f + rnd.nextFloat() * 0.05f);
                    Num.putF16(seg, p + 2, rnd.nextFloat() * 0.05f);
                }
                case Q6_K -> Num.putF16(seg, p + 208, 0.001f + rnd.nextFloat() * 0.01f);
                default -> throw new AssertionError(t);
            }
        }
        return seg;
    }

    static double absDot(float[] w, float[] x, int xOff) {
        double s = 0;
        for (int i = 0; i < w.length; i++) s += Math.abs((double) w[i] * x[xOff + i]);
        return s;
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void vectorPathsMatchScalarOnRandomBlocks(GgmlType t) {
        TypeKernel k = Kernels.forType(t);
        assertEquals(t, k.type());
        Random rnd = new Random(t.ordinal() * 31L + 7);
        // odd block counts too: the hot loops pair blocks and leave a tail
        int odd = t.blockSize() == 256 ? 768 : 352;
        for (int n : new int[] {256, odd, 1024, 2816}) {
            MemorySegment seg = randomBlocks(t, n, rnd);
            float[] x = gaussian(rnd, n + 5, 1f);
            float[] ref = new float[n];
            float[] fast = new float[n + 3];
            k.dequantizeRow(seg, 0, ref, 0, n);
            k.dequantize(seg, 0, fast, 3, n);
            for (int i = 0; i < n; i++) {
                assertTrue(Float.isFinite(ref[i]), t + " decoded a non-finite value at " + i);
                assertEquals(Float.floatToIntBits(ref[i]), Float.floatToIntBits(fast[i + 3]),
                        t + " vector dequantize differs from reference at " + i + " (n=" + n + ")");
            }
            for (int xOff : new int[] {0, 5}) {
                float expect = 0;
                for (int i = 0; i < n; i++) expect += ref[i] * x[xOff + i];
                float scalar = k.dotScalar(seg, 0, x, xOff, n);
                float vector = k.dot(seg, 0, x, xOff, n);
                double tol = 2e-5 * absDot(ref, x, xOff) + 1e-6;
                assertEquals(expect, scalar, tol, t + " dotScalar vs decoded row, n=" + n);
                assertEquals(scalar, vector, tol, t + " dot vs dotScalar, n=" + n + " xOff=" + xOff);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void dotAtNonZeroByteOffset(GgmlType t) {
        TypeKernel k = Kernels.forType(t);
        Random rnd = new Random(99 + t.ordinal());
        int n = 512;
        MemorySegment seg = randomBlocks(t, 3 * n, rnd);
        float[] x = gaussian(rnd, n, 1f);
        long off = t.bytesFor(n) * 2;
        float[] ref = new float[n];
        k.dequantizeRow(seg, off, ref, 0, n);
        float s = k.dotScalar(seg, off, x, 0, n);
        assertEquals(s, k.dot(seg, off, x, 0, n), 2e-5 * absDot(ref, x, 0) + 1e-6);
        // the third row differs from the first, so the offset is honoured
        float[] first = new float[n];
        k.dequantizeRow(seg, 0, first, 0, n);
        assertFalse(java.util.Arrays.equals(first, ref));
    }

    /**
     * Round trip: quantize Gaussian rows, decode, and bound the RMS error relative to the RMS of the
     * data by what each format's bit budget allows (the bounds are a little above the ideal uniform
     * quantization noise, so a wrong layout or scale fails them by a wide margin).
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void quantizeRoundTripErrorWithinFormatBound(GgmlType t) {
        TypeKernel k = Kernels.forType(t);
        assertTrue(k.canQuantize());
        Random rnd = new Random(1234 + t.ordinal());
        int rows = 8, cols = 1024;
        float[] src = gaussian(rnd, rows * cols, 0.05f);
        MemorySegment seg = quantize(t, src, rows, cols);
        float[] back = new float[rows * cols];
        for (int r = 0; r < rows; r++) k.dequantizeRow(seg, r * t.bytesFor(cols), back, r * cols, cols);
        double err = 0, pow = 0;
        for (int i = 0; i < src.length; i++) {
            err += (back[i] - src[i]) * (double) (back[i] - src[i]);
            pow += src[i] * (double) src[i];
        }
        double rel = Math.sqrt(err / pow);
        double bound = switch (t) {
            case F32 -> 0;
            case F16 -> 3e-4;
            case BF16 -> 2.5e-3;
            case Q8_0 -> 0.007;
            case Q6_K -> 0.025;
            case Q5_0 -> 0.05;
            case Q5_1, Q5_K -> 0.045;
            case Q4_0 -> 0.1;
            case Q4_1 -> 0.09;
            case Q4_K -> 0.085;
            default -> throw new AssertionError(t);
        };
        assertTrue(rel <= bound, t + " round-trip relative RMS error " + rel + " exceeds " + bound);
        // a non-trivial format must actually lose something, or the test is not looking at its decode
        if (t != GgmlType.F32) assertTrue(rel > bound / 50, t + " round trip suspiciously exact: " + rel);
    }

    @Test
    void q8_0FollowsGgmlRounding() {
        float[] x = new float[32];
        x[0] = 127f;
        x[1] = -63.5f; // roundf: halves away from zero → −64
        x[2] = 63.5f;
        x[3] = 0.49f;
        x[4] = -127f;
        x[5] = 2.5f;
        MemorySegment seg = quantize(GgmlType.Q8_0, x, 1, 32);
        assertEquals(1.0f, Num.f16(seg, 0));
        byte[] expect = {127, -64, 64, 0, -127, 3};
        for (int i = 0; i < expect.length; i++) assertEquals(expect[i], seg.get(Num.BYTE, 2 + i), "q[" + i + "]");
    }

    @Test
    void q4_0FollowsGgmlRounding() {
        float[] x = new float[32];
        x[0] = -8f; // signed max magnitude → d = −8/−8 = 1
        x[1] = 7.4f; // (int)(7.4 + 8.5) = 15
        x[2] = 8f; // ties the max magnitude but the first one wins; (int)16.5 = 16 → clamped to 15
        x[3] = -0.6f; // (int)(7.9) = 7
        x[16] = 0.5f; // high nibble of byte 0: (int)(9.0) = 9
        MemorySegment seg = quantize(GgmlType.Q4_0, x, 1, 32);
        assertEquals(1.0f, Num.f16(seg, 0));
        assertEquals(0 | (9 << 4), Num.u8(seg, 2));
        assertEquals(15 | (8 << 4), Num.u8(seg, 3));
        assertEquals(15 | (8 << 4), Num.u8(seg, 4));
        assertEquals(7 | (8 << 4), Num.u8(seg, 5));
    }

    @Test
    void q6_KDecodesHandBuiltBlock() {
        // One super-block where value v has quant (v % 64), scale of sub-block s is s − 8 and d = 0.5.
        MemorySegment seg = Arena.ofAuto().allocate(210);
        int[] q = new int[256];
        for (int v = 0; v < 256; v++) q[v] = v % 64;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int b = 128 * h + l;
                seg.set(Num.BYTE, 64 * h + l, (byte) ((q[b] & 0xF) | ((q[b + 64] & 0xF) << 4)));
                seg.set(Num.BYTE, 64 * h + l + 32, (byte) ((q[b + 32] & 0xF) | ((q[b + 96] & 0xF) << 4)));
                seg.set(Num.BYTE, 128 + 32 * h + l, (byte) ((q[b] >> 4) | ((q[b + 32] >> 4) << 2) | ((q[b + 64] >> 4) << 4) | ((q[b + 96] >> 4) << 6)));
            }
        }
        for (int s = 0; s < 16; s++) seg.set(Num.BYTE, 192 + s, (byte) (s - 8));
        Num.putF16(seg, 208, 0.5f);
        float[] out = new float[256];
        Kernels.forType(GgmlType.Q6_K).dequantizeRow(seg, 0, out, 0, 256);
        for (int v = 0; v < 256; v++) assertEquals(0.5f * (v / 16 - 8) * (v % 64 - 32), out[v], "value " + v);
    }

    @Test
    void q4_KAndQ5_KScaleTableRoundTrips() {
        int[] sc = {1, 63, 17, 40, 62, 5, 33, 48}, mn = {0, 12, 63, 7, 31, 60, 2, 45};
        MemorySegment seg = Arena.ofAuto().allocate(12);
        KQuant.packScaleMins(sc, mn, seg, 0);
        int[] sc2 = new int[8], mn2 = new int[8];
        KQuant.scaleMins(seg, 0, sc2, mn2);
        assertArrayEquals(sc, sc2);
        assertArrayEquals(mn, mn2);
        int u0 = seg.get(Num.LE_INT, 0), u1 = seg.get(Num.LE_INT, 4), u2 = seg.get(Num.LE_INT, 8);
        for (int j = 0; j < 8; j++) {
            assertEquals(sc[j], QKKernel.sc(j, u0, u2), "scale " + j);
            assertEquals(mn[j], QKKernel.mn(j, u1, u2), "min " + j);
        }
    }

    @Test
    void q4_KDecodesHandBuiltBlock() {
        MemorySegment seg = Arena.ofAuto().allocate(144);
        int[] sc = {1, 2, 3, 4, 5, 6, 7, 63}, mn = {8, 7, 6, 5, 4, 3, 2, 1};
        Num.putF16(seg, 0, 0.25f);
        Num.putF16(seg, 2, 0.125f);
        KQuant.packScaleMins(sc, mn, seg, 4);
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) seg.set(Num.BYTE, 16 + 32 * k + l, (byte) ((l % 16) | ((15 - l % 16) << 4)));
        }
        float[] out = new float[256];
        Kernels.forType(GgmlType.Q4_K).dequantizeRow(seg, 0, out, 0, 256);
        for (int v = 0; v < 256; v++) {
            int s = v / 32, l = v % 32;
            int q = s % 2 == 0 ? l % 16 : 15 - l % 16;
            assertEquals(0.25f * sc[s] * q - 0.125f * mn[s], out[v], 1e-6, "value " + v);
        }
    }

    @Test
    void q5_0HighBitsComeFromTheRightWordBits() {
        MemorySegment seg = Arena.ofAuto().allocate(22);
        Num.putF16(seg, 0, 1f);
        seg.set(Num.LE_INT, 2, 0x8000_0001); // values 0 and 31 get their fifth bit
        for (int j = 0; j < 16; j++) seg.set(Num.BYTE, 6 + j, (byte) 0x00);
        float[] out = new float[32];
        Kernels.forType(GgmlType.Q5_0).dequantizeRow(seg, 0, out, 0, 32);
        for (int v = 0; v < 32; v++) assertEquals(v == 0 || v == 31 ? 0f : -16f, out[v], "value " + v);
        Kernels.forType(GgmlType.Q5_0).dequantize(seg, 0, out, 0, 32);
        for (int v = 0; v < 32; v++) assertEquals(v == 0 || v == 31 ? 0f : -16f, out[v], "vector value " + v);
    }

    @Test
    void f16DecodesSpecialValuesExactly() {
        short[] halves = {0, (short) 0x8000, 1, (short) 0x8001, 0x03ff, 0x0400, 0x3c00, (short) 0xc000, 0x7bff,
                0x7c00, (short) 0xfc00, 0x7e00, 0x7c01, 0x3555, (short) 0xbbff, 0x0200};
        MemorySegment seg = Arena.ofAuto().allocate(halves.length * 2L);
        for (int i = 0; i < halves.length; i++) seg.set(Num.LE_SHORT, 2L * i, halves[i]);
        float[] out = new float[halves.length];
        Kernels.forType(GgmlType.F16).dequantize(seg, 0, out, 0, halves.length);
        for (int i = 0; i < halves.length; i++) {
            assertEquals(Float.floatToIntBits(Float.float16ToFloat(halves[i])), Float.floatToIntBits(out[i]),
                    "half 0x" + Integer.toHexString(halves[i] & 0xFFFF));
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3f80, Num.floatToBf16(1.0f));
        assertEquals((short) 0x3f80, Num.floatToBf16(Float.intBitsToFloat(0x3f808000))); // tie → even
        assertEquals((short) 0x3f82, Num.floatToBf16(Float.intBitsToFloat(0x3f818000))); // tie → even (up)
        assertEquals((short) 0x3f81, Num.floatToBf16(Float.intBitsToFloat(0x3f808001)));
        assertTrue(Float.isNaN(Num.bf16ToFloat(Num.floatToBf16(Float.NaN))));
    }

    @Test
    void badInputIsRejectedWithClearErrors() {
        TypeKernel q = Kernels.forType(GgmlType.Q4_K);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> q.dot(MemorySegment.ofArray(new byte[1000]), 0, new float[300], 0, 300));
        assertTrue(e.getMessage().contains("Q4_K") && e.getMessage().contains("300"), e.getMessage());
        UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class, () -> Kernels.forType(GgmlType.Q2_K));
        assertTrue(u.getMessage().contains("Q2_K"), u.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Kernels.forType(null));
    }
}
