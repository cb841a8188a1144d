package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** IEEE half-precision rows. */
final class F16Kernel extends RowKernel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    @Override public GgmlType type() { return GgmlType.F16; }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F16, n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = Num.f16(src, off + 2L * i);
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.F16, n);
        float s = 0;
        for (int i = 0; i < n; i++) s += Num.f16(src, off + 2L * i) * x[xOff + i];
        return s;
    }

    private static final int CHUNK = 256;
    private static final ThreadLocal<short[]> HALVES = ThreadLocal.withInitial(() -> new short[CHUNK]);
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[CHUNK]);

    /**
     * 512-bit vectors where the processor has them: twice the halves per instruction measured 10-30% faster
     * than 256-bit ones (AMD Zen 4), with the same results.
     */
    private static final boolean WIDE = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512;
    private static final VectorSpecies<Short> H8 = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I8 = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> H16 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> W = FloatVector.SPECIES_512;
    private static final VectorShuffle<Float> SWAP_8 = VectorShuffle.fromOp(W, i -> i ^ 8);
    private static final VectorShuffle<Float> SWAP_4 = VectorShuffle.fromOp(W, i -> i ^ 4);
    private static final VectorShuffle<Float> SWAP_2 = VectorShuffle.fromOp(W, i -> i ^ 2);
    private static final VectorShuffle<Float> SWAP_1 = VectorShuffle.fromOp(W, i -> i ^ 1);
    /** 2^112: moves a half's exponent (bias 15), placed in a float's exponent field (bias 127), to its value. */
    static final float HALF_TO_FLOAT_SCALE = 0x1p112f;
    /** A sign-extended half shifted left by 13, masked to the sign, exponent and fraction fields of a float. */
    static final int FLOAT_FIELDS = 0x8fffe000;
    /** A sign-extended half shifted left by 17 is at least this (unsigned) exactly when its exponent is 31. */
    private static final int EXPONENT_31 = 0xf8000000;

    /**
     * Widens 32 halves per step in registers, straight from the segment: no copy to a short[] and no widened chunk in
     * memory (with those two extra passes through L1 one thread streamed 10 GB/s in MatVecBench, without them 17). The JDK's Vector API has no
     * half-to-float conversion, so each lane is rebuilt with three integer/float operations: the sign-extended half
     * shifted left by 13 and masked gives a float with the half's sign, exponent and fraction fields, and scaling it by
     * 2^112 rebiases the exponent (exact, subnormal halves included) — exactly Float.float16ToFloat for every finite
     * half. Infinities and NaNs (exponent 31) would come out finite; rather than fix every lane, the loop keeps an
     * unsigned maximum of the exponents and a row holding any of them is recomputed by {@link #dotWithSpecials}.
     *
     * <p>The summation order is the kernel's contract (matVec, matMul's tiles and the batched paths must agree to
     * the bit): four 8-lane accumulators, each fused-multiply-adding every 32nd group of 8 values; then
     * (a0 + a1) + (a2 + a3) and the halving tree of {@link Lanes}; a remainder of fewer than 256 values goes through
     * {@link #tail}. With 512-bit vectors the accumulators are paired: lanes 0-7 of {@code lo} are a0 and lanes 8-15
     * a1, {@code hi} holds a2 and a3, and the first step of the sum adds each one's halves, so lane for lane every
     * addition is the same as with four 256-bit accumulators. The widenings are written out (not a helper taking and
     * returning vectors), so C2 never leaves one uninlined and boxes its vectors.
     *
     * <p>The 512-bit loop calls lanewise(op, vector) and viewAsFloatingLanes, never the convenience methods (fma, add,
     * mul, and, shifts by an int, reinterpretAsFloats): WideVectorRuleTest's rule, which says why.
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        if (!WIDE) return dotNarrow(src, off, xp, n);
        FloatVector lo = FloatVector.zero(W), hi = lo; // lanes 0-7 of lo are a0, 8-15 a1; hi holds a2 and a3
        IntVector top = IntVector.zero(I16);
        IntVector by13 = IntVector.broadcast(I16, 13), by17 = IntVector.broadcast(I16, 17), fields = IntVector.broadcast(I16, FLOAT_FIELDS);
        FloatVector scale = FloatVector.broadcast(W, HALF_TO_FLOAT_SCALE);
        final int whole = n - n % CHUNK; // whole chunks as before: the remainder keeps its own order below
        for (int c = 0; c < whole; c += 32) {
            long o = off + 2L * c;
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(H16, src, o, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I16, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(H16, src, o + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I16, 0);
            top = top.lanewise(VectorOperators.UMAX, h0.lanewise(VectorOperators.LSHL, by17))
                    .lanewise(VectorOperators.UMAX, h1.lanewise(VectorOperators.LSHL, by17));
            FloatVector w0 = h0.lanewise(VectorOperators.LSHL, by13).lanewise(VectorOperators.AND, fields).viewAsFloatingLanes()
                    .lanewise(VectorOperators.MUL, scale);
            FloatVector w1 = h1.lanewise(VectorOperators.LSHL, by13).lanewise(VectorOperators.AND, fields).viewAsFloatingLanes()
                    .lanewise(VectorOperators.MUL, scale);
            lo = w0.lanewise(VectorOperators.FMA, FloatVector.fromArray(W, xp, c), lo);
            hi = w1.lanewise(VectorOperators.FMA, FloatVector.fromArray(W, xp, c + 16), hi);
        }
        if (top.compare(VectorOperators.UGE, EXPONENT_31).anyTrue()) return dotWithSpecials(src, off, xp, n);
        // lanes 0-7: (a0 + a1) + (a2 + a3), then the halving tree of Lanes on them
        FloatVector hs0 = lo.lanewise(VectorOperators.ADD, lo.rearrange(SWAP_8))
                .lanewise(VectorOperators.ADD, hi.lanewise(VectorOperators.ADD, hi.rearrange(SWAP_8)));
        hs0 = hs0.lanewise(VectorOperators.ADD, hs0.rearrange(SWAP_4));
        hs0 = hs0.lanewise(VectorOperators.ADD, hs0.rearrange(SWAP_2));
        float s = hs0.lanewise(VectorOperators.ADD, hs0.rearrange(SWAP_1)).lane(0);
        return whole == n ? s : s + tail(src, off, xp, whole, n, HALVES.get(), FLOATS.get());
    }

    /**
     * {@link #dotPrepared} in 256-bit vectors, for processors without 512-bit ones (where the wide species would
     * not be compiled to vector instructions at all): the same lanes and order, so the same results to the bit.
     */
    static float dotNarrow(MemorySegment src, long off, float[] xp, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        IntVector top = IntVector.zero(I8);
        final int whole = n - n % CHUNK; // whole chunks as before: the remainder keeps its own order below
        for (int c = 0; c < whole; c += 32) {
            long o = off + 2L * c;
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(H8, src, o, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 16, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h3 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 48, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            top = top.lanewise(VectorOperators.UMAX, h0.lanewise(VectorOperators.LSHL, 17))
                    .lanewise(VectorOperators.UMAX, h1.lanewise(VectorOperators.LSHL, 17))
                    .lanewise(VectorOperators.UMAX, h2.lanewise(VectorOperators.LSHL, 17))
                    .lanewise(VectorOperators.UMAX, h3.lanewise(VectorOperators.LSHL, 17));
            FloatVector w0 = h0.lanewise(VectorOperators.LSHL, 13).and(FLOAT_FIELDS).reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE);
            FloatVector w1 = h1.lanewise(VectorOperators.LSHL, 13).and(FLOAT_FIELDS).reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE);
            FloatVector w2 = h2.lanewise(VectorOperators.LSHL, 13).and(FLOAT_FIELDS).reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE);
            FloatVector w3 = h3.lanewise(VectorOperators.LSHL, 13).and(FLOAT_FIELDS).reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE);
            a0 = w0.fma(FloatVector.fromArray(F, xp, c), a0);
            a1 = w1.fma(FloatVector.fromArray(F, xp, c + 8), a1);
            a2 = w2.fma(FloatVector.fromArray(F, xp, c + 16), a2);
            a3 = w3.fma(FloatVector.fromArray(F, xp, c + 24), a3);
        }
        if (top.compare(VectorOperators.UGE, EXPONENT_31).anyTrue()) return dotWithSpecials(src, off, xp, n);
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        return whole == n ? s : s + tail(src, off, xp, whole, n, HALVES.get(), FLOATS.get());
    }

    /**
     * {@link #dotPrepared} for a row with infinities or NaNs: the same lanes and order, the halves widened by
     * Float.float16ToFloat through a chunk in memory (slower, but such rows are errors to be reported, not decoded).
     */
    private static float dotWithSpecials(MemorySegment src, long off, float[] xp, int n) {
        short[] h = HALVES.get();
        float[] f = FLOATS.get();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + CHUNK <= n; c += CHUNK) {
            MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, CHUNK);
            widen(h, f, CHUNK);
            for (int i = 0; i < CHUNK; i += 32) {
                a0 = FloatVector.fromArray(F, f, i).fma(FloatVector.fromArray(F, xp, c + i), a0);
                a1 = FloatVector.fromArray(F, f, i + 8).fma(FloatVector.fromArray(F, xp, c + i + 8), a1);
                a2 = FloatVector.fromArray(F, f, i + 16).fma(FloatVector.fromArray(F, xp, c + i + 16), a2);
                a3 = FloatVector.fromArray(F, f, i + 24).fma(FloatVector.fromArray(F, xp, c + i + 24), a3);
            }
        }
        // a small method on a rare path: Lanes.sum (the same halving tree) is inlined here, or costs one call per such row
        float s = Lanes.sum(a0.add(a1).add(a2.add(a3)));
        return c == n ? s : s + tail(src, off, xp, c, n, h, f);
    }

    private static float tail(MemorySegment src, long off, float[] xp, int c, int n, short[] h, float[] f) {
        int len = n - c;
        MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, len);
        widen(h, f, len);
        FloatVector a = FloatVector.zero(F);
        int i = 0;
        for (; i + 8 <= len; i += 8) a = FloatVector.fromArray(F, f, i).fma(FloatVector.fromArray(F, xp, c + i), a);
        FloatVector hs0 = a;
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        for (; i < len; i++) s += f[i] * xp[c + i];
        return s;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F16, n);
        short[] h = HALVES.get();
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            MemorySegment.copy(src, Num.LE_SHORT, off + 2L * c, h, 0, len);
            widenInto(h, dst, dstOff + c, len); // straight into dst: no third pass through a float chunk
        }
    }

    private static void widenInto(short[] h, float[] dst, int dstOff, int len) {
        widenInto(h, 0, dst, dstOff, len);
    }

    /** dst[dstOff + i] = h[hOff + i] as a float, for i &lt; len (a loop C2 compiles to vector conversions). */
    static void widenInto(short[] h, int hOff, float[] dst, int dstOff, int len) {
        for (int i = 0; i < len; i++) dst[dstOff + i] = Float.float16ToFloat(h[hOff + i]);
    }

    private static void widen(short[] h, float[] f, int len) {
        for (int i = 0; i < len; i++) f[i] = Float.float16ToFloat(h[i]);
    }

    /** Float rows decode almost for free, so even two vectors share one decoded tile. */
    @Override
    int tileMinBatch() {
        return 2;
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        Num.blocks(GgmlType.F16, n);
        for (int i = 0; i < n; i++) Num.putF16(dst, off + 2L * i, src[srcOff + i]);
    }
}
