package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q5_0 and Q5_1: blocks of 32 = half d (Q5_1: + half m), a little-endian 32-bit word whose bit i is
 * the fifth bit of value i, then 16 nibble bytes laid out as in Q4_0.
 * Q5_0 value = (q − 16)·d; Q5_1 value = q·d + m.
 */
final class Q5Kernel extends RowKernel {
    static final int QK = 32;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final IntVector SHIFT_0 = IntVector.fromArray(I, new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 0);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Entry i (8 bytes) spreads the 8 bits of i into bytes holding 0 or 16: the fifth bits of 8 values. */
    private static final byte[] HIGH_BITS = new byte[256 * 8];

    static {
        for (int i = 0; i < 256; i++) {
            for (int k = 0; k < 8; k++) HIGH_BITS[i * 8 + k] = (byte) (((i >>> k) & 1) << 4);
        }
    }

    private final GgmlType type;
    private final boolean hasMin;
    private final int block;
    private final int qhOff;

    Q5Kernel(GgmlType type) {
        if (type != GgmlType.Q5_0 && type != GgmlType.Q5_1) throw new IllegalArgumentException("not a Q5 type: " + type);
        this.type = type;
        this.hasMin = type == GgmlType.Q5_1;
        this.block = type.blockBytes();
        this.qhOff = hasMin ? 4 : 2;
    }

    @Override public GgmlType type() { return type; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(type, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            int qh = src.get(Num.LE_INT, p + qhOff);
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = Num.u8(src, p + qhOff + 4 + j);
                int h0 = ((qh >>> j) << 4) & 0x10;
                int h1 = (qh >>> (j + 12)) & 0x10;
                int q0 = (q & 0xF) | h0;
                int q1 = (q >>> 4) | h1;
                if (hasMin) {
                    float m = Num.f16(src, p + 2);
                    dst[o + j] = q0 * d + m;
                    dst[o + j + QK / 2] = q1 * d + m;
                } else {
                    dst[o + j] = (q0 - 16) * d;
                    dst[o + j + QK / 2] = (q1 - 16) * d;
                }
            }
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        return Num.dotViaDequant(this, src, off, x, xOff, n);
    }

    private static ByteVector high(int qh, int shift) {
        return ByteVector.fromArray(B8, HIGH_BITS, ((qh >>> shift) & 0xFF) * 8);
    }

