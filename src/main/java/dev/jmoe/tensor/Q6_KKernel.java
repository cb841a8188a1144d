package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q6_K: super-blocks of 256 = 128 bytes of low nibbles (ql), 64 bytes of 2-bit high parts (qh),
 * 16 signed 8-bit sub-block scales, half d. Each 128-value half uses 64 ql and 32 qh bytes:
 * value l, l+32, l+64, l+96 (l &lt; 32) take ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibbles
 * and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[l]; value = d·scale[sub-block of 16]·(q − 32).
 */
final class Q6_KKernel implements TypeKernel {
    private static final int QK = KQuant.QK_K;
    private static final int BLOCK = 210;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.Q6_K; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p + 208);
            int o = dstOff + b * QK;
            for (int h = 0; h < 2; h++) {
                long ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h;
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int a = Num.u8(src, ql + l), c = Num.u8(src, ql + l + 32), hb = Num.u8(src, qh + l);
                    int q1 = ((a & 0xF) | ((hb & 3) << 4)) - 32;
                    int q2 = ((c & 0xF) | (((hb >>> 2) & 3) << 4)) - 32;
                    int q3 = ((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32;
                    int q4 = ((c >>> 4) | (((hb >>> 6) & 3) << 4)) - 32;
                    int y = o + 128 * h + l;
                    dst[y] = d * src.get(Num.BYTE, sc + is) * q1;
                    dst[y + 32] = d * src.get(Num.BYTE, sc + is + 2) * q2;
                    dst[y + 64] = d * src.get(Num.BYTE, sc + is + 4) * q3;
                    dst[y + 96] = d * src.get(Num.BYTE, sc + is + 6) * q4;
                }
            }
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        return Num.dotViaDequant(this, src, off, x, xOff, n);
    }

    private static FloatVector toF(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p + 208);
            for (int h = 0; h < 2; h++) {
                long ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h;
                int xb = xOff + b * QK + 128 * h;
                for (int is = 0; is < 2; is++) {
                    FloatVector s1 = FloatVector.zero(F), s2 = s1, s3 = s1, s4 = s1;
                    for (int c = 2 * is; c < 2 * is + 2; c++) {
                        int l = 8 * c;
                        ByteVector a = ByteVector.fromMemorySegment(B8, src, ql + l, LE);
                        ByteVector e = ByteVector.fromMemorySegment(B8, src, ql + l + 32, LE);
                        ByteVector hb = ByteVector.fromMemorySegment(B8, src, qh + l, LE);
                        ByteVector q1 = a.and((byte) 0xF).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                        ByteVector q2 = e.and((byte) 0xF).or(hb.and((byte) 0xC).lanewise(VectorOperators.LSHL, 2));
                        ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0x30));
                        ByteVector q4 = e.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0xC0).lanewise(VectorOperators.LSHR, 2));
                        s1 = toF(q1.sub((byte) 32)).fma(FloatVector.fromArray(F, x, xb + l), s1);
                        s2 = toF(q2.sub((byte) 32)).fma(FloatVector.fromArray(F, x, xb + l + 32), s2);
                        s3 = toF(q3.sub((byte) 32)).fma(FloatVector.fromArray(F, x, xb + l + 64), s3);
                        s4 = toF(q4.sub((byte) 32)).fma(FloatVector.fromArray(F, x, xb + l + 96), s4);
                    }
                    acc0 = s1.fma(FloatVector.broadcast(F, d * src.get(Num.BYTE, sc + is)), acc0);
                    acc1 = s2.fma(FloatVector.broadcast(F, d * src.get(Num.BYTE, sc + is + 2)), acc1);
                    acc0 = s3.fma(FloatVector.broadcast(F, d * src.get(Num.BYTE, sc + is + 4)), acc0);
                    acc1 = s4.fma(FloatVector.broadcast(F, d * src.get(Num.BYTE, sc + is + 6)), acc1);
                }
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p + 208);
            for (int h = 0; h < 2; h++) {
                long ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h;
                int y = dstOff + b * QK + 128 * h;
                for (int c = 0; c < 4; c++) {
                    int l = 8 * c, is = c / 2;
                    ByteVector a = ByteVector.fromMemorySegment(B8, src, ql + l, LE);
                    ByteVector e = ByteVector.fromMemorySegment(B8, src, ql + l + 32, LE);
                    ByteVector hb = ByteVector.fromMemorySegment(B8, src, qh + l, LE);
                    ByteVector q1 = a.and((byte) 0xF).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    ByteVector q2 = e.and((byte) 0xF).or(hb.and((byte) 0xC).lanewise(VectorOperators.LSHL, 2));
                    ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0x30));
                    ByteVector q4 = e.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0xC0).lanewise(VectorOperators.LSHR, 2));
                    toF(q1.sub((byte) 32)).mul(d * src.get(Num.BYTE, sc + is)).intoArray(dst, y + l);
                    toF(q2.sub((byte) 32)).mul(d * src.get(Num.BYTE, sc + is + 2)).intoArray(dst, y + l + 32);
                    toF(q3.sub((byte) 32)).mul(d * src.get(Num.BYTE, sc + is + 4)).intoArray(dst, y + l + 64);
                    toF(q4.sub((byte) 32)).mul(d * src.get(Num.BYTE, sc + is + 6)).intoArray(dst, y + l + 96);
                }
            }
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        float[] scales = new float[16];
        int[] q = new int[QK];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int o = srcOff + b * QK;
            // Sub-block scale: its largest-magnitude value maps to −32 (the wider end of [−32, 31]).
            float maxScale = 0, maxAbs = 0;
            for (int s = 0; s < 16; s++) {
                float amax = 0, vmax = 0;
                for (int i = 0; i < 16; i++) {
                    float v = src[o + 16 * s + i];
                    if (Math.abs(v) > amax) {
                        amax = Math.abs(v);
                        vmax = v;
                    }
                }
                scales[s] = vmax / -32f;
                if (Math.abs(scales[s]) > maxAbs) {
                    maxAbs = Math.abs(scales[s]);
                    maxScale = scales[s];
                }
            }
            float iscale = maxScale != 0 ? -128f / maxScale : 0f;
            Num.putF16(dst, p + 208, iscale != 0 ? 1f / iscale : 0f);
            float d = Num.f16(dst, p + 208);
            for (int s = 0; s < 16; s++) {
                int ls = Math.max(-128, Math.min(127, Num.roundf(iscale * scales[s])));
                dst.set(Num.BYTE, p + 192 + s, (byte) ls);
                float dl = d * ls;
                for (int i = 0; i < 16; i++) {
                    int k = 16 * s + i;
                    q[k] = dl == 0 ? 32 : KQuant.clamp(Num.roundf(src[o + k] / dl), -32, 31) + 32;
                }
            }
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int base = 128 * h + l;
                    int q1 = q[base], q2 = q[base + 32], q3 = q[base + 64], q4 = q[base + 96];
                    dst.set(Num.BYTE, p + 64 * h + l, (byte) ((q1 & 0xF) | ((q3 & 0xF) << 4)));
                    dst.set(Num.BYTE, p + 64 * h + l + 32, (byte) ((q2 & 0xF) | ((q4 & 0xF) << 4)));
                    dst.set(Num.BYTE, p + 128 + 32 * h + l,
                            (byte) ((q1 >>> 4) | ((q2 >>> 4) << 2) | ((q3 >>> 4) << 4) | ((q4 >>> 4) << 6)));
                }
            }
        }
    }
}
