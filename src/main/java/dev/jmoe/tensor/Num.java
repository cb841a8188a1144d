package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Little-endian element access and the number conversions ggml uses (package-private helpers). */
final class Num {
    private Num() {}

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    /** IEEE half at byte offset {@code off}, widened exactly. */
    static float f16(MemorySegment s, long off) {
        return Float.float16ToFloat(s.get(LE_SHORT, off));
    }

    static void putF16(MemorySegment s, long off, float v) {
        s.set(LE_SHORT, off, Float.floatToFloat16(v));
    }

    static int u8(MemorySegment s, long off) {
        return s.get(BYTE, off) & 0xFF;
    }

    static float bf16ToFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    /** Round to nearest even like ggml's FP32→BF16, keeping NaNs quiet. */
    static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (short) ((u >>> 16) | 64);
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    /** C's roundf: halves away from zero (Math.round would send -2.5 to -2). */
    static int roundf(float v) {
        double a = Math.abs((double) v);
        double r = Math.floor(a);
        if (a - r >= 0.5) r += 1;
        return (int) (v < 0 ? -r : r);
    }

    /** Throws unless n is a positive multiple of the type's block size. */
    static int blocks(GgmlType type, int n) {
        int bs = type.blockSize();
        if (n < 0 || n % bs != 0) {
            throw new IllegalArgumentException(type + " rows hold whole blocks of " + bs + " values; " + n + " is not a multiple");
        }
        return n / bs;
    }

    /** Reference dot product: decode the row exactly, then accumulate in order. */
    static float dotViaDequant(TypeKernel k, MemorySegment src, long off, float[] x, int xOff, int n) {
        float[] w = new float[n];
        k.dequantizeRow(src, off, w, 0, n);
        float s = 0;
        for (int i = 0; i < n; i++) s += w[i] * x[xOff + i];
        return s;
    }
}
