package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Several independent matrix-vector products computed in one dispatch over the pool: a decode step's q, k and v
 * projections, or the gate/up (then the down) projections of every expert a token selected. Each product on its own
 * ends with the threads waiting for the slowest chunk and starts with the caller preparing the activation alone;
 * one dispatch for the set pays that once, and products of the same vector share one prepared activation.
 *
 * <p>Every product gives exactly what {@link Kernels#matVec} or {@link Kernels#gatedMatVec} gives for it (same
 * kernels, same per-row order). A set is reused per thread: {@link #begin()} clears this thread's set, {@code add…}
 * describes the products, {@link #run} computes them. Outputs must not overlap each other or any input.
 */
public final class MatVecSet {
    /** Rows per unit of work; a packed matrix's group, so units of a packed product are its groups. */
    private static final int UNIT_ROWS = PackedQ4.ROWS;

    private static final ThreadLocal<MatVecSet> THIS_THREAD = ThreadLocal.withInitial(MatVecSet::new);

    private final List<Product> products = new ArrayList<>();
    private final List<Prepared> prepared = new ArrayList<>();
    private int count;
    private int preparedCount;

    private MatVecSet() {}

    /** This thread's set, emptied. */
    public static MatVecSet begin() {
        MatVecSet s = THIS_THREAD.get();
        s.count = 0;
        s.preparedCount = 0;
        return s;
    }

    /** out[outOff + r] = w_r·x[xOff ..] for every row r of w. */
    public MatVecSet add(Matrix w, float[] x, int xOff, float[] out, int outOff) {
        next().set(w, null, null, x, xOff, out, outOff);
        return this;
    }

    /** out[outOff + r] = gate.combine(g_r·x, u_r·x) for every row r; g and u of the same type and shape. */
    public MatVecSet addGated(Matrix g, Matrix u, Kernels.Gate gate, float[] x, int xOff, float[] out, int outOff) {
        if (g.type() != u.type() || g.rows() != u.rows() || g.cols() != u.cols()) {
            throw new IllegalArgumentException("gate " + g.type() + " " + g.rows() + "x" + g.cols() + " and up " + u.type() + " " + u.rows() + "x"
                    + u.cols() + " differ");
        }
        if (gate == null) throw new IllegalArgumentException("a gated product needs its gate function");
        next().set(g, u, gate, x, xOff, out, outOff);
        return this;
    }

    private Product next() {
        if (count == products.size()) products.add(new Product());
        return products.get(count++);
    }

    /** Computes every product added since {@link #begin()} (pool may be null: this thread does all). */
    public void run(Parallel pool) {
        int n = count;
        if (n == 0) return;
        if (Kernels.scalarReference()) {
            // the reference path stays the plain one, product by product
            for (int i = 0; i < n; i++) products.get(i).runAlone(pool);
            return;
        }
        long bytes = 0;
        int units = 0;
        for (int i = 0; i < n; i++) {
            Product p = products.get(i);
            p.prepare(this);
            p.firstUnit = units;
            units += p.units;
            bytes += p.bytes;
        }
        if (pool == null || pool.threads() == 1 || bytes < Kernels.PARALLEL_MIN_BYTES) {
            runUnits(0, units);
        } else {
            pool.forRange(units, 2, this::runUnits); // pairs of units: packed 16-bit products take groups two at a time
        }
    }

    /** Units [u0, u1) of the concatenated products. */
    private void runUnits(int u0, int u1) {
        for (int i = 0; i < count; i++) {
            Product p = products.get(i);
            int a = Math.max(u0, p.firstUnit), b = Math.min(u1, p.firstUnit + p.units);
            if (a < b) p.run(a - p.firstUnit, b - p.firstUnit);
        }
    }

    /** This set's prepared form of x for a kind of kernel, made once per (vector, kernel kind, rounding). */
    private Prepared prepared(Object kind, QuantizedActivation.Scheme scheme, float[] x, int xOff, int cols) {
        for (int i = 0; i < preparedCount; i++) {
            Prepared p = prepared.get(i);
            if (p.kind == kind && p.scheme == scheme && p.x == x && p.xOff == xOff && p.cols == cols) return p;
        }
        if (preparedCount == prepared.size()) prepared.add(new Prepared());
        Prepared p = prepared.get(preparedCount++);
        p.kind = kind;
        p.scheme = scheme;
        p.x = x;
        p.xOff = xOff;
        p.cols = cols;
        if (kind == PackedQ4.class) {
            p.packed.prepare(scheme, x, xOff, 0, 1, cols);
        } else {
            RowKernel k = (RowKernel) kind;
            if (scheme != null) {
                p.rounded.quantize(scheme, x, xOff, cols);
                k.prepareQ8(p.rounded);
            } else {
                int len = k.preparedLength(cols);
                if (p.floats.length < len) p.floats = new float[len];
                k.prepare(x, xOff, cols, p.floats);
            }
        }
        return p;
    }

    /** One vector prepared for one kind of kernel; buffers are kept for the next use of this set. */
    private static final class Prepared {
        Object kind;
        QuantizedActivation.Scheme scheme;
        float[] x;
        int xOff, cols;
        final PackedQ4.Activation packed = new PackedQ4.Activation();
        final QuantizedActivation rounded = new QuantizedActivation();
        float[] floats = new float[0];
    }

    private static final class Product {
        Matrix w, u;
        Kernels.Gate gate;
        float[] x, out;
        int xOff, outOff;
        // set by prepare
        int units, firstUnit;
        long bytes;
        RowKernel kernel;
        Prepared act;
        float[] up = new float[0];

        void set(Matrix w, Matrix u, Kernels.Gate gate, float[] x, int xOff, float[] out, int outOff) {
            Kernels.checkRange("x", x, xOff, w.cols());
            Kernels.checkRange("out", out, outOff, w.rows());
            this.w = w;
            this.u = u;
            this.gate = gate;
            this.x = x;
            this.xOff = xOff;
            this.out = out;
            this.outOff = outOff;
        }

        void runAlone(Parallel pool) {
            if (u == null) Kernels.matVec(pool, w, x, xOff, out, outOff);
            else Kernels.gatedMatVec(pool, w, u, gate, x, xOff, out, outOff);
        }

        void prepare(MatVecSet set) {
            kernel = Kernels.rowKernel(w.type());
            QuantizedActivation.Scheme scheme = Kernels.quantizing(kernel);
            boolean packed = w.packed() != null && (u == null || u.packed() != null);
            act = set.prepared(packed ? PackedQ4.class : kernel, scheme, x, xOff, w.cols());
            int rows = w.rows();
            // packed groups go in pairs (see PackedQ4.product): a product's units start even so pairs stay whole
            units = (rows + UNIT_ROWS - 1) / UNIT_ROWS;
            units += units & 1;
            bytes = (u == null ? 1 : 2) * w.byteSize();
            if (u != null && up.length < rows) up = new float[rows];
        }

        /** Rows [16·u0, 16·u1) of this product (clipped to its rows). */
        void run(int u0, int u1) {
            int rows = w.rows();
            int r0 = Math.min(u0 * UNIT_ROWS, rows), r1 = Math.min(u1 * UNIT_ROWS, rows);
            if (r0 >= r1) return;
            if (act.kind == PackedQ4.class) {
                int g0 = r0 / UNIT_ROWS, g1 = r1 / UNIT_ROWS;
                w.packed().product(act.packed, 0, 0, g0, g1, out, outOff + r0);
                if (u != null) {
                    u.packed().product(act.packed, 0, 0, g0, g1, up, r0);
                    for (int r = r0; r < r1; r++) out[outOff + r] = gate.combine(out[outOff + r], up[r]);
                }
                return;
            }
            RowKernel k = kernel;
            MemorySegment data = w.data();
            long rowBytes = w.rowBytes();
            int cols = w.cols();
            if (act.scheme != null) {
                QuantizedActivation a = act.rounded;
                if (u == null) {
                    for (int r = r0; r < r1; r++) out[outOff + r] = k.dotQ8(data, r * rowBytes, a, cols);
                } else {
                    MemorySegment ud = u.data();
                    for (int r = r0; r < r1; r++) out[outOff + r] = gate.combine(k.dotQ8(data, r * rowBytes, a, cols), k.dotQ8(ud, r * rowBytes, a, cols));
                }
            } else {
                float[] xp = act.floats;
                if (u == null) {
                    for (int r = r0; r < r1; r++) out[outOff + r] = k.dotPrepared(data, r * rowBytes, xp, cols);
                } else {
                    MemorySegment ud = u.data();
                    for (int r = r0; r < r1; r++) {
                        out[outOff + r] = gate.combine(k.dotPrepared(data, r * rowBytes, xp, cols), k.dotPrepared(ud, r * rowBytes, xp, cols));
                    }
                }
            }
        }
    }
}
