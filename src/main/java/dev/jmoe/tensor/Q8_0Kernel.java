package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Q8_0: blocks of 32 values = half scale d + 32 signed bytes; value = q·d. */
final class Q8_0Kernel implements TypeKernel {
    static final int QK = 32;
    static final int BLOCK = 34;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.Q8_0; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            for (int j = 0; j < QK; j++) dst[dstOff + b * QK + j] = src.get(Num.BYTE, p + 2 + j) * d;
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            float s = 0;
            for (int j = 0; j < QK; j++) s += src.get(Num.BYTE, p + 2 + j) * x[xOff + b * QK + j];
            sum += s * d;
        }
        return sum;
    }

    private static FloatVector q8(MemorySegment src, long p) {
        return (FloatVector) ByteVector.fromMemorySegment(B8, src, p, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        int b = 0;
        // Two blocks per iteration on independent accumulators so the FMA chains overlap.
        for (; b + 2 <= nb; b += 2) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            FloatVector s0 = q8(src, p + 2).mul(FloatVector.fromArray(F, x, xi));
            s0 = q8(src, p + 10).fma(FloatVector.fromArray(F, x, xi + 8), s0);
            s0 = q8(src, p + 18).fma(FloatVector.fromArray(F, x, xi + 16), s0);
            s0 = q8(src, p + 26).fma(FloatVector.fromArray(F, x, xi + 24), s0);
            FloatVector s1 = q8(src, p + 36).mul(FloatVector.fromArray(F, x, xi + 32));
            s1 = q8(src, p + 44).fma(FloatVector.fromArray(F, x, xi + 40), s1);
            s1 = q8(src, p + 52).fma(FloatVector.fromArray(F, x, xi + 48), s1);
            s1 = q8(src, p + 60).fma(FloatVector.fromArray(F, x, xi + 56), s1);
            acc0 = s0.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, Num.f16(src, p + BLOCK)), acc1);
        }
        for (; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            FloatVector s0 = q8(src, p + 2).mul(FloatVector.fromArray(F, x, xi));
            s0 = q8(src, p + 10).fma(FloatVector.fromArray(F, x, xi + 8), s0);
            s0 = q8(src, p + 18).fma(FloatVector.fromArray(F, x, xi + 16), s0);
            s0 = q8(src, p + 26).fma(FloatVector.fromArray(F, x, xi + 24), s0);
            acc0 = s0.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            int o = dstOff + b * QK;
            q8(src, p + 2).mul(d).intoArray(dst, o);
            q8(src, p + 10).mul(d).intoArray(dst, o + 8);
            q8(src, p + 18).mul(d).intoArray(dst, o + 16);
            q8(src, p + 26).mul(d).intoArray(dst, o + 24);
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            int o = srcOff + b * QK;
            long p = off + (long) b * BLOCK;
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[o + j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Num.putF16(dst, p, d);
            for (int j = 0; j < QK; j++) dst.set(Num.BYTE, p + 2 + j, (byte) Num.roundf(src[o + j] * id));
        }
    }
}
