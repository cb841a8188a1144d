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
 * Q4_0: blocks of 32 values = half scale d + 16 bytes; byte j holds value j in its low nibble and
 * value j+16 in its high nibble; value = (q − 8)·d.
 */
final class Q4_0Kernel extends RowKernel {
    static final int QK = 32;
    static final int BLOCK = 18;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
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

    /** x as is, then per block −Σx over the block (the −8 offset applied once instead of per value). */
    @Override
    int preparedLength(int n) {
        return n + n / QK;
    }

    @Override
    void prepare(float[] x, int xOff, int n, float[] xp) {
        System.arraycopy(x, xOff, xp, 0, n);
        groupSums(x, xOff, n, QK, -1f, xp, n);
    }

    /**
     * Bytes are zero-extended into int lanes, so the low nibble is a mask and the high nibble a shift
     * away, and the block's −8·Σx enters as the starting value of the sum (spread over the 8 lanes).
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = b * QK;
            float d = Float.float16ToFloat(src.get(Num.LE_SHORT, p));
            IntVector r0 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 2, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector r1 = (IntVector) ByteVector.fromMemorySegment(B8, src, p + 10, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            FloatVector s = ((FloatVector) r0.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), FloatVector.broadcast(F, xp[n + b]));
            s = ((FloatVector) r1.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            s = ((FloatVector) r0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            s = ((FloatVector) r1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
            acc = s.fma(FloatVector.broadcast(F, d), acc);
        }
        FloatVector hs0 = acc;
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    @Override
    QuantizedActivation.Scheme activationScheme() {
        return QuantizedActivation.Scheme.Q8_0;
    }

    /**
     * Per block 24 ints for {@link #dotQ8}: Xe[i] = x[4i]·2^16 + x[4i+2], Xo[i] = x[4i+1]·2^16 + x[4i+3],
     * K[i] = −8·(x[4i] + … + x[4i+3])·2^16 + 2^15 (the quant offset and the rounding of the final shift).
     */
    @Override
    void prepareQ8(QuantizedActivation a) {
        pairLayout(a.q, a.n, -8, a.ints(a.n / QK * 24));
    }

    /** The 24-int layout per 32 values of {@link #prepareQ8} with quant offset {@code offset}; also Q6_K's. */
    static void pairLayout(byte[] q, int n, int offset, int[] p) {
        for (int g = 0; g < n / 32; g++) {
            int o = 32 * g, t = 24 * g;
            for (int i = 0; i < 8; i++) {
                int x0 = q[o + 4 * i], x1 = q[o + 4 * i + 1], x2 = q[o + 4 * i + 2], x3 = q[o + 4 * i + 3];
                p[t + i] = (x0 << 16) + x2;
                p[t + 8 + i] = (x1 << 16) + x3;
                p[t + 16 + i] = (offset * (x0 + x1 + x2 + x3) << 16) + 0x8000;
            }
        }
    }

    private static final VectorShuffle<Integer> BOTH_HALVES = VectorShuffle.fromValues(I, 0, 1, 2, 3, 0, 1, 2, 3);
    private static final IntVector EVEN_SHIFT = IntVector.fromArray(I, new int[] {0, 0, 0, 0, 4, 4, 4, 4}, 0);
    private static final IntVector ODD_SHIFT = IntVector.fromArray(I, new int[] {8, 8, 8, 8, 12, 12, 12, 12}, 0);

    /**
     * Integer products two at a time in one 32-bit multiply. The 16 quant bytes are read as four int lanes
     * and copied to both halves of the vector; lanes 0-3 take the low nibbles, lanes 4-7 the high ones, so
     * int lane i covers values 4i..4i+3 as in ggml's AVX2 vec_dot_q4_0_q8_0. Shifting by 0/8 (4/12 in the
     * upper half) and masking with 0x000F000F leaves two nibbles per lane at bits 0 and 16: W = q_a + q_b·2^16.
     * With X = x_a·2^16 + x_b, W·X = (q_a·x_a + q_b·x_b)·2^16 + q_a·x_b modulo 2^32; adding K and shifting
     * right by 16 leaves Σ(q − 8)·x of the lane's four values exactly, since |q_a·x_b| ≤ 15·127 stays far
     * below 2^15 (twice over) and the wanted sum, at most 4·8·127, below 2^15 as well. Then one FMA per block
     * with d_w·d_x, as llama.cpp does.
     */
    @Override
    float dotQ8(MemorySegment src, long off, QuantizedActivation a, int n) {
        int[] xp = a.i;
        float[] dx = a.d;
        int nb = n / QK;
        // A segment of exactly the row: C2 compiles the loop over it tighter than over offsets into the whole tensor.
        MemorySegment row = src.asSlice(off, (long) nb * BLOCK);
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = (long) b * BLOCK;
            float d = Float.float16ToFloat(row.get(Num.LE_SHORT, p)) * dx[b];
            IntVector w = ((IntVector) ByteVector.fromMemorySegment(B16, row, p + 2, LE).reinterpretShape(I, 0)).rearrange(BOTH_HALVES);
            IntVector t = w.lanewise(VectorOperators.LSHR, EVEN_SHIFT).and(0x000F000F).mul(IntVector.fromArray(I, xp, 24 * b))
                    .add(w.lanewise(VectorOperators.LSHR, ODD_SHIFT).and(0x000F000F).mul(IntVector.fromArray(I, xp, 24 * b + 8)))
                    .add(IntVector.fromArray(I, xp, 24 * b + 16));
            acc = ((FloatVector) t.lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, d), acc);
        }
        // hsum8(acc), written out: a call this late in the method falls outside C2's inlining budget and would box acc.
        float r0 = acc.lane(4) + acc.lane(0), r1 = acc.lane(5) + acc.lane(1), r2 = acc.lane(6) + acc.lane(2), r3 = acc.lane(7) + acc.lane(3);
        return (r0 + r2) + (r1 + r3);
    }

    /** ggml's vec_dot_q4_0_q8_0: Σ over blocks of (d_w·d_x)·Σ (q_w − 8)·q_x. */
    @Override
    float dotQ8Scalar(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = Num.blocks(GgmlType.Q4_0, n);
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int s = 0;
            for (int j = 0; j < QK / 2; j++) {
                int v = Num.u8(src, p + 2 + j);
                s += ((v & 0xF) - 8) * a.q[QK * b + j] + ((v >>> 4) - 8) * a.q[QK * b + QK / 2 + j];
            }
            sum += (Num.f16(src, p) * a.d[b]) * s;
        }
        return sum;
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
