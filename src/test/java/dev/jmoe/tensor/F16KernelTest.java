package dev.jmoe.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The F16 row dot widens halves itself (no Float.float16ToFloat in its hot loop) and keeps a fixed summation order that
 * matVec, matMul and the batched paths rely on to agree bit for bit; both are pinned here against plain Java, for the
 * 512-bit form and the 256-bit one.
 */
class F16KernelTest {
    private final F16Kernel kernel = (F16Kernel) Kernels.forType(GgmlType.F16);

    @Test
    void widensEveryHalfAsFloat16ToFloatDoes() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment row = arena.allocate(2L * 256);
            float[] x = new float[256];
            x[0] = 1f;
            for (int h = 0; h < 1 << 16; h++) {
                row.set(Num.LE_SHORT, 0, (short) h);
                float expected = Float.float16ToFloat((short) h);
                // the accumulators start at +0, so a -0 weight sums to +0; everything else passes through exactly
                if (expected == 0f) expected = 0f;
                float got = kernel.dotPrepared(row, 0, x, 256);
                assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(got), "half 0x" + Integer.toHexString(h));
                got = F16Kernel.dotNarrow(row, 0, x, 256);
                assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(got), "256-bit, half 0x" + Integer.toHexString(h));
            }
        }
    }

    @Test
    void sumsInTheDocumentedOrder() {
        SplittableRandom rnd = new SplittableRandom(22);
        try (Arena arena = Arena.ofConfined()) {
            for (int n : new int[] {256, 1024, 768 + 40, 3 * 256 + 3, 7, 2048 + 255}) {
                MemorySegment row = arena.allocate(2L * n + 6);
                long off = 6; // rows of a matrix need not start 8-byte aligned
                float[] w = new float[n], x = new float[n];
                for (int i = 0; i < n; i++) {
                    float v = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(-4, 3)));
                    if (rnd.nextInt(50) == 0) v = (float) (rnd.nextGaussian() * 1e-6); // subnormal halves
                    Num.putF16(row, off + 2L * i, v);
                    w[i] = Num.f16(row, off + 2L * i);
                    x[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(-3, 3)));
                }
                float expected = reference(w, x, n);
                // the prepared dot, and the same through the public entry point
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(kernel.dotPrepared(row, off, x, n)), "n=" + n);
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(kernel.dot(row, off, x, 0, n)), "n=" + n);
                // the 256-bit form (processors without 512-bit vectors) adds in the same order
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(F16Kernel.dotNarrow(row, off, x, n)), "n=" + n);
            }
        }
    }

    /**
     * The order in plain Java: whole chunks of 256 values into four 8-lane accumulators, accumulator k of lane j taking
     * values 32·i + 8·k + j with a fused multiply-add; (a0 + a1) + (a2 + a3); the halving tree of Lanes; then the
     * remainder: whole groups of 8 into one accumulator and its tree, then the rest one by one, unfused.
     */
    private static float reference(float[] w, float[] x, int n) {
        float[][] acc = new float[4][8];
        int whole = n - n % 256;
        for (int c = 0; c < whole; c += 32) {
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 8; j++) acc[k][j] = Math.fma(w[c + 8 * k + j], x[c + 8 * k + j], acc[k][j]);
            }
        }
        float[] v = new float[8];
        for (int j = 0; j < 8; j++) v[j] = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
        float s = tree(v);
        if (whole == n) return s;
        float[] a = new float[8];
        int i = whole;
        for (; i + 8 <= n; i += 8) {
            for (int j = 0; j < 8; j++) a[j] = Math.fma(w[i + j], x[i + j], a[j]);
        }
        float t = tree(a);
        for (; i < n; i++) t += w[i] * x[i];
        return s + t;
    }

    private static float tree(float[] v) {
        float h0 = v[0] + v[4], h1 = v[1] + v[5], h2 = v[2] + v[6], h3 = v[3] + v[7];
        return (h0 + h2) + (h1 + h3);
    }
}
