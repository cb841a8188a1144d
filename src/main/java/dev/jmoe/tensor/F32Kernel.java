package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Plain little-endian float32 rows. */
final class F32Kernel extends RowKernel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.F32; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F32, n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = src.get(Num.LE_FLOAT, off + 4L * i);
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.F32, n);
        float s = 0;
        for (int i = 0; i < n; i++) s += src.get(Num.LE_FLOAT, off + 4L * i) * x[xOff + i];
        return s;
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.F32, n);
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 32 <= n; i += 32) {
            long p = off + 4L * i;
            a0 = FloatVector.fromMemorySegment(F, src, p, LE).fma(FloatVector.fromArray(F, x, xOff + i), a0);
            a1 = FloatVector.fromMemorySegment(F, src, p + 32, LE).fma(FloatVector.fromArray(F, x, xOff + i + 8), a1);
            a2 = FloatVector.fromMemorySegment(F, src, p + 64, LE).fma(FloatVector.fromArray(F, x, xOff + i + 16), a2);
            a3 = FloatVector.fromMemorySegment(F, src, p + 96, LE).fma(FloatVector.fromArray(F, x, xOff + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) {
            a0 = FloatVector.fromMemorySegment(F, src, off + 4L * i, LE).fma(FloatVector.fromArray(F, x, xOff + i), a0);
        }
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        for (; i < n; i++) s += src.get(Num.LE_FLOAT, off + 4L * i) * x[xOff + i];
        return s;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F32, n);
        MemorySegment.copy(src, Num.LE_FLOAT, off, dst, dstOff, n);
    }

    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        return dot(src, off, xp, 0, n);
    }

    /** Float rows decode almost for free, so even two vectors share one decoded tile. */
    @Override
    int tileMinBatch() {
        return 2;
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        Num.blocks(GgmlType.F32, n);
        MemorySegment.copy(src, srcOff, dst, Num.LE_FLOAT, off, n);
    }

    /** Vector dot of two float arrays. */
    static float dotArrays(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 32 <= n; i += 32) {
            a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
            a1 = FloatVector.fromArray(F, a, aOff + i + 8).fma(FloatVector.fromArray(F, b, bOff + i + 8), a1);
            a2 = FloatVector.fromArray(F, a, aOff + i + 16).fma(FloatVector.fromArray(F, b, bOff + i + 16), a2);
            a3 = FloatVector.fromArray(F, a, aOff + i + 24).fma(FloatVector.fromArray(F, b, bOff + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) {
            a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
        }
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }
}
