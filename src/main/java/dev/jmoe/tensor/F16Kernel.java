package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** IEEE half-precision rows. */
final class F16Kernel implements TypeKernel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** 2^112 rescales a half's exponent field (bias 15) shifted into float position (bias 127). */
    private static final float HALF_TO_FLOAT_SCALE = 0x1p112f;

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

    /**
     * Eight halves widened exactly in registers (the Vector API has no half→float conversion):
     * moving exponent+mantissa up 13 bits and scaling by 2^112 handles zeros, subnormals and normals;
     * infinities and NaNs get their all-ones exponent patched in.
     */
    static FloatVector load8(MemorySegment src, long p) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, src, p, LE).convertShape(VectorOperators.S2I, I, 0);
        IntVector em = h.and(0x7fff);
        IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
        FloatVector mag = shifted.reinterpretAsFloats().mul(HALF_TO_FLOAT_SCALE);
        IntVector bits = mag.reinterpretAsInts();
        VectorMask<Integer> special = em.compare(VectorOperators.GE, 0x7c00);
        if (special.anyTrue()) bits = bits.blend(shifted.or(0x7f800000), special);
        return bits.or(h.and(0x80000000)).reinterpretAsFloats();
    }

    @Override
    public float dot(MemorySegment src, long off, float[] x, int xOff, int n) {
        Num.blocks(GgmlType.F16, n);
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
        float s = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += Num.f16(src, off + 2L * i) * x[xOff + i];
        return s;
    }

    @Override
    public void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        Num.blocks(GgmlType.F16, n);
        int i = 0;
        for (; i + 8 <= n; i += 8) load8(src, off + 2L * i).intoArray(dst, dstOff + i);
        for (; i < n; i++) dst[dstOff + i] = Num.f16(src, off + 2L * i);
    }

    @Override public boolean canQuantize() { return true; }

    @Override
    public void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off) {
        Num.blocks(GgmlType.F16, n);
        for (int i = 0; i < n; i++) Num.putF16(dst, off + 2L * i, src[srcOff + i]);
    }
}
