package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_K and Q5_K: super-blocks of 256 values = half d, half dmin, 12 bytes of 6-bit scales and mins
 * for eight sub-blocks of 32 ({@link KQuant#scaleMins}), [Q5_K: 32 bytes of fifth bits], 128 bytes of
 * nibbles. Each 64-value chunk k takes 32 nibble bytes: low nibbles are sub-block 2k, high nibbles
 * sub-block 2k+1. Q5_K's fifth bit of value l in sub-block s is bit s of qh[l]. value = d·sc·q − dmin·m.
 */
final class QKKernel extends RowKernel {
    private static final int QK = KQuant.QK_K;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    // Byte gathers from the 12-byte scale table (see KQuant.scaleMins): scale low bits, their top
    // bits, min low bits, their top bits; lanes 8+ are unused.
    private static final VectorShuffle<Byte> SC_LO = VectorShuffle.fromValues(B16, 0, 1, 2, 3, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0);
    private static final VectorShuffle<Byte> SC_HI = VectorShuffle.fromValues(B16, 0, 1, 2, 3, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0);
    private static final VectorShuffle<Byte> MN_LO = VectorShuffle.fromValues(B16, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0);
    private static final VectorShuffle<Byte> MN_HI = VectorShuffle.fromValues(B16, 4, 5, 6, 7, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0);
    private static final IntVector LOW_MASK = IntVector.fromArray(I, new int[] {63, 63, 63, 63, 15, 15, 15, 15}, 0);
    private static final IntVector HIGH_MASK = IntVector.fromArray(I, new int[] {0, 0, 0, 0, 48, 48, 48, 48}, 0);
    private static final IntVector MN_SHIFT = IntVector.fromArray(I, new int[] {0, 0, 0, 0, 4, 4, 4, 4}, 0);
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

    /**
     * Layout for {@link #dotPrepared}: the hot loop reads 32 quant bytes as eight int lanes and masks
     * out byte j of every lane in place (no shift), so each value arrives multiplied by 2^(8j); the
     * prepared activations compensate with x·2^−8j (exact) and are stored so that lane i of field j
     * meets x[4i + j]. After the n permuted floats come the sums of each 32-value sub-block (for the mins).
     */
    @Override
    int preparedLength(int n) {
        return n + n / 32;
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
        groupSums(x, xOff, n, 32, 1f, xp, n);
    }

    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        return five ? dotQ5K(src, off, xp, n) : dotQ4K(src, off, xp, n);
    }

    /** The eight 6-bit scales (sc = true) or mins (sc = false) of the super-block at p, as int lanes. */
    private static IntVector scaleLanes(ByteVector table, boolean sc) {
        IntVector lo = (IntVector) table.rearrange(sc ? SC_LO : MN_LO).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
        IntVector hi = (IntVector) table.rearrange(sc ? SC_HI : MN_HI).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
        if (!sc) lo = lo.lanewise(VectorOperators.LSHR, MN_SHIFT);
        return lo.and(LOW_MASK).or(hi.lanewise(VectorOperators.LSHR, 2).and(HIGH_MASK));
    }

    /** d·scale and dmin·min of the eight sub-blocks of the super-block at p, into ds[0..8) and dm[0..8). */
    private static FloatVector scales(MemorySegment src, long p, float[] ds) {
        float d = Num.f16(src, p), dmin = Num.f16(src, p + 2);
        ByteVector table = ByteVector.fromMemorySegment(B16, src, p + 4, LE);
        ((FloatVector) scaleLanes(table, true).convert(VectorOperators.I2F, 0)).mul(d).intoArray(ds, 0);
        return ((FloatVector) scaleLanes(table, false).convert(VectorOperators.I2F, 0)).mul(dmin);
    }

    private static float dotQ4K(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        float[] ds = new float[8];
        FloatVector acc = FloatVector.zero(F), mins = acc;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * 144;
            mins = scales(src, p, ds).fma(FloatVector.fromArray(F, xp, n + 8 * b), mins);
            for (int k = 0; k < 4; k++) {
                int xi = b * QK + 64 * k;
                IntVector w = IntVector.fromMemorySegment(I, src, p + 16 + 32 * k, LE);
                IntVector h = w.lanewise(VectorOperators.LSHR, 4);
                FloatVector lo = ((FloatVector) w.and(0xF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
                FloatVector hi = ((FloatVector) h.and(0xF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 32));
                lo = ((FloatVector) w.and(0xF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), lo);
                hi = ((FloatVector) h.and(0xF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 40), hi);
                lo = ((FloatVector) w.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), lo);
                hi = ((FloatVector) h.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 48), hi);
                lo = ((FloatVector) w.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), lo);
                hi = ((FloatVector) h.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 56), hi);
                acc = lo.fma(FloatVector.broadcast(F, ds[2 * k]), acc);
                acc = hi.fma(FloatVector.broadcast(F, ds[2 * k + 1]), acc);
            }
        }
        FloatVector hs0 = acc.sub(mins);
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    private static float dotQ5K(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        float[] ds = new float[8];
        FloatVector acc = FloatVector.zero(F), mins = acc;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * 176;
            mins = scales(src, p, ds).fma(FloatVector.fromArray(F, xp, n + 8 * b), mins);
            IntVector qh = IntVector.fromMemorySegment(I, src, p + 16, LE);
            for (int k = 0; k < 4; k++) {
                int xi = b * QK + 64 * k;
                IntVector w = IntVector.fromMemorySegment(I, src, p + 48 + 32 * k, LE);
                IntVector hb = qh.lanewise(VectorOperators.LSHR, 2 * k);
                // Each byte becomes the full 5-bit quant: nibble plus the fifth bit moved to value 16.
                IntVector l5 = w.and(0x0F0F0F0F).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x10101010));
                IntVector h5 = w.lanewise(VectorOperators.LSHR, 4).and(0x0F0F0F0F).or(hb.lanewise(VectorOperators.LSHL, 3).and(0x10101010));
                FloatVector lo = ((FloatVector) l5.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
                FloatVector hi = ((FloatVector) h5.and(0xFF).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 32));
                lo = ((FloatVector) l5.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), lo);
                hi = ((FloatVector) h5.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 40), hi);
                lo = ((FloatVector) l5.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), lo);
                hi = ((FloatVector) h5.and(0xFF0000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 48), hi);
                lo = ((FloatVector) l5.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), lo);
                hi = ((FloatVector) h5.and(0xFF000000).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 56), hi);
                acc = lo.fma(FloatVector.broadcast(F, ds[2 * k]), acc);
                acc = hi.fma(FloatVector.broadcast(F, ds[2 * k + 1]), acc);
            }
        }
        FloatVector hs0 = acc.sub(mins);
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    @Override
    QuantizedActivation.Scheme activationScheme() {
        return QuantizedActivation.Scheme.Q8_K;
    }

    /**
     * For {@link #dotQ8}, per 32 values (one sub-block) 16 ints: XA[i] = x[4i]·2^16 + x[4i+2] and
     * XC[i] = x[4i+1]·2^16 + x[4i+3]; after all of them, Σx of every sub-block (for the mins).
     */
    @Override
    void prepareQ8(QuantizedActivation a) {
        byte[] q = a.q;
        int[] p = a.ints(a.n / 2 + a.n / 32);
        for (int j = 0; j < a.n / 32; j++) {
            int o = 32 * j, sum = 0;
            for (int l = 0; l < 32; l++) sum += q[o + l];
            p[a.n / 2 + j] = sum;
            for (int i = 0; i < 8; i++) {
                p[16 * j + i] = (q[o + 4 * i] << 16) + q[o + 4 * i + 2];
                p[16 * j + 8 + i] = (q[o + 4 * i + 1] << 16) + q[o + 4 * i + 3];
            }
        }
    }

    /**
     * Integer products two at a time in one 32-bit multiply (see {@link Q4_0Kernel#dotQ8}): the 32 quant bytes
     * of a 64-value chunk are read as eight int lanes of four bytes; masking with 0x000F000F after shifts of
     * 0, 8, 4 and 12 puts the low nibbles of bytes 0 and 2, 1 and 3, and the high nibbles of the same at
     * bits 0 and 16, so lane i sums q·x over values 4i..4i+3 of a sub-block exactly (|·| ≤ 4·31·127). As in
     * ggml's AVX2 vec_dot_q4_K_q8_K / q5_K_q8_K, the sub-block sums are multiplied by their integer scales
     * and summed over the super-block in integers, then take one FMA with d·d_x; the mins are summed in
     * integers and accumulated with −dmin·d_x in four float lanes (Q4_K) or one float (Q5_K).
     */
    @Override
    float dotQ8(MemorySegment src, long off, QuantizedActivation a, int n) {
        return five ? dotQ8Q5K(src, off, a, n) : dotQ8Q4K(src, off, a, n);
    }

    private static final int NIBBLES = 0x000F000F, HALF = 0x8000;

    /**
     * The eight scales and mins of the table at p, by scalar code: {@link #scaleLanes} is compiled on its own
     * and too big to inline, and a vector returned from a call that is not inlined gets allocated.
     */
    private static void scaleTable(MemorySegment src, long p, int[] sc, int[] mn) {
        int u0 = src.get(Num.LE_INT, p), u1 = src.get(Num.LE_INT, p + 4), u2 = src.get(Num.LE_INT, p + 8);
        for (int j = 0; j < 8; j++) {
            sc[j] = sc(j, u0, u2);
            mn[j] = mn(j, u1, u2);
        }
    }

    private static final VectorShuffle<Integer> SWAP_PAIRS = VectorShuffle.fromValues(I, 1, 0, 3, 2, 5, 4, 7, 6);

    private static float dotQ8Q4K(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = n / QK;
        int[] xp = a.i;
        float[] dy = a.d;
        int[] sc = new int[8];
        MemorySegment row = src.asSlice(off, 144L * nb);
        FloatVector acc = FloatVector.zero(F), mins = acc;
        for (int b = 0; b < nb; b++) {
            long p = 144L * b;
            float d = dy[b] * Float.float16ToFloat(row.get(Num.LE_SHORT, p)), dmin = -dy[b] * Float.float16ToFloat(row.get(Num.LE_SHORT, p + 2));
            // scaleLanes written out (as a call it is not inlined here, and its vectors would be allocated)
            ByteVector table = ByteVector.fromMemorySegment(B16, row, p + 4, LE);
            IntVector sl = (IntVector) table.rearrange(SC_LO).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector sh = (IntVector) table.rearrange(SC_HI).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector ml = (IntVector) table.rearrange(MN_LO).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector mh = (IntVector) table.rearrange(MN_HI).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            sl.and(LOW_MASK).or(sh.lanewise(VectorOperators.LSHR, 2).and(HIGH_MASK)).intoArray(sc, 0);
            IntVector mnv = ml.lanewise(VectorOperators.LSHR, MN_SHIFT).and(LOW_MASK).or(mh.lanewise(VectorOperators.LSHR, 2).and(HIGH_MASK));
            // ggml: m_j·Σx_j summed over pairs of sub-blocks in integers, four float lanes of FMAs with −dmin·d_x
            // (here the even lanes; the odd ones hold the same sums).
            IntVector mx = mnv.mul(IntVector.fromArray(I, xp, n / 2 + 8 * b));
            mins = ((FloatVector) mx.add(mx.rearrange(SWAP_PAIRS)).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, dmin), mins);
            IntVector sum = IntVector.zero(I);
            for (int k = 0; k < 4; k++) {
                IntVector w = IntVector.fromMemorySegment(I, row, p + 16 + 32 * k, LE);
                int o = 128 * b + 32 * k;
                IntVector lo = w.and(NIBBLES).mul(IntVector.fromArray(I, xp, o))
                        .add(w.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xp, o + 8))).add(HALF);
                IntVector hi = w.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xp, o + 16))
                        .add(w.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(IntVector.fromArray(I, xp, o + 24))).add(HALF);
                sum = sum.add(lo.lanewise(VectorOperators.ASHR, 16).mul(sc[2 * k])).add(hi.lanewise(VectorOperators.ASHR, 16).mul(sc[2 * k + 1]));
            }
            acc = FloatVector.broadcast(F, d).fma((FloatVector) sum.convert(VectorOperators.I2F, 0), acc);
        }
        // hsum8(acc), written out: a call this late in the method falls outside C2's inlining budget and would box acc.
        float r0 = acc.lane(4) + acc.lane(0), r1 = acc.lane(5) + acc.lane(1), r2 = acc.lane(6) + acc.lane(2), r3 = acc.lane(7) + acc.lane(3);
        return ((r0 + r2) + (r1 + r3)) + ((mins.lane(0) + mins.lane(4)) + (mins.lane(2) + mins.lane(6)));
    }

    /**
     * As {@link #dotQ8Q4K}, with the 5-bit quants rebuilt in bytes first (as {@link #dotQ5K} does), then split
     * even/odd; ggml's Q5_K sums the mins of a super-block in integers and accumulates them in one float.
     */
    private static float dotQ8Q5K(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = n / QK;
        int[] xp = a.i;
        float[] dy = a.d;
        int[] sc = new int[8];
        MemorySegment row = src.asSlice(off, 176L * nb);
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0; b < nb; b++) {
            long p = 176L * b;
            float d = dy[b] * Float.float16ToFloat(row.get(Num.LE_SHORT, p)), dmin = -dy[b] * Float.float16ToFloat(row.get(Num.LE_SHORT, p + 2));
            // scaleLanes written out (as a call it is not inlined here, and its vectors would be allocated)
            ByteVector table = ByteVector.fromMemorySegment(B16, row, p + 4, LE);
            IntVector sl = (IntVector) table.rearrange(SC_LO).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector sh = (IntVector) table.rearrange(SC_HI).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector ml = (IntVector) table.rearrange(MN_LO).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector mh = (IntVector) table.rearrange(MN_HI).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            sl.and(LOW_MASK).or(sh.lanewise(VectorOperators.LSHR, 2).and(HIGH_MASK)).intoArray(sc, 0);
            IntVector mnv = ml.lanewise(VectorOperators.LSHR, MN_SHIFT).and(LOW_MASK).or(mh.lanewise(VectorOperators.LSHR, 2).and(HIGH_MASK));
            mins = Math.fma(dmin, (float) mnv.mul(IntVector.fromArray(I, xp, n / 2 + 8 * b)).reduceLanes(VectorOperators.ADD), mins);
            IntVector qh = IntVector.fromMemorySegment(I, row, p + 16, LE);
            IntVector sum = IntVector.zero(I);
            for (int k = 0; k < 4; k++) {
                IntVector w = IntVector.fromMemorySegment(I, row, p + 48 + 32 * k, LE);
                IntVector hb = qh.lanewise(VectorOperators.LSHR, 2 * k);
                IntVector l5 = w.and(0x0F0F0F0F).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x10101010));
                IntVector h5 = w.lanewise(VectorOperators.LSHR, 4).and(0x0F0F0F0F).or(hb.lanewise(VectorOperators.LSHL, 3).and(0x10101010));
                int o = 128 * b + 32 * k;
                IntVector lo = l5.and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o))
                        .add(l5.lanewise(VectorOperators.LSHR, 8).and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o + 8))).add(HALF);
                IntVector hi = h5.and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o + 16))
                        .add(h5.lanewise(VectorOperators.LSHR, 8).and(0x00FF00FF).mul(IntVector.fromArray(I, xp, o + 24))).add(HALF);
                sum = sum.add(lo.lanewise(VectorOperators.ASHR, 16).mul(sc[2 * k])).add(hi.lanewise(VectorOperators.ASHR, 16).mul(sc[2 * k + 1]));
            }
            acc = FloatVector.broadcast(F, d).fma((FloatVector) sum.convert(VectorOperators.I2F, 0), acc);
        }
        // hsum8(acc), written out: a call this late in the method falls outside C2's inlining budget and would box acc.
        float r0 = acc.lane(4) + acc.lane(0), r1 = acc.lane(5) + acc.lane(1), r2 = acc.lane(6) + acc.lane(2), r3 = acc.lane(7) + acc.lane(3);
        return ((r0 + r2) + (r1 + r3)) + mins;
    }

    /**
     * ggml's vec_dot_q4_K_q8_K / q5_K_q8_K: per super-block, d_x·d·Σ_j sc_j·Σ q·x − d_x·dmin·Σ_j m_j·Σ x
     * with the sums over sub-blocks j in integers.
     */
    @Override
    float dotQ8Scalar(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = Num.blocks(type, n);
        int[] sc = new int[8], mn = new int[8];
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            KQuant.scaleMins(src, p + 4, sc, mn);
            int isum = 0, imin = 0;
            for (int j = 0; j < 8; j++) {
                int s = 0, xs = 0;
                for (int l = 0; l < 32; l++) {
                    int v = Num.u8(src, p + qsOff + 32 * (j / 2) + l);
                    int qv = (j & 1) == 0 ? v & 0xF : v >>> 4;
                    if (five) qv |= ((Num.u8(src, p + 16 + l) >>> j) & 1) << 4;
                    int x = a.q[QK * b + 32 * j + l];
                    s += qv * x;
                    xs += x;
                }
                isum += sc[j] * s;
                imin += mn[j] * xs;
            }
            sum += a.d[b] * Num.f16(src, p) * isum - a.d[b] * Num.f16(src, p + 2) * imin;
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(type, n);
        float[] ds = new float[8], dm = new float[8];
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * block;
            scales(src, p, ds).intoArray(dm, 0);
            if (five) decode5(src, p, ds, dm, dst, dstOff + b * QK);
            else decode4(src, p, ds, dm, dst, dstOff + b * QK);
        }
    }

    private static void decode4(MemorySegment src, long p, float[] ds, float[] dm, float[] dst, int o) {
        for (int k = 0; k < 4; k++) {
            FloatVector d1 = FloatVector.broadcast(F, ds[2 * k]), m1 = FloatVector.broadcast(F, dm[2 * k]);
            FloatVector d2 = FloatVector.broadcast(F, ds[2 * k + 1]), m2 = FloatVector.broadcast(F, dm[2 * k + 1]);
            for (int c = 0; c < 4; c++) {
                IntVector raw = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 16 + 32 * k + 8 * c, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                ((FloatVector) raw.and(0xF).convert(VectorOperators.I2F, 0)).mul(d1).sub(m1).intoArray(dst, o + 64 * k + 8 * c);
                ((FloatVector) raw.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).mul(d2).sub(m2).intoArray(dst, o + 64 * k + 32 + 8 * c);
            }
        }
    }

    private static void decode5(MemorySegment src, long p, float[] ds, float[] dm, float[] dst, int o) {
        for (int k = 0; k < 4; k++) {
            FloatVector d1 = FloatVector.broadcast(F, ds[2 * k]), m1 = FloatVector.broadcast(F, dm[2 * k]);
            FloatVector d2 = FloatVector.broadcast(F, ds[2 * k + 1]), m2 = FloatVector.broadcast(F, dm[2 * k + 1]);
            for (int c = 0; c < 4; c++) {
                IntVector raw = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 48 + 32 * k + 8 * c, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector h = ((IntVector) ByteVector.fromMemorySegment(B8, src, p + 16 + 8 * c, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).lanewise(VectorOperators.LSHR, 2 * k);
                IntVector lo = raw.and(0xF).or(h.and(1).lanewise(VectorOperators.LSHL, 4));
                IntVector hi = raw.lanewise(VectorOperators.LSHR, 4).or(h.and(2).lanewise(VectorOperators.LSHL, 3));
                ((FloatVector) lo.convert(VectorOperators.I2F, 0)).mul(d1).sub(m1).intoArray(dst, o + 64 * k + 8 * c);
                ((FloatVector) hi.convert(VectorOperators.I2F, 0)).mul(d2).sub(m2).intoArray(dst, o + 64 * k + 32 + 8 * c);
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
