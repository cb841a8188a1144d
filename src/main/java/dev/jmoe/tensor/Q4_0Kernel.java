package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_0: blocks of 32 values = half scale d + 16 bytes; byte j holds value j in its low nibble and
 * value j+16 in its high nibble; value = (q − 8)·d.
 */
final class Q4_0Kernel implements TypeKernel {
    static final int QK = 32;
    static final int BLOCK = 18;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.Q4_0; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = Num.u8(src, p + 2 + j);
                dst[o + j] = ((q & 0xF) - 8) * d;
                dst[o + j + QK / 2] = ((q >>> 4) - 8) * d;
            }
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        return Num.dotViaDequant(this, src, off, x, xOff, n);
    }

    private static FloatVector lo(ByteVector raw) {
        return (FloatVector) raw.and((byte) 0xF).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector hi(ByteVector raw) {
        return (FloatVector) raw.lanewise(VectorOperators.LSHR, 4).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_0, n);
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + 2, LE);
            ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + 10, LE);
            FloatVector s0 = lo(r0).mul(FloatVector.fromArray(F, x, xi));
            FloatVector s1 = lo(r1).mul(FloatVector.fromArray(F, x, xi + 8));
            s0 = hi(r0).fma(FloatVector.fromArray(F, x, xi + 16), s0);
            s1 = hi(r1).fma(FloatVector.fromArray(F, x, xi + 24), s1);
            FloatVector d = FloatVector.broadcast(F, Num.f16(src, p));
            acc0 = s0.fma(d, acc0);
            acc1 = s1.fma(d, acc1);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q4_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            int o = dstOff + b * QK;
            ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + 2, LE);
            ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + 10, LE);
            lo(r0).mul(d).intoArray(dst, o);
            lo(r1).mul(d).intoArray(dst, o + 8);
            hi(r0).mul(d).intoArray(dst, o + 16);
            hi(r1).mul(d).intoArray(dst, o + 24);
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(GgmlType.Q4_0, n);
        for (int b = 0; b < nb; b++) {
            int o = srcOff + b * QK;
            long p = off + (long) b * BLOCK;
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) {
                float v = src[o + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Num.putF16(dst, p, d);
            for (int j = 0; j < QK / 2; j++) {
                int q0 = Math.min(15, (byte) (int) (src[o + j] * id + 8.5f));
                int q1 = Math.min(15, (byte) (int) (src[o + j + QK / 2] * id + 8.5f));
                dst.set(Num.BYTE, p + 2 + j, (byte) (q0 | (q1 << 4)));
            }
        }
    }
}
