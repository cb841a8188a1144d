package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q5_0 and Q5_1: blocks of 32 = half d (Q5_1: + half m), a little-endian 32-bit word whose bit i is
 * the fifth bit of value i, then 16 nibble bytes laid out as in Q4_0.
 * Q5_0 value = (q − 16)·d; Q5_1 value = q·d + m.
 */
final class Q5Kernel implements TypeKernel {
    static final int QK = 32;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
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

    /** The 32 quants of one block (Q5_0 already centred by −16) as four float vectors. */
    private FloatVector[] quants(MemorySegment src, long p, FloatVector[] out) {
        int qh = src.get(Num.LE_INT, p + qhOff);
        ByteVector r0 = ByteVector.fromMemorySegment(B8, src, p + qhOff + 4, LE);
        ByteVector r1 = ByteVector.fromMemorySegment(B8, src, p + qhOff + 12, LE);
        byte bias = (byte) (hasMin ? 0 : 16);
        out[0] = toF(r0.and((byte) 0xF).or(high(qh, 0)).sub(bias));
        out[1] = toF(r1.and((byte) 0xF).or(high(qh, 8)).sub(bias));
        out[2] = toF(r0.lanewise(VectorOperators.LSHR, 4).or(high(qh, 16)).sub(bias));
        out[3] = toF(r1.lanewise(VectorOperators.LSHR, 4).or(high(qh, 24)).sub(bias));
        return out;
    }

    private static FloatVector toF(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(type, n);
        FloatVector acc = FloatVector.zero(F), accM = acc;
        FloatVector[] q = new FloatVector[4];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            int xi = xOff + b * QK;
            quants(src, p, q);
            FloatVector x0 = FloatVector.fromArray(F, x, xi), x1 = FloatVector.fromArray(F, x, xi + 8);
            FloatVector x2 = FloatVector.fromArray(F, x, xi + 16), x3 = FloatVector.fromArray(F, x, xi + 24);
            FloatVector sq = q[0].mul(x0);
            sq = q[1].fma(x1, sq);
            sq = q[2].fma(x2, sq);
            sq = q[3].fma(x3, sq);
            acc = sq.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc);
            if (hasMin) accM = x0.add(x1).add(x2.add(x3)).fma(FloatVector.broadcast(F, Num.f16(src, p + 2)), accM);
        }
        return acc.add(accM).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(type, n);
        FloatVector[] q = new FloatVector[4];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            float m = hasMin ? Num.f16(src, p + 2) : 0f;
            quants(src, p, q);
            for (int k = 0; k < 4; k++) {
                FloatVector v = q[k].mul(d);
                if (hasMin) v = v.add(m);
                v.intoArray(dst, dstOff + b * QK + 8 * k);
            }
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
