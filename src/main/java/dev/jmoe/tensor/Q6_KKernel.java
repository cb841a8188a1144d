package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q6_K: super-blocks of 256 = 128 bytes of low nibbles (ql), 64 bytes of 2-bit high parts (qh),
 * 16 signed 8-bit sub-block scales, half d. Each 128-value half uses 64 ql and 32 qh bytes:
 * value l, l+32, l+64, l+96 (l &lt; 32) take ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibbles
 * and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[l]; value = d·scale[sub-block of 16]·(q − 32).
 */
final class Q6_KKernel extends RowKernel {
    private static final int QK = KQuant.QK_K;
    private static final int BLOCK = 210;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    /** Lanes 4-7: in the hot loop's lane layout they hold the second sub-block of each 32 values. */
    private static final VectorMask<Float> UPPER = VectorMask.fromValues(F, false, false, false, false, true, true, true, true);
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

    /**
     * Layout for {@link #dotPrepared}: as in {@link QKKernel}, 32 quant bytes are read as eight int
     * lanes and byte j of each lane is masked in place, so x is permuted per 32 values (lane i of field
     * j meets x[4i + j]) and scaled by 2^−8j. Then come −32·Σx of each 16-value sub-block (the quant offset).
     */
    @Override
    int preparedLength(int n) {
        return n + n / 16;
    }

    @Override
    void prepare(float[] x, int xOff, int n, float[] xp) {
        for (int g = 0; g < n / 32; g++) {
            int o = xOff + 32 * g, t = 32 * g;
            for (int i = 0; i < 8; i++) {
                xp[t + i] = x[o + 4 * i];
                xp[t + 8 + i] = x[o + 4 * i + 1] * 0x1p-8f;
                xp[t + 16 + i] = x[o + 4 * i + 2] * 0x1p-16f;
                xp[t + 24 + i] = x[o + 4 * i + 3] * 0x1p-24f;
            }
        }
        groupSums(x, xOff, n, 16, -32f, xp, n);
    }

    /**
     * Lanes 0-3 of each 32-value group belong to one 16-value sub-block and lanes 4-7 to the next, so
     * every group's sum is accumulated twice, once per sub-block scale, and the final blend keeps lanes
     * 0-3 of the first and 4-7 of the second.
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        float[] fs = new float[16];
        FloatVector accA = FloatVector.zero(F), accB = accA, corr = accA;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p + 208));
            ByteVector sc = ByteVector.fromMemorySegment(B16, src, p + 192, LE);
            FloatVector s0 = ((FloatVector) sc.convertShape(VectorOperators.B2F, F, 0)).mul(d);
            FloatVector s1 = ((FloatVector) sc.convertShape(VectorOperators.B2F, F, 1)).mul(d);
            s0.intoArray(fs, 0);
            s1.intoArray(fs, 8);
            corr = s0.fma(FloatVector.fromArray(F, xp, n + 16 * b), corr);
            corr = s1.fma(FloatVector.fromArray(F, xp, n + 16 * b + 8), corr);
            for (int h = 0; h < 2; h++) {
                IntVector a = IntVector.fromMemorySegment(I, src, p + 64 * h, LE);
                IntVector e = IntVector.fromMemorySegment(I, src, p + 64 * h + 32, LE);
                IntVector hb = IntVector.fromMemorySegment(I, src, p + 128 + 32 * h, LE);
                int xi = b * QK + 128 * h;
                int fi = 8 * h;
                IntVector q = a.and(0x0F0F0F0F).or(hb.and(0x03030303).lanewise(VectorOperators.LSHL, 4));
                FloatVector t = ((FloatVector) q.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
                t = ((FloatVector) q.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), t);
                t = ((FloatVector) q.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), t);
                t = ((FloatVector) q.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), t);
                accA = t.fma(FloatVector.broadcast(F, fs[fi]), accA);
                accB = t.fma(FloatVector.broadcast(F, fs[fi + 1]), accB);
                q = e.and(0x0F0F0F0F).or(hb.and(0x0C0C0C0C).lanewise(VectorOperators.LSHL, 2));
                t = ((FloatVector) q.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 32));
                t = ((FloatVector) q.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 40), t);
                t = ((FloatVector) q.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 48), t);
                t = ((FloatVector) q.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 56), t);
                accA = t.fma(FloatVector.broadcast(F, fs[fi + 2]), accA);
                accB = t.fma(FloatVector.broadcast(F, fs[fi + 3]), accB);
                q = a.lanewise(VectorOperators.LSHR, 4).and(0x0F0F0F0F).or(hb.and(0x30303030));
                t = ((FloatVector) q.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 64));
                t = ((FloatVector) q.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 72), t);
                t = ((FloatVector) q.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 80), t);
                t = ((FloatVector) q.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 88), t);
                accA = t.fma(FloatVector.broadcast(F, fs[fi + 4]), accA);
                accB = t.fma(FloatVector.broadcast(F, fs[fi + 5]), accB);
                q = e.lanewise(VectorOperators.LSHR, 4).and(0x0F0F0F0F).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30303030));
                t = ((FloatVector) q.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 96));
                t = ((FloatVector) q.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 104), t);
                t = ((FloatVector) q.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 112), t);
                t = ((FloatVector) q.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 120), t);
                accA = t.fma(FloatVector.broadcast(F, fs[fi + 6]), accA);
                accB = t.fma(FloatVector.broadcast(F, fs[fi + 7]), accB);
            }
        }
        FloatVector hs0 = accA.blend(accB, UPPER).add(corr);
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    @Override
    QuantizedActivation.Scheme activationScheme() {
        return QuantizedActivation.Scheme.Q8_K;
    }

    /**
     * For {@link #dotQ8}, per 32 values 24 ints: Xe[i] = x[4i]·2^16 + x[4i+2], Xo[i] = x[4i+1]·2^16 +
     * x[4i+3], K[i] = −32·(those four x)·2^16 + 2^15 (the quant offset and the rounding of the final shift).
     */
    @Override
    void prepareQ8(QuantizedActivation a) {
        Q4_0Kernel.pairLayout(a.q, a.n, -32, a.ints(a.n / 32 * 24));
    }

