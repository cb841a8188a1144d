package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** bfloat16 rows: the top half of a float32. */
final class BF16Kernel extends RowKernel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Override public GgmlType type() { return GgmlType.BF16; }

    private static float at(MemorySegment src, long p) {
        return Num.bf16ToFloat(src.get(Num.LE_SHORT, p));
    }

    @Override
    public void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.BF16, n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = at(src, off + 2L * i);
    }

    @Override
    public float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.BF16, n);
        float s = 0;
        for (int i = 0; i < n; i++) s += at(src, off + 2L * i) * x[xOff + i];
        return s;
    }

    private static FloatVector load8(MemorySegment src, long p) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, src, p, LE).convertShape(VectorOperators.S2I, I, 0);
        return h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.BF16, n);
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 32 <= n; i += 32) {
            long p = off + 2L * i;
            a0 = load8(src, p).fma(FloatVector.fromArray(F, x, xOff + i), a0);
            a1 = load8(src, p + 16).fma(FloatVector.fromArray(F, x, xOff + i + 8), a1);
            a2 = load8(src, p + 32).fma(FloatVector.fromArray(F, x, xOff + i + 16), a2);
            a3 = load8(src, p + 48).fma(FloatVector.fromArray(F, x, xOff + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) {
            a0 = load8(src, off + 2L * i).fma(FloatVector.fromArray(F, x, xOff + i), a0);
        }
        FloatVector hs0 = a0.add(a1).add(a2.add(a3));
        hs0 = hs0.add(hs0.rearrange(Lanes.HALF_256));
        hs0 = hs0.add(hs0.rearrange(Lanes.QUARTER_256));
        float s = hs0.add(hs0.rearrange(Lanes.PAIR_256)).lane(0);
        for (; i < n; i++) s += at(src, off + 2L * i) * x[xOff + i];
        return s;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.BF16, n);
        int i = 0;
        for (; i + 8 <= n; i += 8) load8(src, off + 2L * i).intoArray(dst, dstOff + i);
        for (; i < n; i++) dst[dstOff + i] = at(src, off + 2L * i);
    }

    @Override
    float dotPrepared(MemorySegment src, long off, float[] xp, int n) {
        return dot(src, off, xp, 0, n);
    }

    /** Float rows decode almost for free, so even two vectors share one decoded tile. */
    @Override
    int tileMinBatch() {
        return 2;
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        Num.blocks(GgmlType.BF16, n);
        for (int i = 0; i < n; i++) dst.set(Num.LE_SHORT, off + 2L * i, Num.floatToBf16(src[srcOff + i]));
    }
}
