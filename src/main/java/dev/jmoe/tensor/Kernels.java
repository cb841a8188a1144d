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

    private static final Map<GgmlType, RowKernel> KERNELS = new EnumMap<>(GgmlType.class);

    static {
        for (RowKernel k : new RowKernel[] {
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
        return rowKernel(type);
    }

    static RowKernel rowKernel(GgmlType type) {
        if (type == null) throw new IllegalArgumentException("tensor type is null");
        RowKernel k = KERNELS.get(type);
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

    private static volatile boolean scalarReference;

    /**
     * Routes every product through the scalar reference ({@link TypeKernel#dotScalar}, row by row) instead
     * of the Vector API paths — for checking the fast kernels end to end on whole models. Process-wide.
     */
    public static void setScalarReference(boolean on) {
        scalarReference = on;
    }

    public static boolean scalarReference() {
        return scalarReference;
    }

    private static void scalarProduct(Parallel pool, Matrix w, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
        TypeKernel k = forType(w.type());
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        int cols = w.cols();
        Parallel.RangeTask task = (start, end) -> {
            for (int r = start; r < end; r++) {
                for (int b = 0; b < batch; b++) out[outOff + b * outStride + r] = k.dotScalar(data, r * rowBytes, x, xOff + b * xStride, cols);
            }
        };
        if (pool == null) task.run(0, w.rows());
        else pool.forRange(w.rows(), 4, task);
    }

    /** out[outOff + r] = Σ_c w[r][c]·x[xOff + c] for every row r (vector path). */
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOff, float[] out, int outOff) {
        if (scalarReference) {
            checkRange("x", x, xOff, w.cols());
            checkRange("out", out, outOff, w.rows());
            scalarProduct(pool, w, x, xOff, 0, 1, out, outOff, 0);
            return;
        }
        RowKernel k = rowKernel(w.type());
        checkRange("x", x, xOff, w.cols());
        checkRange("out", out, outOff, w.rows());
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        int cols = w.cols();
        // Prepared once here, then only read by every thread until this call returns.
        float[] xp = prepared(k.preparedLength(cols));
        k.prepare(x, xOff, cols, xp);
        Parallel.RangeTask task = (start, end) -> {
            for (int r = start; r < end; r++) out[outOff + r] = k.dotPrepared(data, r * rowBytes, xp, cols);
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
        if (batch > 1 && xStride < cols) throw new IllegalArgumentException("xStride " + xStride + " is less than the " + cols + " columns");
        if (batch > 1 && outStride < rows) throw new IllegalArgumentException("outStride " + outStride + " is less than the " + rows + " rows");
        checkRange("x", x, 0, (long) (batch - 1) * xStride + cols);
        checkRange("out", out, 0, (long) (batch - 1) * outStride + rows);
        if (batch == 1) {
            matVec(pool, w, x, 0, out, 0);
            return;
        }
        if (scalarReference) {
            scalarProduct(pool, w, x, 0, xStride, batch, out, 0, outStride);
            return;
        }
        RowKernel rk = (RowKernel) k;
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        Parallel.RangeTask task;
        int grain;
        if (batch < (TILE_MIN_BATCH > 0 ? TILE_MIN_BATCH : rk.tileMinBatch())) {
            // Few vectors: each row is dotted with every vector while it is still in L1, so the
            // weights still stream from memory once, and no decoded copy is written.
            float[][] xps = new float[batch][];
            for (int b = 0; b < batch; b++) {
                xps[b] = new float[rk.preparedLength(cols)];
                rk.prepare(x, b * xStride, cols, xps[b]);
            }
            grain = 4;
            task = (start, end) -> {
                for (int r = start; r < end; r++) {
                    for (int b = 0; b < batch; b++) out[b * outStride + r] = rk.dotPrepared(data, r * rowBytes, xps[b], cols);
                }
            };
        } else {
            int tile = tileRows(cols);
            grain = tile;
            task = (start, end) -> {
                float[] scratch = scratch(tile * cols);
                for (int r0 = start; r0 < end; r0 += tile) {
                    int nr = Math.min(tile, end - r0);
                    for (int i = 0; i < nr; i++) k.dequantize(data, (r0 + i) * rowBytes, scratch, i * cols, cols);
                    FloatGemm.tile(scratch, nr, cols, x, xStride, batch, out, outStride, r0);
                }
            };
        }
        if (pool == null || pool.threads() == 1 || (long) rows * cols * batch < 1 << 16) {
            task.run(0, rows);
        } else {
            pool.forRange(rows, grain, task);
        }
    }

    /** Overrides every kernel's {@link RowKernel#tileMinBatch} when set (for measuring the crossover). */
    static final int TILE_MIN_BATCH = Integer.getInteger("jmoe.matmul.tileMinBatch", 0);

    /** Rows decoded at a time: enough to amortise the activation loads, small enough to stay in L1/L2. */
    static int tileRows(int cols) {
        return Math.max(2, Math.min(16, (16 * 1024) / cols) & ~1);
    }

    private static final ThreadLocal<float[]> SCRATCH = new ThreadLocal<>();
    private static final ThreadLocal<float[]> PREPARED = new ThreadLocal<>();

    private static float[] prepared(int n) {
        float[] s = PREPARED.get();
        if (s == null || s.length < n) {
            s = new float[n];
            PREPARED.set(s);
        }
        return s;
    }

    private static float[] scratch(int n) {
        float[] s = SCRATCH.get();
        if (s == null || s.length < n) {
            s = new float[n];
            SCRATCH.set(s);
        }
        return s;
    }

    private static void checkRange(String what, float[] a, long off, long len) {
        if (a == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0 || off + len > a.length) {
            throw new IllegalArgumentException(what + " needs " + len + " floats from offset " + off + " but has length " + a.length);
        }
    }
}
