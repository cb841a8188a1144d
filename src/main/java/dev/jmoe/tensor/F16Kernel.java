package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
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

    private static final VectorSpecies<Short> H8 = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I8 = IntVector.SPECIES_256;
    /** 2^112: moves a half's exponent (bias 15), placed in a float's exponent field (bias 127), to its value. */
    private static final float HALF_TO_FLOAT_SCALE = 0x1p112f;

    /**
     * Widens 32 halves per step in registers, straight from the segment: no copy to a short[] and no widened chunk in
     * memory (those two extra passes through L1 cost about half of the decode time). The JDK's Vector API has no
     * half-to-float conversion, so each lane is rebuilt with integer operations: the magnitude's 15 bits shifted into a
     * float's exponent and fraction fields and scaled by 2^112 (exact, subnormal halves included), infinities and NaNs
     * (exponent 31) given the float's all-ones exponent instead, and the sign put back. That is exactly what
     * Float.float16ToFloat gives.
     *
     * <p>The summation order is the kernel's contract (matVec, matMul's tiles and the batched paths must agree to
     * the bit): four 8-lane accumulators, each fused-multiply-adding every 32nd group of 8 values; then
     * (a0 + a1) + (a2 + a3) and the halving tree of {@link Lanes}; a remainder of fewer than 256 values goes through
     * {@link #tail}. The four widenings are written out (not a helper taking and returning vectors), so C2 never
     * leaves one uninlined and boxes its vectors.
     */
    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        final int whole = n - n % CHUNK; // whole chunks as before: the remainder keeps its own order below
        for (int c = 0; c < whole; c += 32) {
            long o = off + 2L * c;
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(H8, src, o, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 16, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector h3 = (IntVector) ShortVector.fromMemorySegment(H8, src, o + 48, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I8, 0);
            IntVector m0 = h0.and(0x7fff), m1 = h1.and(0x7fff), m2 = h2.and(0x7fff), m3 = h3.and(0x7fff);
            IntVector b0 = m0.lanewise(VectorOperators.LSHL, 13), b1 = m1.lanewise(VectorOperators.LSHL, 13);
            IntVector b2 = m2.lanewise(VectorOperators.LSHL, 13), b3 = m3.lanewise(VectorOperators.LSHL, 13);
            IntVector f0 = b0.reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE).reinterpretAsInts()
                    .blend(b0.or(0x7f800000), m0.compare(VectorOperators.GE, 0x7c00)).or(h0.and(0x80000000));
            IntVector f1 = b1.reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE).reinterpretAsInts()
                    .blend(b1.or(0x7f800000), m1.compare(VectorOperators.GE, 0x7c00)).or(h1.and(0x80000000));
            IntVector f2 = b2.reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE).reinterpretAsInts()
                    .blend(b2.or(0x7f800000), m2.compare(VectorOperators.GE, 0x7c00)).or(h2.and(0x80000000));
            IntVector f3 = b3.reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE).reinterpretAsInts()
                    .blend(b3.or(0x7f800000), m3.compare(VectorOperators.GE, 0x7c00)).or(h3.and(0x80000000));
            a0 = f0.reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, c), a0);
            a1 = f1.reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, c + 8), a1);
            a2 = f2.reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, c + 16), a2);
            a3 = f3.reinterpretAsFloats().fma(FloatVector.fromArray(F, xp, c + 24), a3);
        }
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        return whole == n ? s : s + tail(src, off, xp, whole, n, HALVES.get(), FLOATS.get());
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
        for (int i = 0; i < len; i++) dst[dstOff + i] = Float.float16ToFloat(h[i]);
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
