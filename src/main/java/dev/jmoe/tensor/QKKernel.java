package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_K and Q5_K: super-blocks of 256 values = half d, half dmin, 12 bytes of 6-bit scales and mins
 * for eight sub-blocks of 32 ({@link KQuant#scaleMins}), [Q5_K: 32 bytes of fifth bits], 128 bytes of
 * nibbles. Each 64-value chunk k takes 32 nibble bytes: low nibbles are sub-block 2k, high nibbles
 * sub-block 2k+1. Q5_K's fifth bit of value l in sub-block s is bit s of qh[l]. value = d·sc·q − dmin·m.
 */
final class QKKernel implements TypeKernel {
    private static final int QK = KQuant.QK_K;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private final GgmlType type;
    private final boolean five;
    private final int block;
    private final int qsOff;
    private final int nmax;

    QKKernel(GgmlType type) {
        if (type != GgmlType.Q4_K && type != GgmlType.Q5_K) throw new IllegalArgumentException("not Q4_K/Q5_K: " + type);
        this.type = type;
        this.five = type == GgmlType.Q5_K;
        this.block = type.blockBytes();
        this.qsOff = five ? 48 : 16;
        this.nmax = five ? 31 : 15;
    }

    @Override public GgmlType type() { return type; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(type, n);
        int[] sc = new int[8], mn = new int[8];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            float dmin = Num.f16(src, p + 2);
            KQuant.scaleMins(src, p + 4, sc, mn);
            int o = dstOff + b * QK;
            for (int k = 0; k < 4; k++) {
                float d1 = d * sc[2 * k], m1 = dmin * mn[2 * k];
                float d2 = d * sc[2 * k + 1], m2 = dmin * mn[2 * k + 1];
                for (int l = 0; l < 32; l++) {
                    int q = Num.u8(src, p + qsOff + 32 * k + l);
                    int h1 = 0, h2 = 0;
                    if (five) {
                        int h = Num.u8(src, p + 16 + l);
                        h1 = ((h >>> (2 * k)) & 1) << 4;
                        h2 = ((h >>> (2 * k + 1)) & 1) << 4;
                    }
                    dst[o + 64 * k + l] = d1 * ((q & 0xF) + h1) - m1;
                    dst[o + 64 * k + 32 + l] = d2 * ((q >>> 4) + h2) - m2;
                }
            }
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        return Num.dotViaDequant(this, src, off, x, xOff, n);
    }

    // The 6-bit scale (sc) and min (mn) of sub-block j from the table read as three little-endian ints.
    static int sc(int j, int u0, int u2) {
        return j < 4 ? (u0 >>> (8 * j)) & 63
                : ((u2 >>> (8 * (j - 4))) & 0xF) | (((u0 >>> (8 * (j - 4) + 6)) & 3) << 4);
    }

    static int mn(int j, int u1, int u2) {
        return j < 4 ? (u1 >>> (8 * j)) & 63
                : ((u2 >>> (8 * (j - 4) + 4)) & 0xF) | (((u1 >>> (8 * (j - 4) + 6)) & 3) << 4);
    }

    /** Fifth bit {@code bit} of each byte moved to value 16. */
    private static ByteVector fifth(ByteVector h, int bit) {
        ByteVector moved = bit <= 4 ? h.lanewise(VectorOperators.LSHL, 4 - bit) : h.lanewise(VectorOperators.LSHR, bit - 4);
        return moved.and((byte) 0x10);
    }

    private static FloatVector toF(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(type, n);
        FloatVector acc = FloatVector.zero(F), accM = acc;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            float dmin = Num.f16(src, p + 2);
            int u0 = src.get(Num.LE_INT, p + 4), u1 = src.get(Num.LE_INT, p + 8), u2 = src.get(Num.LE_INT, p + 12);
            int xb = xOff + b * QK;
            for (int k = 0; k < 4; k++) {
                FloatVector sqLo = FloatVector.zero(F), sqHi = sqLo, sxLo = sqLo, sxHi = sqLo;
                for (int c = 0; c < 4; c++) {
                    ByteVector raw = ByteVector.fromMemorySegment(B8, src, p + qsOff + 32 * k + 8 * c, LE);
                    ByteVector lo = raw.and((byte) 0xF), hi = raw.lanewise(VectorOperators.LSHR, 4);
                    if (five) {
                        ByteVector h = ByteVector.fromMemorySegment(B8, src, p + 16 + 8 * c, LE);
                        lo = lo.or(fifth(h, 2 * k));
                        hi = hi.or(fifth(h, 2 * k + 1));
                    }
                    FloatVector xLo = FloatVector.fromArray(F, x, xb + 64 * k + 8 * c);
                    FloatVector xHi = FloatVector.fromArray(F, x, xb + 64 * k + 32 + 8 * c);
                    sqLo = toF(lo).fma(xLo, sqLo);
                    sqHi = toF(hi).fma(xHi, sqHi);
                    sxLo = sxLo.add(xLo);
                    sxHi = sxHi.add(xHi);
                }
                acc = sqLo.fma(FloatVector.broadcast(F, d * sc(2 * k, u0, u2)), acc);
                acc = sqHi.fma(FloatVector.broadcast(F, d * sc(2 * k + 1, u0, u2)), acc);
                accM = sxLo.fma(FloatVector.broadcast(F, dmin * mn(2 * k, u1, u2)), accM);
                accM = sxHi.fma(FloatVector.broadcast(F, dmin * mn(2 * k + 1, u1, u2)), accM);
            }
        }
        return acc.sub(accM).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(type, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            float d = Num.f16(src, p);
            float dmin = Num.f16(src, p + 2);
            int u0 = src.get(Num.LE_INT, p + 4), u1 = src.get(Num.LE_INT, p + 8), u2 = src.get(Num.LE_INT, p + 12);
            int o = dstOff + b * QK;
            for (int k = 0; k < 4; k++) {
                float d1 = d * sc(2 * k, u0, u2), m1 = dmin * mn(2 * k, u1, u2);
                float d2 = d * sc(2 * k + 1, u0, u2), m2 = dmin * mn(2 * k + 1, u1, u2);
                for (int c = 0; c < 4; c++) {
                    ByteVector raw = ByteVector.fromMemorySegment(B8, src, p + qsOff + 32 * k + 8 * c, LE);
                    ByteVector lo = raw.and((byte) 0xF), hi = raw.lanewise(VectorOperators.LSHR, 4);
                    if (five) {
                        ByteVector h = ByteVector.fromMemorySegment(B8, src, p + 16 + 8 * c, LE);
                        lo = lo.or(fifth(h, 2 * k));
                        hi = hi.or(fifth(h, 2 * k + 1));
                    }
                    toF(lo).mul(d1).sub(m1).intoArray(dst, o + 64 * k + 8 * c);
                    toF(hi).mul(d2).sub(m2).intoArray(dst, o + 64 * k + 32 + 8 * c);
                }
            }
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(type, n);
        int[] q = new int[QK];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            KQuant.quantizeScaleMinBlock(src, srcOff + b * QK, nmax, dst, p, q);
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 32; l++) {
                    int q1 = q[64 * k + l], q2 = q[64 * k + 32 + l];
                    dst.set(Num.BYTE, p + qsOff + 32 * k + l, (byte) ((q1 & 0xF) | ((q2 & 0xF) << 4)));
                }
            }
            if (five) {
                for (int l = 0; l < 32; l++) {
                    int h = 0;
                    for (int s = 0; s < 8; s++) h |= ((q[32 * s + l] >>> 4) & 1) << s;
                    dst.set(Num.BYTE, p + 16 + l, (byte) h);
                }
            }
        }
    }
}