    private static FloatVector toF(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0);
    }

    /** x as is, then Σx of every block (Q5_0: for the −16 offset, Q5_1: for the m term). */
    /** llama.cpp rounds the activations of Q5_0 products to Q8_0 blocks and those of Q5_1 to Q8_1, whose values are the same. */
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
        return hasMin ? dot51(src, off, xp, n) : dot50(src, off, xp, n);
    }

    // Fifth bits: bit k of the 32-bit qh word belongs to value k; lanes pick theirs with a variable shift.
    private static float dot50(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * 22;
            int xi = b * QK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p));
            int qh = src.get(Num.LE_INT, p + 2);
            IntVector r0 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 6, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector r1 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 14, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector h0 = IntVector.broadcast(I, qh).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h1 = IntVector.broadcast(I, qh >>> 8).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h2 = IntVector.broadcast(I, qh >>> 16).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h3 = IntVector.broadcast(I, qh >>> 24).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            // −16·Σx enters as the starting value, spread over the 8 lanes.
            FloatVector s = ((FloatVector) r0.and(0xF).or(h0).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), FloatVector.broadcast(F, -2f * xp[n + b]));
            s = ((FloatVector) r1.and(0xF).or(h1).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            s = ((FloatVector) r0.lanewise(VectorOperators.LSHR, 4).or(h2).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            s = ((FloatVector) r1.lanewise(VectorOperators.LSHR, 4).or(h3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
            acc = s.fma(FloatVector.broadcast(F, d), acc);
        }
        FloatVector hs0 = acc;
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    private static float dot51(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * 24;
            int xi = b * QK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p));
            float m = Float.float16ToFloat(src.get(Num.LE_SHORT, p + 2));
            int qh = src.get(Num.LE_INT, p + 4);
            IntVector r0 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector r1 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 16, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector h0 = IntVector.broadcast(I, qh).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h1 = IntVector.broadcast(I, qh >>> 8).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h2 = IntVector.broadcast(I, qh >>> 16).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector h3 = IntVector.broadcast(I, qh >>> 24).lanewise(VectorOperators.LSHR, SHIFT_0).and(1).lanewise(VectorOperators.LSHL, 4);
            FloatVector s = ((FloatVector) r0.and(0xF).or(h0).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
            s = ((FloatVector) r1.and(0xF).or(h1).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            s = ((FloatVector) r0.lanewise(VectorOperators.LSHR, 4).or(h2).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            s = ((FloatVector) r1.lanewise(VectorOperators.LSHR, 4).or(h3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
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
        int nb = Num.blocks(type, n);
        ByteVector bias = ByteVector.broadcast(B8, (byte) (hasMin ? 0 : 16));
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            float m = hasMin ? Num.f16(src, p + 2) : 0f;
            int qh = src.get(Num.LE_INT, p + qhOff);
            ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + qhOff + 4, LE);
            ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + qhOff + 12, LE);
            int o = dstOff + b * QK;
            FloatVector v0 = toF(r0.and((byte) 0xF).or(high(qh, 0)).sub(bias)).mul(d);
            FloatVector v1 = toF(r1.and((byte) 0xF).or(high(qh, 8)).sub(bias)).mul(d);
            FloatVector v2 = toF(r0.lanewise(VectorOperators.LSHR, 4).or(high(qh, 16)).sub(bias)).mul(d);
            FloatVector v3 = toF(r1.lanewise(VectorOperators.LSHR, 4).or(high(qh, 24)).sub(bias)).mul(d);
            if (hasMin) {
                v0 = v0.add(m);
                v1 = v1.add(m);
                v2 = v2.add(m);
                v3 = v3.add(m);
            }
            v0.intoArray(dst, o);
            v1.intoArray(dst, o + 8);
            v2.intoArray(dst, o + 16);
            v3.intoArray(dst, o + 24);
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(type, n);
        for (int b = 0; b < nb; b++) {
            int o = srcOff + b * QK;
            long p = off + (long) b * block;
            int[] q = new int[QK];
            if (hasMin) {
                float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
                for (int j = 0; j < QK; j++) {
                    min = Math.min(min, src[o + j]);
                    max = Math.max(max, src[o + j]);
                }
                float d = (max - min) / 31;
                float id = d != 0 ? 1.0f / d : 0.0f;
                Num.putF16(dst, p, d);
                Num.putF16(dst, p + 2, min);
                for (int j = 0; j < QK; j++) q[j] = Math.min(31, (int) ((src[o + j] - min) * id + 0.5f));
            } else {
                float amax = 0, max = 0;
                for (int j = 0; j < QK; j++) {
                    if (amax < Math.abs(src[o + j])) {
                        amax = Math.abs(src[o + j]);
                        max = src[o + j];
                    }
                }
                float d = max / -16;
                float id = d != 0 ? 1.0f / d : 0.0f;
                Num.putF16(dst, p, d);
                for (int j = 0; j < QK; j++) q[j] = Math.min(31, (byte) (int) (src[o + j] * id + 16.5f));
            }
            int qh = 0;
            for (int j = 0; j < QK; j++) qh |= ((q[j] >>> 4) & 1) << j;
            dst.set(Num.LE_INT, p + qhOff, qh);
            for (int j = 0; j < QK / 2; j++) {
                dst.set(Num.BYTE, p + qhOff + 4 + j, (byte) ((q[j] & 0xF) | ((q[j + QK / 2] & 0xF) << 4)));
            }
        }
    }
}
