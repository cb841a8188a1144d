package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The matrices a kernel benchmark multiplies: {@code hot} is one copy, reused (the kernel's compute ceiling, weights in
 * cache); {@code stream} rotates through enough copies ({@link #STREAM_BYTES}) that every call reads its weights from
 * memory, as a model's decode and prompt steps do. Copies of the file's rows are native (4 KB pages, like a model's
 * mapping); packed copies live on the heap.
 */
final class WorkingSet {
    static final long STREAM_BYTES = 256L << 20;

    private final Matrix[] copies;
    private int next;

    /** {@code src}: rows × cols floats, quantized to {@code type} once and copied; {@code packed}: multiply packed copies. */
    WorkingSet(Arena arena, GgmlType type, float[] src, int rows, int cols, String ws, boolean packed) {
        long rowBytes = type.bytesFor(cols), bytes = rows * rowBytes;
        MemorySegment first = arena.allocate(bytes, 64);
        for (int r = 0; r < rows; r++) Kernels.forType(type).quantizeRow(src, r * cols, cols, first, r * rowBytes);
        int n = ws.equals("hot") ? 1 : (int) Math.max(2, STREAM_BYTES / bytes);
        copies = new Matrix[n];
        for (int i = 0; i < n; i++) {
            MemorySegment seg = i == 0 ? first : arena.allocate(bytes, 64);
            if (i > 0) seg.copyFrom(first);
            copies[i] = new Matrix(type, seg, rows, cols);
            if (packed) copies[i] = Packing.packed(copies[i]);
        }
    }

    /** The next copy in turn. */
    Matrix next() {
        Matrix m = copies[next];
        next = next + 1 == copies.length ? 0 : next + 1;
        return m;
    }
}
