package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Several batched products in one dispatch over the pool, each vector of each product computed exactly as
 * {@link Kernels#matVec} (or {@link Kernels#gatedMatVec}) computes it alone: a decode step of several sequences runs
 * every expert of an MoE layer over the rows routed to it, or q, k and v over all rows, as one set instead of a dispatch
 * per product. Each unit of work (16 rows of one product) reads its weights once for every vector of its batch while
 * they are in L1. Packed matrices take the integer products vector by vector; other matrices the row kernels'
 * prepared dots (or 8-bit dots when activations are rounded), the arithmetic the single-vector path takes.
 *
 * <p>A set is reused per thread: {@link #begin()} clears this thread's set, {@code add…} describes the products,
 * {@link #run} computes them. Outputs must not overlap each other or any input.
 */
public final class MatMulSet {
    private static final int UNIT_ROWS = PackedMatrix.ROWS;
    private static final ThreadLocal<MatMulSet> THIS_THREAD = ThreadLocal.withInitial(MatMulSet::new);

    private final List<Product> products = new ArrayList<>();
    private int count;
    private boolean running;

    private MatMulSet() {}

    /** This thread's set, emptied. */
    public static MatMulSet begin() {
        MatMulSet s = THIS_THREAD.get();
        if (s.running) return new MatMulSet();
        s.count = 0;
        return s;
    }

    /** For b in [0, batch): out[outOff + b·outStride + r] = w_r·x[xOff + b·xStride ..] for every row r of w. */
    public MatMulSet add(Matrix w, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
        next().set(w, null, null, x, xOff, xStride, batch, out, outOff, outStride);
        return this;
    }

    /** For b in [0, batch): out[outOff + b·outStride + r] = gate.combine(g_r·x_b, u_r·x_b); g and u of one type and shape. */
    public MatMulSet addGated(Matrix g, Matrix u, Kernels.Gate gate, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
        Kernels.checkGatedPair(g, u);
        if (gate == null) throw new IllegalArgumentException("a gated product needs its gate function");
        next().set(g, u, gate, x, xOff, xStride, batch, out, outOff, outStride);
        return this;
    }

    private Product next() {
        if (count == products.size()) products.add(new Product());
        return products.get(count++);
    }

    /** Computes every product added since {@link #begin()} (pool may be null: this thread does all). */
    public void run(Parallel pool) {
        running = true;
        try {
            if (count == 0) return;
            if (Kernels.scalarReference()) {
                for (int i = 0; i < count; i++) products.get(i).runAlone(pool);
                return;
            }
            int units = 0;
            long bytes = 0;
            for (int i = 0; i < count; i++) {
                Product p = products.get(i);
                p.prepare();
                p.firstUnit = units;
                units += p.units;
                bytes += p.bytes;
            }
            if (pool == null || pool.threads() == 1 || bytes < Kernels.PARALLEL_MIN_BYTES) runUnits(0, units);
            else pool.forRange(units, 2, this::runUnits);
        } finally {
            running = false;
        }
    }

    private void runUnits(int u0, int u1) {
        for (int i = 0; i < count; i++) {
            Product p = products.get(i);
            int a = Math.max(u0, p.firstUnit), b = Math.min(u1, p.firstUnit + p.units);
            if (a < b) p.run(a - p.firstUnit, b - p.firstUnit);
        }
    }

    private static final class Product {
        Matrix w, u;
        Kernels.Gate gate;
        float[] x, out;
        int xOff, xStride, batch, outOff, outStride;
        // set by prepare
        int units, firstUnit;
        long bytes;
        RowKernel kernel;
        PackedQ4.Precision precision;
        QuantizedActivation.Scheme scheme;
        final PackedQ4.Activation packed = new PackedQ4.Activation();
        QuantizedActivation[] rounded = new QuantizedActivation[0];
        float[][] floats = new float[0][];
        float[] up = new float[0];

        void set(Matrix w, Matrix u, Kernels.Gate gate, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
            if (batch < 1) throw new IllegalArgumentException("batch must be at least 1, got " + batch);
            if (batch > 1 && xStride < w.cols()) throw new IllegalArgumentException("xStride " + xStride + " is less than the " + w.cols() + " columns");
            if (batch > 1 && outStride < w.rows()) throw new IllegalArgumentException("outStride " + outStride + " is less than the " + w.rows() + " rows");
            Kernels.checkRange("x", x, xOff, (long) (batch - 1) * xStride + w.cols());
            Kernels.checkRange("out", out, outOff, (long) (batch - 1) * outStride + w.rows());
            this.w = w;
            this.u = u;
            this.gate = gate;
            this.x = x;
            this.xOff = xOff;
            this.xStride = xStride;
            this.batch = batch;
            this.out = out;
            this.outOff = outOff;
            this.outStride = outStride;
        }

        void runAlone(Parallel pool) {
            for (int b = 0; b < batch; b++) {
                if (u == null) Kernels.matVec(pool, w, x, xOff + b * xStride, out, outOff + b * outStride);
                else Kernels.gatedMatVec(pool, w, u, gate, x, xOff + b * xStride, out, outOff + b * outStride);
            }
        }

        /** Lays out the batch's activations the way the single-vector path lays out each one. */
        void prepare() {
            kernel = Kernels.rowKernel(w.type());
            scheme = Kernels.quantizing(kernel);
            int cols = w.cols(), rows = w.rows();
            precision = w.packed() != null && (u == null || u.packed() != null) ? w.packed().precision(scheme) : null;
            if (precision != null) {
                packed.prepare(precision, scheme, x, xOff, xStride, batch, cols);
            } else if (scheme != null) {
                if (rounded.length < batch) {
                    QuantizedActivation[] grown = new QuantizedActivation[batch];
                    for (int b = 0; b < batch; b++) grown[b] = b < rounded.length ? rounded[b] : new QuantizedActivation();
                    rounded = grown;
                }
                for (int b = 0; b < batch; b++) {
                    rounded[b].quantize(scheme, x, xOff + b * xStride, cols);
                    kernel.prepareQ8(rounded[b]);
                }
            } else {
                if (floats.length < batch) floats = java.util.Arrays.copyOf(floats, batch);
                int len = kernel.preparedLength(cols);
                for (int b = 0; b < batch; b++) {
                    if (floats[b] == null || floats[b].length < len) floats[b] = new float[len];
                    kernel.prepare(x, xOff + b * xStride, cols, floats[b]);
                }
            }
            if (u != null && up.length < batch * rows) up = new float[batch * rows];
            // packed groups go in pairs (see PackedQ4.product): a product's units start even so pairs stay whole
            units = (rows + UNIT_ROWS - 1) / UNIT_ROWS;
            units = (units + 1) / 2 * 2;
            bytes = (u == null ? 1L : 2L) * w.byteSize();
        }

        /** Rows [16·u0, 16·u1) of every vector (clipped to the rows). */
        void run(int u0, int u1) {
            int rows = w.rows();
            int r0 = Math.min(u0 * UNIT_ROWS, rows), r1 = Math.min(u1 * UNIT_ROWS, rows);
            if (r0 >= r1) return;
            if (precision != null) {
                int g0 = r0 / UNIT_ROWS, g1 = r1 / UNIT_ROWS, stride = packed.stride(), nb = w.cols() / 32;
                // two groups at a time (the 16-bit products run them as a pair), every vector while their weights are in L1
                for (int g = g0; g < g1; g += 2) {
                    int end = Math.min(g + 2, g1), gr0 = g * UNIT_ROWS, gr1 = Math.min(end * UNIT_ROWS, rows);
                    for (int b = 0; b < batch; b++) {
                        int o = outOff + b * outStride;
                        w.packed().product(packed, b * stride, b * nb, g, end, out, o + gr0);
                        if (u != null) {
                            u.packed().product(packed, b * stride, b * nb, g, end, up, b * rows + gr0);
                            gate.combine(out, o + gr0, up, b * rows + gr0, gr1 - gr0);
                        }
                    }
                }
                return;
            }
            RowKernel k = kernel;
            int cols = w.cols();
            long rowBytes = w.rowBytes();
            MemorySegment data = w.data(), ud = u == null ? null : u.data();
            for (int r = r0; r < r1; r++) {
                for (int b = 0; b < batch; b++) {
                    int o = outOff + b * outStride;
                    if (scheme != null) {
                        out[o + r] = k.dotQ8(data, r * rowBytes, rounded[b], cols);
                        if (u != null) up[b * rows + r] = k.dotQ8(ud, r * rowBytes, rounded[b], cols);
                    } else {
                        out[o + r] = k.dotPrepared(data, r * rowBytes, floats[b], cols);
                        if (u != null) up[b * rows + r] = k.dotPrepared(ud, r * rowBytes, floats[b], cols);
                    }
                }
            }
            if (u != null) {
                for (int b = 0; b < batch; b++) gate.combine(out, outOff + b * outStride + r0, up, b * rows + r0, r1 - r0);
            }
        }
    }
}
