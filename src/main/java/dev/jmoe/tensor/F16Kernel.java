package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** IEEE half-precision rows. */
final class F16Kernel extends RowKernel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    @Override public GgmlType type() { return GgmlType.F16; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F16, n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = Num.f16(src, off + 2L * i);
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.F16, n);
        float s = 0;
        for (int i = 0; i < n; i++) s += Num.f16(src, off + 2L * i) * x[xOff + i];
        return s;
    }

    private static final int CHUNK = 256;
    private static final ThreadLocal<short[]> HALVES = ThreadLocal.withInitial(() -> new short[CHUNK]);
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[CHUNK]);

    /**
     * Halves are copied to a short[] in chunks and widened by a plain loop, which C2 turns into
     * vcvtph2ps (the Vector API has no such conversion); the widened chunk then feeds the FMAs.
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        short[] h = HALVES.get();
        float[] f = FLOATS.get();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        // Whole chunks take a fixed-length path (C2 vectorises it better); a short tail follows.
        for (; c + CHUNK <= n; c += CHUNK) {
            MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, CHUNK);
            widenChunk(h, f);
            for (int i = 0; i < CHUNK; i += 32) {
                a0 = FloatVector.fromArray(F, f, i).fma(FloatVector.fromArray(F, xp, c + i), a0);
                a1 = FloatVector.fromArray(F, f, i + 8).fma(FloatVector.fromArray(F, xp, c + i + 8), a1);
                a2 = FloatVector.fromArray(F, f, i + 16).fma(FloatVector.fromArray(F, xp, c + i + 16), a2);
                a3 = FloatVector.fromArray(F, f, i + 24).fma(FloatVector.fromArray(F, xp, c + i + 24), a3);
            }
        }
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        return c == n ? s : s + tail(src, off, xp, c, n, h, f);
    }

    private static float tail(MemorySegment src, long off, float[] xp, int c, int n, short[] h, float[] f) {
        int len = n - c;
        MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, len);
        widen(h, f, len);
        FloatVector a = FloatVector.zero(F);
        int i = 0;
        for (; i + 8 <= len; i += 8) a = FloatVector.fromArray(F, f, i).fma(FloatVector.fromArray(F, xp, c + i), a);
        FloatVector hs0 = a;
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        for (; i < len; i++) s += f[i] * xp[c + i];
        return s;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F16, n);
        short[] h = HALVES.get();
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, len);
            widenInto(h, dst, dstOff + c, len); // straight into dst: no third pass through a float chunk
        }
    }

    private static void widenChunk(short[] h, float[] f) {
        for (int i = 0; i < CHUNK; i++) f[i] = Float.float16ToFloat(h[i]);
    }

    private static void widenInto(short[] h, float[] dst, int dstOff, int len) {
        for (int i = 0; i < len; i++) dst[dstOff + i] = Float.float16ToFloat(h[i]);
    }

    private static void widen(short[] h, float[] f, int len) {
        for (int i = 0; i < len; i++) f[i] = Float.float16ToFloat(h[i]);
    }

    /** Float rows decode almost for free, so even two vectors share one decoded tile. */
    @Override
    int tileMinBatch() {
        return 2;
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        Num.blocks(GgmlType.F16, n);
        for (int i = 0; i < n; i++) Num.putF16(dst, off + 2L * i, src[srcOff + i]);
    }
}
