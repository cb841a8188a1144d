package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;

/** Per-format row operations. The scalar methods are the reference the vector ones are tested against. */
public interface TypeKernel {
    GgmlType type();

    /** Scalar reference: decode n values starting at byte offset {@code off} of {@code src} into dst[dstOff..]. */
    void dequantizeRow(MemorySegment src, long off, float[] dst, int dstOff, int n);

    /** Scalar reference dot product of n encoded values with x[xOff..]. */
    float dotScalar(MemorySegment src, long off, float[] x, int xOff, int n);

    /**
     * Vector API dot product of n encoded values with x[xOff..]. For many rows against one vector use
     * {@link Kernels#matVec}, which rearranges x once per product instead of once per call.
     */
    float dot(MemorySegment src, long off, float[] x, int xOff, int n);

    /** Fast decode (vectorised where the type has it) giving exactly the values of {@link #dequantizeRow}. */
    default void dequantize(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        dequantizeRow(src, off, dst, dstOff, n);
    }

    /** Whether {@link #quantizeRow} is implemented for this type. */
    boolean canQuantize();

    /** Encode n floats src[srcOff..] into dst at byte offset {@code off}. */
    void quantizeRow(float[] src, int srcOff, int n, MemorySegment dst, long off);
}
