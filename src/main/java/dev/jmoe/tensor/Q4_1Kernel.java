package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Q4_1: blocks of 32 = half d, half m, 16 nibble bytes (as Q4_0); value = q·d + m. */
final class Q4_1Kernel implements TypeKernel {
    static final int QK = 32;
    static final int BLOCK = 20;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.Q4_1; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_1, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            float m = Num.f16(src, p + 2);
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = Num.u8(src, p + 4 + j);
                dst[o + j] = (q & 0xF) * d + m;
                dst[o + j + QK / 2] = (q >>> 4) * d + m;
            }
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        return Num.dotViaDequant(this, src, off, x, xOff, n);
    }

    private static FloatVector lo(ByteVector raw) {
        return (FloatVector) raw.and((byte) 0xF).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector hi(ByteVector raw) {
        return (FloatVector) raw.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_1, n);
        FloatVector acc = FloatVector.zero(F), accM = acc;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + 4, LE);
            ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + 12, LE);
            FloatVector x0 = FloatVector.fromArray(F, x, xi), x1 = FloatVector.fromArray(F, x, xi + 8);
            FloatVector x2 = FloatVector.fromArray(F, x, xi + 16), x3 = FloatVector.fromArray(F, x, xi + 24);
            FloatVector sq = lo(r0).mul(x0);
            sq = lo(r1).fma(x1, sq);
            sq = hi(r0).fma(x2, sq);
            sq = hi(r1).fma(x3, sq);
            FloatVector sx = x0.add(x1).add(x2.add(x3));
            // Σ(q·d + m)·x = d·Σq·x + m·Σx
            acc = sq.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc);
            accM = sx.fma(FloatVector.broadcast(F, Num.f16(src, p + 2)), accM);
        }
        return acc.add(accM).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_1, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            FloatVector d = FloatVector.broadcast(F, Num.f16(src, p));
            FloatVector m = FloatVector.broadcast(F, Num.f16(src, p + 2));
            int o = dstOff + b * QK;
            ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + 4, LE);
            ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + 12, LE);
            lo(r0).mul(d).add(m).intoArray(dst, o);
            lo(r1).mul(d).add(m).intoArray(dst, o + 8);
            hi(r0).mul(d).add(m).intoArray(dst, o + 16);
            hi(r1).mul(d).add(m).intoArray(dst, o + 24);
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(GgmlType.Q4_1, n);
        for (int b = 0; b < nb; b++) {
            int o = srcOff + b * QK;
            long p = off + (long) b * BLOCK;
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (int j = 0; j < QK; j++) {
                float v = src[o + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 15;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Num.putF16(dst, p, d);
            Num.putF16(dst, p + 2, min);
            for (int j = 0; j < QK / 2; j++) {
                int q0 = Math.min(15, (byte) (int) ((src[o + j] - min) * id + 0.5f));
                int q1 = Math.min(15, (byte) (int) ((src[o + j + QK / 2] - min) * id + 0.5f));
                dst.set(Num.BYTE, p + 4 + j, (byte) (q0 | (q1 << 4)));
            }
        }
    }
}
