package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Q4_1: blocks of 32 = half d, half m, 16 nibble bytes (as Q4_0); value = q·d + m. */
final class Q4_1Kernel extends RowKernel {
    static final int QK = 32;
    static final int BLOCK = 20;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
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

    /** x as is, then Σx of every block (for the m term). */
    /** llama.cpp rounds the activations of Q4_1 products to Q8_1 blocks, whose values are those of {@link QuantizedActivation.Scheme#Q8_0}. */
    @Override
    QuantizedActivation.Scheme activationScheme() {
        return QuantizedActivation.Scheme.Q8_0;
    }

    @Override
    int preparedLength(int n) {
        return n + n / QK;
    }

    @Override
    void prepare(float[] x, int xOff, int n, float[] xp) {
        System.arraycopy(x, xOff, xp, 0, n);
        groupSums(x, xOff, n, QK, 1f, xp, n);
    }

    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = b * QK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p));
            float m = Float.float16ToFloat(src.get(Num.LE_SHORT, p + 2));
            IntVector r0 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 4, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector r1 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 12, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            FloatVector s = ((FloatVector) r0.and(0xF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
            s = ((FloatVector) r1.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            s = ((FloatVector) r0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            s = ((FloatVector) r1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
            acc = s.fma(FloatVector.broadcast(F, d), acc);
            mins += m * xp[n + b];
        }
        FloatVector hs0 = acc;
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0) + mins;
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
