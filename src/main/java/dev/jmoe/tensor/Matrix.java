package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A 2-D weight matrix of {@code rows × cols} values in format {@code type}, stored row after row in
 * {@code data} (a GGUF tensor with ggml shape [cols, rows]: the first ggml dimension is the row length).
 * The segment may be a slice of a memory-mapped file, an off-heap buffer or a heap segment.
 * {@code packed}, when not null, is a copy of the same rows regrouped for the integer kernels
 * ({@link PackedMatrix}); the products then read it instead of {@code data}.
 */
public record Matrix(GgmlType type, MemorySegment data, int rows, int cols, PackedMatrix packed) {
    public Matrix {
        if (type == null || data == null) throw new IllegalArgumentException("type and data are required");
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("bad shape " + rows + "x" + cols);
        long need = (long) rows * type.bytesFor(cols);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("matrix " + rows + "x" + cols + " " + type + " needs " + need
                    + " bytes but its data has " + data.byteSize());
        }
        if (packed != null && (packed.type() != type || packed.rows() != rows || packed.cols() != cols)) {
            throw new IllegalArgumentException("packed copy of " + packed.rows() + "x" + packed.cols() + " does not match the " + type + " matrix "
                    + rows + "x" + cols);
        }
    }

    public Matrix(GgmlType type, MemorySegment data, int rows, int cols) {
        this(type, data, rows, cols, null);
    }

    /** This matrix with a packed copy of its rows (or without one, for null). */
    public Matrix withPacked(PackedMatrix p) {
        return new Matrix(type, data, rows, cols, p);
    }

    /** Bytes of one row. */
    public long rowBytes() { return type.bytesFor(cols); }

    /** Total bytes of the matrix. */
    public long byteSize() { return rows * rowBytes(); }

    /** Rows [first, first + count) as a matrix of their own, sharing memory. */
    public Matrix rows(int first, int count) {
        return new Matrix(type, data.asSlice(first * rowBytes(), count * rowBytes()), count, cols,
                packed == null ? null : packed.rows(first, count));
    }
}