    /** Scales of two consecutive sub-blocks spread over lanes 0-3 and 4-7. */
    private static final VectorShuffle<Integer> PAIR = VectorShuffle.fromValues(I, 0, 0, 0, 0, 1, 1, 1, 1);

    /**
     * The 6-bit quants of 32 values are rebuilt in the bytes of eight int lanes (as in {@link #dotPrepared}),
     * then the even and odd bytes masked to bits 0 and 16 and multiplied two at a time in 32-bit lanes (see
     * {@link Q4_0Kernel#dotQ8}): adding K and shifting by 16 leaves Σ(q − 32)·x of each lane's four values
     * 4i..4i+3 (|q_a·x_b| ≤ 63·127, twice, stays below 2^15). Lanes 0-3 belong to one 16-value sub-block,
     * 4-7 to the next; they are multiplied by their integer scales and summed over the super-block in
     * integers, then one FMA with d·d_x per super-block: ggml's AVX2 vec_dot_q6_K_q8_K, to the bit.
     */
    @Override
    float dotQ8(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = n / QK;
        int[] xp = a.i;
        float[] dy = a.d;
        int[] scales = new int[24];
        MemorySegment row = src.asSlice(off, (long) BLOCK * nb);
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = (long) BLOCK * b;
            float d = dy[b] * Float.float16ToFloat(row.get(Num.LE_SHORT, p + 208));
            ByteVector sc = ByteVector.fromMemorySegment(B16, row, p + 192, LE);
            ((IntVector) sc.convertShape(VectorOperators.B2I, I, 0)).intoArray(scales, 0);
            ((IntVector) sc.convertShape(VectorOperators.B2I, I, 1)).intoArray(scales, 8);
            IntVector sum = IntVector.zero(I);
            for (int h = 0; h < 2; h++) {
                IntVector ql = IntVector.fromMemorySegment(I, row, p + 64 * h, LE);
                IntVector qm = IntVector.fromMemorySegment(I, row, p + 64 * h + 32, LE);
                IntVector hb = IntVector.fromMemorySegment(I, row, p + 128 + 32 * h, LE);
                // Written as a loop (C2 unrolls it): four copies of the body would stop C2 inlining the vector calls.
                for (int t = 0; t < 4; t++) {
                    IntVector q = ((t & 1) == 0 ? ql : qm).lanewise(VectorOperators.LSHR, 4 * (t >> 1)).and(0x0F0F0F0F)
                            .or(hb.lanewise(VectorOperators.LSHR, 2 * t).and(0x03030303).lanewise(VectorOperators.LSHL, 4));
                    int o = 192 * b + 96 * h + 24 * t;
                    IntVector r = q.and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o))
                            .add(q.lanewise(VectorOperators.LSHR, 8).and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o + 8)))
                            .add(IntVector.fromArray(I, xp, o + 16));
                    sum = sum.add(r.lanewise(VectorOperators.ASHR, 16).mul(IntVector.fromArray(I, scales, 8 * h + 2 * t).rearrange(PAIR)));
                }
            }
            acc = FloatVector.broadcast(F, d).fma((FloatVector) sum.convert(VectorOperators.I2F, 0), acc);
        }
        // hsum8(acc), written out: a call this late in the method falls outside C2's inlining budget and would box acc.
        float r0 = acc.lane(4) + acc.lane(0), r1 = acc.lane(5) + acc.lane(1), r2 = acc.lane(6) + acc.lane(2), r3 = acc.lane(7) + acc.lane(3);
        return (r0 + r2) + (r1 + r3);
    }

    /** ggml's vec_dot_q6_K_q8_K: per super-block, d_x·d·Σ_j scale_j·Σ (q − 32)·x, the sums in integers. */
    @Override
    float dotQ8Scalar(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int isum = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int k = 0; k < 16; k++) {
                    int v = 16 * j + k, h = v / 128, t = (v % 128) / 32, l = v % 32;
                    int ql = Num.u8(src, p + 64 * h + 32 * (t & 1) + l), qh = Num.u8(src, p + 128 + 32 * h + l);
                    int q = ((t < 2 ? ql & 0xF : ql >>> 4) | (((qh >>> (2 * t)) & 3) << 4)) - 32;
                    s += q * a.q[QK * b + v];
                }
                isum += src.get(Num.BYTE, p + 192 + j) * s;
            }
            sum += a.d[b] * Num.f16(src, p + 208) * isum;
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q6_K, n);
        float[] fs = new float[16];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p + 208));
            ByteVector sc = ByteVector.fromMemorySegment(B16, src, p + 192, LE);
            ((FloatVector) sc.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(fs, 0);
            ((FloatVector) sc.convertShape(VectorOperators.B2F, F, 1)).mul(d).intoArray(fs, 8);
            for (int h = 0; h < 2; h++) {
                long ql = p + 64 * h, qh = p + 128 + 32 * h;
                int y = dstOff + b * QK + 128 * h;
                for (int c = 0; c < 4; c++) {
                    int l = 8 * c, f = 8 * h + c / 2;
                    // Int lanes: x86 has no byte shifts, so the bit surgery is cheaper after widening.
                    IntVector a = (IntVector) ByteVector.fromMemorySegment(B8, src, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector e = (IntVector) ByteVector.fromMemorySegment(B8, src, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector hb = (IntVector) ByteVector.fromMemorySegment(B8, src, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector q1 = a.and(0xF).or(hb.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    IntVector q2 = e.and(0xF).or(hb.and(0xC).lanewise(VectorOperators.LSHL, 2)).sub(32);
                    IntVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32);
                    IntVector q4 = e.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32);
                    ((FloatVector) q1.convert(VectorOperators.I2F, 0)).mul(fs[f]).intoArray(dst, y + l);
                    ((FloatVector) q2.convert(VectorOperators.I2F, 0)).mul(fs[f + 2]).intoArray(dst, y + l + 32);
                    ((FloatVector) q3.convert(VectorOperators.I2F, 0)).mul(fs[f + 4]).intoArray(dst, y + l + 64);
                    ((FloatVector) q4.convert(VectorOperators.I2F, 0)).mul(fs[f + 6]).intoArray(dst, y + l + 96);
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
