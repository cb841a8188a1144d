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
 * <p>{@link Kernels#matVec} and {@link Kernels#gatedMatVec} are sets of one product, so every product of a set gives
 * exactly what those give for it. A set is reused per thread: {@link #begin()} clears this thread's set, {@code add…}
 * describes the products, {@link #run} computes them. Outputs must not overlap each other or any input.
 */
public final class MatVecSet {
    /** Rows per unit of work; a packed matrix's group, so units of a packed product are its groups. */
    private static final int UNIT_ROWS = PackedMatrix.ROWS;
    /**
     * Chunks per thread a set's units are cut into; 0 (the default): guided chunks ({@link Parallel#forRangeGuided}).
     * A decode step's set streams its weights from memory once, in a few tens of microseconds; each chunk a thread
     * claims starts a new stream at a new address. Two equal chunks per thread measured faster decode than eight, most
     * on the Qwen3-like shape whose many small experts make short sets (AMD EPYC, 2026-12-07, alternated {@code speed
     * -t 2 -r 5} runs; medians of jmoe ÷ llama.cpp: Qwen3-like Q8_0 1.04× → 1.16×, Q4_K_M 8-bit 0.84× → 0.90×,
     * Mixtral-like Q4_K_M 0.60× → 0.66×; docs/speed.md, session 35); one was no better than two. Yet with two the
     * threads still waited for each other at the end of a set (perf: the worker ~20% of its samples, the caller ~11%,
     * Mixtral-like Q4_K_M 8-bit decode). Guided chunks keep one long stream for the first thread and adjacent ones for
     * the next, and end on single grains: decode 1.4–6.6% faster than two equal chunks in every row measured (one JVM,
     * the two alternated per round, 40 rounds of {@code speed -p 1 -n 64}; docs/speed.md, session 38). Prompts
     * ({@code MatMulSet}) keep the pool's equal chunks. {@code -Djmoe.parallel.decodeChunksPerThread=N} goes back to
     * N equal chunks per thread, for measuring.
     */
    static final int CHUNKS_PER_THREAD = Tuning.intSetting("jmoe.parallel.decodeChunksPerThread", 0, 0);

    private static final ThreadLocal<MatVecSet> THIS_THREAD = ThreadLocal.withInitial(MatVecSet::new);
    /** This thread's set for {@link Kernels#matVec} and {@link Kernels#gatedMatVec}: it leaves a set being built alone. */
    private static final ThreadLocal<MatVecSet> SINGLE = ThreadLocal.withInitial(MatVecSet::new);

    private final List<Product> products = new ArrayList<>();
    private final List<Prepared> prepared = new ArrayList<>();
    private int count;
    private int preparedCount;
    /**
     * Outputs laid out for the next set's products ({@link #thenInputOf}): two pools used in turn, one holding what the
     * last run laid out (the inputs the current run may find ready), the other what the current run lays out.
     */
    private final List<Prepared> carriedA = new ArrayList<>(), carriedB = new ArrayList<>();
    private List<Prepared> inputs = carriedA, laidOut = carriedB;
    private int inputCount, laidOutCount;
    private boolean running;

    private MatVecSet() {}

    /** This thread's set, emptied. */
    public static MatVecSet begin() {
        return emptied(THIS_THREAD);
    }

    /** The set single products are computed through (kept apart, so a product between two sets breaks no hand-over). */
    static MatVecSet single() {
        return emptied(SINGLE);
    }

    private static MatVecSet emptied(ThreadLocal<MatVecSet> local) {
        MatVecSet s = local.get();
        if (s.running) return new MatVecSet(); // asked for from inside a product of this very set: a fresh one
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
        Kernels.checkGatedPair(g, u);
        if (gate == null) throw new IllegalArgumentException("a gated product needs its gate function");
        next().set(g, u, gate, x, xOff, out, outOff);
        return this;
    }

    /**
     * The output of the product just added is the input of {@code next} in the set run right after this one (a decode
     * step's gated expert outputs feed their down projections), and does not change before then. When next computes on
     * a packed copy, the threads lay each range of the output out for it as soon as they have computed it, so that set
     * does not start with this thread laying out whole vectors while the others wait.
     */
    public MatVecSet thenInputOf(Matrix next) {
        if (count == 0) throw new IllegalStateException("thenInputOf follows the product whose output it names");
        Product p = products.get(count - 1);
        if (next.cols() != p.w.rows()) {
            throw new IllegalArgumentException("a " + next.rows() + "x" + next.cols() + " matrix cannot take the " + p.w.rows() + " outputs of the product before it");
        }
        p.next = next;
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
            runProducts(pool);
        } finally {
            running = false;
            // what this run laid out is the next run's to find; what the last run laid out is stale now
            List<Prepared> t = inputs;
            inputs = laidOut;
            inputCount = laidOutCount;
            laidOut = t;
            laidOutCount = 0;
            for (int i = 0; i < count; i++) products.get(i).next = null;
        }
    }

    private void runProducts(Parallel pool) {
        int n = count;
        if (n == 0) return;
        if (Kernels.scalarReference()) {
            // the reference path stays the plain one, product by product
            for (int i = 0; i < n; i++) products.get(i).runAlone(pool);
            return;
        }
        // pairs of units (packed 16-bit products take groups two at a time), or whole blocks of an output laid out
        // as it is computed: each product starts on a multiple of this, and so does every chunk of the pool
        int grain = 2;
        for (int i = 0; i < n; i++) grain = Math.max(grain, products.get(i).carryUnits(this));
        long bytes = 0;
        int units = 0;
        for (int i = 0; i < n; i++) {
            Product p = products.get(i);
            p.prepare(this, grain);
            p.firstUnit = units;
            units += p.units;
            bytes += p.bytes;
        }
        if (pool == null || pool.threads() == 1 || bytes < Kernels.PARALLEL_MIN_BYTES) {
            runUnits(0, units);
        } else {
            if (CHUNKS_PER_THREAD == 0) pool.forRangeGuided(units, grain, this::runUnits);
            else pool.forRange(units, grain, CHUNKS_PER_THREAD, this::runUnits);
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
        for (int i = 0; i < inputCount; i++) {
            if (inputs.get(i).is(kind, scheme, x, xOff, cols)) return inputs.get(i); // laid out by the last run
        }
        for (int i = 0; i < preparedCount; i++) {
            if (prepared.get(i).is(kind, scheme, x, xOff, cols)) return prepared.get(i);
        }
        if (preparedCount == prepared.size()) prepared.add(new Prepared());
        Prepared p = prepared.get(preparedCount++).of(kind, scheme, x, xOff, cols);
        if (kind instanceof PackedQ4.Precision precision) {
            p.packed.prepare(precision, scheme, x, xOff, 0, 1, cols);
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

    /** A Prepared this run lays out, block by block, from the output x[xOff ..] of one of its products. */
    private Prepared carried(PackedQ4.Precision precision, QuantizedActivation.Scheme scheme, float[] x, int xOff, int cols) {
        if (laidOutCount == laidOut.size()) laidOut.add(new Prepared());
        Prepared p = laidOut.get(laidOutCount++).of(precision, scheme, x, xOff, cols);
        p.packed.size(precision, scheme, cols);
        return p;
    }

    /** One vector prepared for one kind of kernel; buffers are kept for the next use of this set. */
    private static final class Prepared {
        /** The packed layout ({@link PackedQ4.Precision}) or the row kernel the vector is prepared for. */
        Object kind;
        QuantizedActivation.Scheme scheme;
        float[] x;
        int xOff, cols;
        final PackedQ4.Activation packed = new PackedQ4.Activation();
        final QuantizedActivation rounded = new QuantizedActivation();
        float[] floats = new float[0];

        /** This buffer, now describing x[xOff ..] of {@code cols} values prepared for {@code kind} and {@code scheme}. */
        Prepared of(Object kind, QuantizedActivation.Scheme scheme, float[] x, int xOff, int cols) {
            this.kind = kind;
            this.scheme = scheme;
            this.x = x;
            this.xOff = xOff;
            this.cols = cols;
            return this;
        }

        boolean is(Object kind, QuantizedActivation.Scheme scheme, float[] x, int xOff, int cols) {
            return this.kind == kind && this.scheme == scheme && this.x == x && this.xOff == xOff && this.cols == cols;
        }
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
        /** The matrix this product's output feeds next ({@link #thenInputOf}), and the output laid out for it. */
        Matrix next;
        Prepared carry;
        QuantizedActivation.Scheme carryScheme;

        /** Units per block of the output laid out for the next product (1 if there is none). */
        int carryUnits(MatVecSet set) {
            carry = null;
            if (next == null || next.packed() == null) return 1;
            carryScheme = Kernels.quantizing(Kernels.rowKernel(next.type()));
            PackedQ4.Precision precision = next.packed().precision(carryScheme);
            if (precision == null) return 1;
            carry = set.carried(precision, carryScheme, out, outOff, w.rows());
            // whole blocks of the carried layout: 32 values, or 256 with Q8_K rounding (one scale for all of them)
            return (carryScheme == QuantizedActivation.Scheme.Q8_K ? KQuant.QK_K : 32) / UNIT_ROWS;
        }

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

        void prepare(MatVecSet set, int grain) {
            kernel = Kernels.rowKernel(w.type());
            QuantizedActivation.Scheme scheme = Kernels.quantizing(kernel);
            PackedQ4.Precision precision = w.packed() != null && (u == null || u.packed() != null) ? w.packed().precision(scheme) : null;
            act = set.prepared(precision != null ? precision : kernel, scheme, x, xOff, w.cols());
            int rows = w.rows();
            // packed groups go in pairs (see PackedQ4.product): a product's units start even so pairs stay whole
            units = (rows + UNIT_ROWS - 1) / UNIT_ROWS;
            units = (units + grain - 1) / grain * grain;
            bytes = (u == null ? 1 : 2) * w.byteSize();
            if (u != null && up.length < rows) up = new float[rows];
        }

        /** Rows [16·u0, 16·u1) of this product (clipped to its rows). */
        void run(int u0, int u1) {
            int rows = w.rows();
            int r0 = Math.min(u0 * UNIT_ROWS, rows), r1 = Math.min(u1 * UNIT_ROWS, rows);
            if (r0 >= r1) return;
            compute(r0, r1);
            // whole blocks: r0 and r1 are multiples of the carried block (the grain), or r1 is the end of the rows
            if (carry != null) carry.packed.prepareBlocks(carryScheme, out, outOff, r0 / 32, r1 / 32);
        }

        private void compute(int r0, int r1) {
            if (act.kind instanceof PackedQ4.Precision) {
                int g0 = r0 / UNIT_ROWS, g1 = r1 / UNIT_ROWS;
                w.packed().product(act.packed, 0, 0, g0, g1, out, outOff + r0);
                if (u != null) {
                    u.packed().product(act.packed, 0, 0, g0, g1, up, r0);
                    gate.combine(out, outOff + r0, up, r0, r1 - r0);
                }
                return;
            }
            RowKernel k = kernel;
            MemorySegment data = w.data();
            long rowBytes = w.rowBytes();
            int cols = w.cols();
            if (act.scheme != null) {
                QuantizedActivation a = act.rounded;
                for (int r = r0; r < r1; r++) out[outOff + r] = k.dotQ8(data, r * rowBytes, a, cols);
                if (u != null) {
                    MemorySegment ud = u.data();
                    for (int r = r0; r < r1; r++) up[r] = k.dotQ8(ud, r * rowBytes, a, cols);
                    gate.combine(out, outOff + r0, up, r0, r1 - r0);
                }
            } else {
                float[] xp = act.floats;
                for (int r = r0; r < r1; r++) out[outOff + r] = k.dotPrepared(data, r * rowBytes, xp, cols);
                if (u != null) {
                    MemorySegment ud = u.data();
                    for (int r = r0; r < r1; r++) up[r] = k.dotPrepared(ud, r * rowBytes, xp, cols);
                    gate.combine(out, outOff + r0, up, r0, r1 - r0);
                }
            }
        }
    }
}
