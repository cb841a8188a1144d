package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.Map;

/**
 * Matrix products of a quantized or float weight matrix with float activations, split over output
 * rows across the threads of a {@link Parallel} pool. Every type has a scalar reference in
 * {@link TypeKernel} beside its Vector API path.
 */
public final class Kernels {
    private Kernels() {}

    private static final Map<GgmlType, TypeKernel> KERNELS = new EnumMap<>(GgmlType.class);

    static {
        for (TypeKernel k : new TypeKernel[] {
                new F32Kernel(), new F16Kernel(), new BF16Kernel(), new Q8_0Kernel(), new Q4_0Kernel(),
                new Q4_1Kernel(), new Q5Kernel(GgmlType.Q5_0), new Q5Kernel(GgmlType.Q5_1),
                new QKKernel(GgmlType.Q4_K), new QKKernel(GgmlType.Q5_K), new Q6_KKernel()}) {
            KERNELS.put(k.type(), k);
        }
    }

    /** Weight bytes below which a product runs on the calling thread: waking workers would cost more. */
    private static final long PARALLEL_MIN_BYTES = 48 * 1024;

    /** The kernel for {@code type}, or an exception naming the type if jmoe cannot compute with it. */
    public static TypeKernel forType(GgmlType type) {
        if (type == null) throw new IllegalArgumentException("tensor type is null");
        TypeKernel k = KERNELS.get(type);
        if (k == null) {
            throw new UnsupportedOperationException("jmoe has no kernel for tensor type " + type + " (GGUF id " + type.id()
                    + "); supported: " + KERNELS.keySet());
        }
        return k;
    }

    /** Whether {@link #forType} has a kernel for {@code type}. */
    public static boolean isSupported(GgmlType type) {
        return type != null && KERNELS.containsKey(type);
    }

    /** out[outOff + r] = Σ_c w[r][c]·x[xOff + c] for every row r (vector path). */
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOff, float[] out, int outOff) {
        TypeKernel k = forType(w.type());
        checkRange("x", x, xOff, w.cols());
        checkRange("out", out, outOff, w.rows());
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        int cols = w.cols();
        Parallel.RangeTask task = (start, end) -> {
            for (int r = start; r < end; r++) out[outOff + r] = k.dot(data, r * rowBytes, x, xOff, cols);
        };
        int rows = w.rows();
        if (pool == null || pool.threads() == 1 || w.byteSize() < PARALLEL_MIN_BYTES) {
            task.run(0, rows);
        } else {
            pool.forRange(rows, 4, task);
        }
    }

    /**
     * Batched product: for b in [0, batch): out[b·outStride + r] = Σ_c w[r][c]·x[b·xStride + c].
     * Each weight row is read once per batch (the prompt / grouped-expert path).
     */
    public static void matMul(Parallel pool, Matrix w, float[] x, int xStride, int batch, float[] out, int outStride) {
        TypeKernel k = forType(w.type());
        if (batch < 0) throw new IllegalArgumentException("batch must be >= 0, got " + batch);
        if (batch == 0) return;
        int rows = w.rows(), cols = w.cols();
        if (xStride < cols && batch > 1) throw new IllegalArgumentException("xStride " + xStride + " < cols " + cols);
        if (outStride < rows && batch > 1) throw new IllegalArgumentException("outStride " + outStride + " < rows " + rows);
        checkRange("x", x, 0, (long) (batch - 1) * xStride + cols);
        checkRange("out", out, 0, (long) (batch - 1) * outStride + rows);
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        Parallel.RangeTask task = (start, end) -> {
            float[] row = new float[cols];
            for (int r = start; r < end; r++) {
                k.dequantize(data, r * rowBytes, row, 0, cols);
                for (int b = 0; b < batch; b++) out[b * outStride + r] = F32Kernel.dotArrays(row, 0, x, b * xStride, cols);
            }
        };
        if (pool == null || pool.threads() == 1) {
            task.run(0, rows);
        } else {
            pool.forRange(rows, 4, task);
        }
    }

    private static void checkRange(String what, float[] a, long off, long len) {
        if (a == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0 || off + len > a.length) {
            throw new IllegalArgumentException(what + " needs " + len + " floats from offset " + off + " but has length " + a.length);
        }
    }
}
