package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Q8_0: blocks of 32 values = half scale d + 32 signed bytes; value = q·d. */
final class Q8_0Kernel extends RowKernel {
    static final int QK = 32;
    static final int BLOCK = 34;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    /** Each quant is decoded in the top byte of an int lane, i.e. scaled by 2^24; the block scale undoes it. */
    private static final float UNSHIFT = 0x1p-24f;
    private static final int TOP = 0xFF000000;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.Q8_0; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            for (int j = 0; j < QK; j++) dst[dstOff + b * QK + j] = src.get(Num.BYTE, p + 2 + j) * d;
        }
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            float s = 0;
            for (int j = 0; j < QK; j++) s += src.get(Num.BYTE, p + 2 + j) * x[xOff + b * QK + j];
            sum += s * d;
        }
        return sum;
    }

    private static FloatVector q8(MemorySegment src, long p) {
        return (FloatVector) ByteVector.fromMemorySegment(B8, src, p, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        int b = 0;
        // Two blocks per iteration on independent accumulators so the FMA chains overlap.
        for (; b + 2 <= nb; b += 2) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            FloatVector s0 = q8(src, p + 2).mul(FloatVector.fromArray(F, x, xi));
            s0 = q8(src, p + 10).fma(FloatVector.fromArray(F, x, xi + 8), s0);
            s0 = q8(src, p + 18).fma(FloatVector.fromArray(F, x, xi + 16), s0);
            s0 = q8(src, p + 26).fma(FloatVector.fromArray(F, x, xi + 24), s0);
            FloatVector s1 = q8(src, p + 36).mul(FloatVector.fromArray(F, x, xi + 32));
            s1 = q8(src, p + 44).fma(FloatVector.fromArray(F, x, xi + 40), s1);
            s1 = q8(src, p + 52).fma(FloatVector.fromArray(F, x, xi + 48), s1);
            s1 = q8(src, p + 60).fma(FloatVector.fromArray(F, x, xi + 56), s1);
            acc0 = s0.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, Num.f16(src, p + BLOCK)), acc1);
        }
        for (; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int xi = xOff + b * QK;
            FloatVector s0 = q8(src, p + 2).mul(FloatVector.fromArray(F, x, xi));
            s0 = q8(src, p + 10).fma(FloatVector.fromArray(F, x, xi + 8), s0);
            s0 = q8(src, p + 18).fma(FloatVector.fromArray(F, x, xi + 16), s0);
            s0 = q8(src, p + 26).fma(FloatVector.fromArray(F, x, xi + 24), s0);
            acc0 = s0.fma(FloatVector.broadcast(F, Num.f16(src, p)), acc0);
        }
        FloatVector hs0 = acc0.add(acc1);
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        return hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
    }

    /**
     * The hot loop reads the 32 quants of a block as eight int lanes of four bytes and isolates byte j
     * of every lane by shifting it to the top (exact: q·2^24 converts to float without rounding), so the
     * activations are stored per block as x[4i + j] at position 8j + i.
     */
    @Override
    void prepare(float[] x, int xOff, int n, float[] xp) {
        for (int b = 0; b < n / QK; b++) {
            int o = xOff + b * QK, t = b * QK;
            for (int i = 0; i < 8; i++) {
                for (int j = 0; j < 4; j++) xp[t + 8 * j + i] = x[o + 4 * i + j];
            }
        }
    }

    /**
     * Per block, lane i sums values 4i .. 4i + 3 (a product, then three FMAs) and adds that times d to its accumulator;
     * one accumulator for all blocks, in block order, and a fixed sum of its lanes at the end. {@link PackedQ8} runs the
     * same float operations in the same order with 16 rows in lanes, so a packed copy gives these products bit for bit.
     * (Two blocks per step: their partial sums are independent, only the accumulator's FMAs chain.)
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        int nb = n / QK;
        FloatVector acc = FloatVector.zero(F);
        int b = 0;
        for (; b + 1 < nb; b += 2) {
            long p = off + (long) b * BLOCK;
            int xi = b * QK;
            // Scalar reads first: C2 stops inlining once a method's IR grows large, and a non-inlined
            // segment read in this loop costs more than the vector work around it.
            float d0 = Float.float16ToFloat(src.get(Num.LE_SHORT, p)) * UNSHIFT;
            float d1 = Float.float16ToFloat(src.get(Num.LE_SHORT, p + BLOCK)) * UNSHIFT;
            IntVector w = IntVector.fromMemorySegment(I, src, p + 2, LE);
            IntVector v = IntVector.fromMemorySegment(I, src, p + BLOCK + 2, LE);
            FloatVector s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 24).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
            FloatVector t = ((FloatVector) v.lanewise(VectorOperators.LSHL, 24).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi + 32));
            s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 16).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            t = ((FloatVector) v.lanewise(VectorOperators.LSHL, 16).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 40), t);
            s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 8).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            t = ((FloatVector) v.lanewise(VectorOperators.LSHL, 8).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 48), t);
            s = ((FloatVector) w.and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
            t = ((FloatVector) v.and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 56), t);
            acc = s.fma(FloatVector.broadcast(F, d0), acc);
            acc = t.fma(FloatVector.broadcast(F, d1), acc);
        }
        for (; b < nb; b++) { // an odd last block
            long p = off + (long) b * BLOCK;
            int xi = b * QK;
            float d0 = Float.float16ToFloat(src.get(Num.LE_SHORT, p)) * UNSHIFT;
            IntVector w = IntVector.fromMemorySegment(I, src, p + 2, LE);
            FloatVector s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 24).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xp, xi));
            s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 16).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 8), s);
            s = ((FloatVector) w.lanewise(VectorOperators.LSHL, 8).and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 16), s);
            s = ((FloatVector) w.and(TOP).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xp, xi + 24), s);
            acc = s.fma(FloatVector.broadcast(F, d0), acc);
        }
        FloatVector h = acc.add(acc.rearrange(Lanes.HALF_256));
        h = h.add(h.rearrange(Lanes.QUARTER_256));
        return h.add(h.rearrange(Lanes.PAIR_256)).lane(0);
    }

    @Override
    QuantizedActivation.Scheme activationScheme() {
        return QuantizedActivation.Scheme.Q8_0;
    }

    /**
     * The hot loop reads the 32 quants of a block as sixteen 16-bit lanes and splits them into even and
     * odd bytes by shifts, so each block's activations are stored as its 16 even values, then its 16 odd ones.
     */
    @Override
    void prepareQ8(QuantizedActivation a) {
        byte[] q = a.q;
        short[] s = a.shorts(a.n);
        for (int b = 0; b < a.n / QK; b++) {
            for (int k = 0; k < 16; k++) {
                s[QK * b + k] = q[QK * b + 2 * k];
                s[QK * b + 16 + k] = q[QK * b + 2 * k + 1];
            }
        }
    }

    /**
     * 16-bit products (|q·x| ≤ 128·127, two of them still fit), pairs of 16-bit lanes summed into 32-bit
     * lanes by shifts, so int lane i holds values 4i..4i+3 as in ggml's AVX2 vec_dot_q8_0_q8_0; then one
     * float FMA per block with d_w·d_x and ggml's final sum: the same float operations as llama.cpp.
     */
    @Override
    float dotQ8(MemorySegment src, long off, QuantizedActivation a, int n) {
        short[] xs = a.s;
        float[] dx = a.d;
        int nb = n / QK;
        // A segment of exactly the row: C2 compiles the loop over it tighter than over offsets into the whole tensor.
        MemorySegment row = src.asSlice(off, (long) nb * BLOCK);
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = (long) b * BLOCK;
            float d = Float.float16ToFloat(row.get(Num.LE_SHORT, p)) * dx[b];
            ShortVector v = ShortVector.fromMemorySegment(S, row, p + 2, LE);
            ShortVector even = v.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8);
            ShortVector odd = v.lanewise(VectorOperators.ASHR, 8);
            IntVector pairs = even.mul(ShortVector.fromArray(S, xs, QK * b)).add(odd.mul(ShortVector.fromArray(S, xs, QK * b + 16))).reinterpretAsInts();
            IntVector sum = pairs.lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, d), acc);
        }
        // hsum8(acc), written out: a call this late in the method falls outside C2's inlining budget and would box acc.
        float r0 = acc.lane(4) + acc.lane(0), r1 = acc.lane(5) + acc.lane(1), r2 = acc.lane(6) + acc.lane(2), r3 = acc.lane(7) + acc.lane(3);
        return (r0 + r2) + (r1 + r3);
    }

    /**
     * {@link #dotQ8} for four activations: each block's quants are loaded and split into even and odd bytes once for the
     * four (a prompt's rows against its tokens), and each activation's operations are dotQ8's, in its order.
     */
    @Override
    void dotQ8x4(MemorySegment src, long off, QuantizedActivation[] acts, int b0, int n, float[] out, int outOff, int outStride) {
        short[] x0 = acts[b0].s, x1 = acts[b0 + 1].s, x2 = acts[b0 + 2].s, x3 = acts[b0 + 3].s;
        float[] d0 = acts[b0].d, d1 = acts[b0 + 1].d, d2 = acts[b0 + 2].d, d3 = acts[b0 + 3].d;
        int nb = n / QK;
        MemorySegment row = src.asSlice(off, (long) nb * BLOCK);
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            long p = (long) b * BLOCK;
            float dw = Float.float16ToFloat(row.get(Num.LE_SHORT, p));
            ShortVector v = ShortVector.fromMemorySegment(S, row, p + 2, LE);
            ShortVector even = v.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8);
            ShortVector odd = v.lanewise(VectorOperators.ASHR, 8);
            int e = QK * b, o = e + 16;
            // (written out: a helper taking the vectors would box them when C2 does not inline it)
            IntVector pairs = even.mul(ShortVector.fromArray(S, x0, e)).add(odd.mul(ShortVector.fromArray(S, x0, o))).reinterpretAsInts();
            IntVector sum = pairs.lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            a0 = ((FloatVector) sum.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.broadcast(F, dw * d0[b]), a0);
            pairs = even.mul(ShortVector.fromArray(S, x1, e)).add(odd.mul(ShortVector.fromArray(S, x1, o))).reinterpretAsInts();
            sum = pairs.lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            a1 = ((FloatVector) sum.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.broadcast(F, dw * d1[b]), a1);
            pairs = even.mul(ShortVector.fromArray(S, x2, e)).add(odd.mul(ShortVector.fromArray(S, x2, o))).reinterpretAsInts();
            sum = pairs.lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            a2 = ((FloatVector) sum.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.broadcast(F, dw * d2[b]), a2);
            pairs = even.mul(ShortVector.fromArray(S, x3, e)).add(odd.mul(ShortVector.fromArray(S, x3, o))).reinterpretAsInts();
            sum = pairs.lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            a3 = ((FloatVector) sum.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.broadcast(F, dw * d3[b]), a3);
        }
        // hsum8 of each, written out as in dotQ8
        out[outOff] = (a0.lane(4) + a0.lane(0) + (a0.lane(6) + a0.lane(2))) + (a0.lane(5) + a0.lane(1) + (a0.lane(7) + a0.lane(3)));
        out[outOff + outStride] = (a1.lane(4) + a1.lane(0) + (a1.lane(6) + a1.lane(2))) + (a1.lane(5) + a1.lane(1) + (a1.lane(7) + a1.lane(3)));
        out[outOff + 2 * outStride] = (a2.lane(4) + a2.lane(0) + (a2.lane(6) + a2.lane(2))) + (a2.lane(5) + a2.lane(1) + (a2.lane(7) + a2.lane(3)));
        out[outOff + 3 * outStride] = (a3.lane(4) + a3.lane(0) + (a3.lane(6) + a3.lane(2))) + (a3.lane(5) + a3.lane(1) + (a3.lane(7) + a3.lane(3)));
    }

    /** ggml's vec_dot_q8_0_q8_0: Σ over blocks of (d_w·d_x)·Σ q_w·q_x. */
    @Override
    float dotQ8Scalar(MemorySegment src, long off, QuantizedActivation a, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            int s = 0;
            for (int j = 0; j < QK; j++) s += src.get(Num.BYTE, p + 2 + j) * a.q[QK * b + j];
            sum += (Num.f16(src, p) * a.d[b]) * s;
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            long p = off + (long) b * BLOCK;
            float d = Num.f16(src, p);
            int o = dstOff + b * QK;
            q8(src, p + 2).mul(d).intoArray(dst, o);
            q8(src, p + 10).mul(d).intoArray(dst, o + 8);
            q8(src, p + 18).mul(d).intoArray(dst, o + 16);
            q8(src, p + 26).mul(d).intoArray(dst, o + 24);
        }
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        int nb = Num.blocks(GgmlType.Q8_0, n);
        for (int b = 0; b < nb; b++) {
            int o = srcOff + b * QK;
            long p = off + (long) b * BLOCK;
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[o + j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            Num.putF16(dst, p, d);
            for (int j = 0; j < QK; j++) dst.set(Num.BYTE, p + 2 + j, (byte) Num.roundf(src[o + j] * id));
        }
    }
}
