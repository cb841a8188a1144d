package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Several batched products computed in one dispatch over the pool: a prompt's q, k and v projections, or the gate/up
 * (then the down) products of every expert a batch's rows selected, each on the rows routed to it. Product by product,
 * a fine-grained MoE layer is dozens of small dispatches (32 experts × 3 for a Qwen3-MoE-like layer), each starting
 * with the caller preparing its activations alone and ending with the threads waiting for the slowest chunk; one
 * dispatch for the set pays that once, and the gate of a gated product is applied by the threads that computed its
 * rows instead of by the caller afterwards. Each unit of work reads its weights once for every vector of its batch.
 *
 * <p>Two kinds of set, chosen where it is begun:
 * <ul>
 * <li>{@link #begin()}: every vector of every product exactly as {@link Kernels#matVec} (or {@link Kernels#gatedMatVec})
 * computes it alone — integer products on packed copies, the row kernels' prepared dots (8-bit dots when activations
 * are rounded) otherwise — so a row's result does not depend on the batch around it.</li>
 * <li>{@link #beginTiled()}: batches large enough for it multiply float tiles of the file's rows against the batch
 * transposed ({@link FloatGemm#rowTile}), or panels decoded from a packed copy ({@link FloatGemm#panel16}): one decode
 * per weight for the whole batch, but other float rounding than the vector kernels. Under
 * {@link Kernels#withBatchInvariance} (a forward step over several sequences) a tiled set computes as {@link #begin()}'s.
 * {@link Kernels#matMul} is a tiled set of one product, so every product of a tiled set gives exactly what matMul gives
 * for it.</li>
 * </ul>
 *
 * <p>A set is reused per thread: {@code begin…} clears this thread's set, {@code add…} describes the products,
 * {@link #run} computes them. Outputs must not overlap each other or any input.
 */
public final class MatMulSet {
    private static final ThreadLocal<MatMulSet> THIS_THREAD = ThreadLocal.withInitial(MatMulSet::new);
    /** This thread's set for {@link Kernels#matMul}: it leaves a set being built alone. */
    private static final ThreadLocal<MatMulSet> SINGLE = ThreadLocal.withInitial(MatMulSet::new);

    /** Weight values × vectors below which a set runs on the calling thread: waking workers would cost more. */
    private static final long PARALLEL_MIN_WORK = 1 << 16;
    /** Activation values below which a set's activations are laid out on the calling thread alone. */
    private static final long PARALLEL_PREPARE_MIN_VALUES = 1 << 14;

    private final List<Product> products = new ArrayList<>();
    private int count;
    private boolean running;
    /** Whether large enough float batches may take tiles or panels (unless batch invariance is bound when the set runs). */
    private boolean tiled;

    private MatMulSet() {}

    /** This thread's set, emptied: every vector computed exactly as {@link Kernels#matVec} computes it alone. */
    public static MatMulSet begin() {
        return emptied(THIS_THREAD, false);
    }

    /**
     * This thread's set, emptied: large enough float batches take tiles or decoded panels (as {@link Kernels#matMul}
     * does), except under {@link Kernels#withBatchInvariance}, where it computes as {@link #begin()}'s set.
     */
    public static MatMulSet beginTiled() {
        return emptied(THIS_THREAD, true);
    }

    /** This thread's tiled set for {@link Kernels#matMul}. */
    static MatMulSet single() {
        return emptied(SINGLE, true);
    }

    private static MatMulSet emptied(ThreadLocal<MatMulSet> local, boolean tiled) {
        MatMulSet s = local.get();
        if (s.running) s = new MatMulSet(); // asked for from inside a product of this very set: a fresh one
        s.count = 0;
        s.tiled = tiled;
        return s;
    }

    /** out[outOff + b·outStride + r] = w_r · x[xOff + b·xStride ..] for b in [0, batch) and every row r of w. */
    public MatMulSet add(Matrix w, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
        next().set(w, null, null, x, xOff, xStride, batch, out, outOff, outStride);
        return this;
    }

    /**
     * out[outOff + b·outStride + r] = gate.combine(g_r·x_b, u_r·x_b) for b in [0, batch) and every row r; g and u of one type
     * and shape (an expert's gate and up projections).
     */
    public MatMulSet addGated(Matrix g, Matrix u, Kernels.Gate gate, float[] x, int xOff, int xStride, int batch, float[] out, int outOff,
                              int outStride) {
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
            runProducts(pool);
        } finally {
            running = false;
        }
    }

    private void runProducts(Parallel pool) {
        int n = count;
        if (n == 0) return;
        if (Kernels.scalarReference()) {
            for (int i = 0; i < n; i++) products.get(i).runScalar(pool);
            return;
        }
        // read on the thread that starts the set: the workers are not bound to its settings
        boolean tilesAllowed = tiled && !Kernels.batchInvariance();
        int units = 0, owners = 0;
        long work = 0, values = 0;
        for (int i = 0; i < n; i++) {
            Product p = products.get(i);
            p.choose(tilesAllowed, i == 0 ? null : products.subList(0, i));
            p.firstUnit = units;
            units += p.units();
            work += p.work();
            if (p.ownsInput()) {
                owners++;
                values += (long) p.batch * p.w.cols();
            }
        }
        // Each product's activations are laid out by one thread, before any product runs. With several products (a
        // layer's experts) the pool's threads share them out: on the calling thread alone, rounding and laying out a
        // prompt's 8-bit activations took ~7% of its CPU samples while the other threads waited (JFR, Mixtral-like Q4_0).
        boolean parallel = pool != null && pool.threads() > 1 && work >= PARALLEL_MIN_WORK;
        if (parallel && owners > 1 && values >= PARALLEL_PREPARE_MIN_VALUES) pool.forRange(n, 1, this::layOutActivations);
        else layOutActivations(0, n);
        if (!parallel) {
            runUnits(0, units);
        } else {
            pool.forRange(units, 1, this::runUnits);
        }
    }

    /** The activations of products [i0, i1) that own theirs. */
    private void layOutActivations(int i0, int i1) {
        for (int i = i0; i < i1; i++) {
            Product p = products.get(i);
            if (p.ownsInput()) p.prepareActivations();
        }
    }

    /** Units [u0, u1) of the concatenated products. */
    private void runUnits(int u0, int u1) {
        for (int i = 0; i < count; i++) {
            Product p = products.get(i);
            int a = Math.max(u0, p.firstUnit), b = Math.min(u1, p.firstUnit + p.units());
            if (a < b) p.run(a - p.firstUnit, b - p.firstUnit);
        }
    }

    /** How a product's rows are computed, chosen from its matrix, its batch and the activation rounding. */
    private enum Kind {
        /** Integer products on a packed copy, vector by vector (a few vectors, or rounded activations). */
        PACKED,
        /** Float panels decoded from a packed copy ({@link FloatGemm#panel16}). */
        PANELS,
        /** Integer dots of the file's rows with rounded activations (llama.cpp's arithmetic). */
        ROUNDED_ROWS,
        /** Prepared dots of the file's rows, vector by vector (a few vectors). */
        ROWS,
        /** Tiles of the file's rows decoded to floats, against the batch transposed ({@link FloatGemm#rowTile}). */
        TILES
    }

    /** Columns of a panel decoded at a time: 16 rows of 512 floats (32 KB) stay in L1 while every token passes over them. */
    private static final int PANEL_COLS = 512;

    private static final ThreadLocal<float[]> SCRATCH = new ThreadLocal<>();
    /** A row tile's sums over its column chunks, before they are spread over the batch's outputs. */
    private static final ThreadLocal<float[]> ACCUMULATORS = new ThreadLocal<>();

    private static float[] accumulators(int n) {
        return ThreadArrays.floats(ACCUMULATORS, n);
    }

    private static final ThreadLocal<short[]> HALVES = new ThreadLocal<>();

    /** This thread's buffer of at least n halves (an F16 row tile's rows as the file holds them). */
    private static short[] halves(int n) {
        return ThreadArrays.shorts(HALVES, n);
    }

    /** This thread's scratch of at least n floats (decoded tiles and panels). */
    private static float[] scratch(int n) {
        return ThreadArrays.floats(SCRATCH, n);
    }

    private static final class Product {
        Matrix w, u;
        Kernels.Gate gate;
        float[] x, out;
        int xOff, xStride, batch, outOff, outStride;
        // set by prepare
        Kind kind;
        RowKernel kernel;
        QuantizedActivation.Scheme scheme;
        PackedQ4.Precision precision;
        int grain, firstUnit;
        /** The prepared activations: this product's own buffers, or those of an earlier product of the set with the same input. */
        Product input;
        final PackedQ4.Activation packed = new PackedQ4.Activation();
        QuantizedActivation[] rounded = new QuantizedActivation[0];
        float[][] floats = new float[0][];
        float[] transposed = new float[0];
        /** The batch's last tokens side by side in fours, for the panels ({@link FloatGemm#interleaveTail}). */
        float[] interleaved = new float[0];
        /** The up projection's outputs of a gated product, batch × rows, before the gate combines them. */
        float[] up = new float[0];

        void set(Matrix w, Matrix u, Kernels.Gate gate, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
            int rows = w.rows(), cols = w.cols();
            if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
            if (batch > 1 && xStride < cols) throw new IllegalArgumentException("xStride " + xStride + " is less than the " + cols + " columns");
            if (batch > 1 && outStride < rows) throw new IllegalArgumentException("outStride " + outStride + " is less than the " + rows + " rows");
            Kernels.checkRange("x", x, xOff, (long) (batch - 1) * xStride + cols);
            Kernels.checkRange("out", out, outOff, (long) (batch - 1) * outStride + rows);
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

        int units() {
            return (w.rows() + grain - 1) / grain;
        }

        long work() {
            return (long) w.rows() * w.cols() * batch * (u == null ? 1 : 2);
        }

        /** The scalar reference, product by product (the plain products, then the gate). */
        void runScalar(Parallel pool) {
            int rows = w.rows();
            if (u == null) {
                Kernels.scalarProduct(pool, w, x, xOff, xStride, batch, out, outOff, outStride);
                return;
            }
            if (up.length < batch * rows) up = new float[batch * rows];
            Kernels.scalarProduct(pool, w, x, xOff, xStride, batch, out, outOff, outStride);
            Kernels.scalarProduct(pool, u, x, xOff, xStride, batch, up, 0, rows);
            for (int b = 0; b < batch; b++) gate.combine(out, outOff + b * outStride, up, b * rows, rows);
        }

        /**
         * Chooses the kind (on the calling thread), and whether this product shares the activations of an earlier one
         * with the same input ({@link #input}). Without {@code tilesAllowed} every kind left is the arithmetic matVec
         * takes for each vector.
         */
        void choose(boolean tilesAllowed, List<Product> earlier) {
            int rows = w.rows(), cols = w.cols();
            kernel = Kernels.rowKernel(w.type());
            scheme = Kernels.quantizing(kernel);
            boolean tiles = tilesAllowed && batch >= (Kernels.TILE_MIN_BATCH > 0 ? Kernels.TILE_MIN_BATCH : kernel.tileMinBatch());
            boolean packedAll = w.packed() != null && (u == null || u.packed() != null);
            precision = packedAll ? w.packed().precision(scheme) : null;
            if (precision != null && (scheme != null || !tiles)) {
                kind = Kind.PACKED;
                grain = 2 * PackedMatrix.ROWS; // the 16-bit products take groups in pairs
            } else if (packedAll && tiles && scheme == null) {
                kind = Kind.PANELS;
                grain = PackedMatrix.ROWS;
            } else if (scheme != null) {
                kind = Kind.ROUNDED_ROWS;
                grain = 4;
            } else if (!tiles) {
                kind = Kind.ROWS;
                grain = 4;
            } else {
                kind = Kind.TILES;
                grain = FloatGemm.tileRows(batch);
            }
            if (u != null && up.length < batch * rows) up = new float[batch * rows];
            input = this;
            if (earlier != null) {
                for (Product p : earlier) {
                    if (p.kind == kind && p.precision == precision && p.scheme == scheme && p.kernel == kernel && p.x == x && p.xOff == xOff
                            && p.xStride == xStride && p.batch == batch && p.w.cols() == cols) {
                        input = p.input;
                        return;
                    }
                }
            }
        }

        /** Whether this product lays out its own activations rather than sharing an earlier product's. */
        boolean ownsInput() {
            return input == this;
        }

        /** Lays out this product's own activations ({@link #ownsInput}) for its kind. */
        void prepareActivations() {
            int cols = w.cols();
            switch (kind) {
                case PACKED -> packed.prepare(precision, scheme, x, xOff, xStride, batch, cols);
                case PANELS -> {
                    // the tail of at most 8 vectors, once per product (PackedQ8's products read x as it is and skip it)
                    int len = FloatGemm.interleavedLength(batch, cols);
                    if (interleaved.length < len) interleaved = new float[len];
                    FloatGemm.interleaveTail(x, xOff, xStride, batch, cols, interleaved);
                }
                case ROUNDED_ROWS -> {
                    // Rounded activations take the integer dots at every batch size: these reproduce llama.cpp's
                    // arithmetic exactly, where decoded tiles times d·q would differ in the last bits, and later
                    // roundings of activations can turn such bits into whole quantization steps.
                    if (rounded.length < batch) {
                        QuantizedActivation[] grown = new QuantizedActivation[batch];
                        for (int b = 0; b < batch; b++) grown[b] = b < rounded.length ? rounded[b] : new QuantizedActivation();
                        rounded = grown;
                    }
                    for (int b = 0; b < batch; b++) {
                        rounded[b].quantize(scheme, x, xOff + b * xStride, cols);
                        kernel.prepareQ8(rounded[b]);
                    }
                }
                case ROWS -> {
                    if (floats.length < batch) floats = java.util.Arrays.copyOf(floats, batch);
                    int len = kernel.preparedLength(cols);
                    for (int b = 0; b < batch; b++) {
                        if (floats[b] == null || floats[b].length < len) floats[b] = new float[len];
                        kernel.prepare(x, xOff + b * xStride, cols, floats[b]);
                    }
                }
                case TILES -> {
                    int len = FloatGemm.transposedLength(batch, cols);
                    if (transposed.length < len) transposed = new float[len];
                    FloatGemm.transpose(x, xOff, xStride, batch, cols, transposed);
                }
            }
        }

        /** Units [u0, u1) of this product: rows [u0·grain, u1·grain), clipped to its rows. */
        void run(int u0, int u1) {
            int rows = w.rows();
            int r0 = Math.min(u0 * grain, rows), r1 = Math.min(u1 * grain, rows);
            if (r0 >= r1) return;
            compute(w, out, outOff, outStride, r0, r1);
            if (u != null) {
                compute(u, up, 0, rows, r0, r1);
                for (int b = 0; b < batch; b++) gate.combine(out, outOff + b * outStride + r0, up, b * rows + r0, r1 - r0);
            }
        }

        /** Rows [r0, r1) of m (w or u) into o[oOff + b·oStride + r]. */
        private void compute(Matrix m, float[] o, int oOff, int oStride, int r0, int r1) {
            int cols = m.cols();
            Product in = input;
            switch (kind) {
                case PACKED -> {
                    PackedMatrix p = m.packed();
                    PackedQ4.Activation a = in.packed;
                    int stride = a.stride(), nb = cols / 32;
                    int g0 = r0 / PackedMatrix.ROWS, g1 = r1 / PackedMatrix.ROWS;
                    for (int g = g0; g < g1; g += 2) { // two groups at a time: the 16-bit products run them as a pair
                        int end = Math.min(g + 2, g1);
                        p.productBatch(a, batch, stride, nb, g, end, o, oOff + g * PackedMatrix.ROWS, oStride);
                    }
                }
                case PANELS -> m.packed().panelProduct(r0 / PackedMatrix.ROWS, r1 / PackedMatrix.ROWS, x, xOff, xStride, in.interleaved, batch,
                        scratch(PackedMatrix.ROWS * Math.min(cols, PANEL_COLS)), PANEL_COLS, o, oOff + r0, oStride);
                case ROUNDED_ROWS -> {
                    MemorySegment data = m.data();
                    long rowBytes = m.rowBytes();
                    for (int r = r0; r < r1; r++) {
                        int b = 0;
                        for (; b + 4 <= batch; b += 4) kernel.dotQ8x4(data, r * rowBytes, in.rounded, b, cols, o, oOff + b * oStride + r, oStride);
                        for (; b < batch; b++) o[oOff + b * oStride + r] = kernel.dotQ8(data, r * rowBytes, in.rounded[b], cols);
                    }
                }
                case ROWS -> {
                    // Few vectors: each row is dotted with every vector while it is still in L1, so the
                    // weights still stream from memory once, and no decoded copy is written.
                    MemorySegment data = m.data();
                    long rowBytes = m.rowBytes();
                    for (int r = r0; r < r1; r++) {
                        for (int b = 0; b < batch; b++) o[oOff + b * oStride + r] = kernel.dotPrepared(data, r * rowBytes, in.floats[b], cols);
                    }
                }
                case TILES -> {
                    // rows decoded a tile at a time (TILE_COLS columns of them), in their own order, against the batch
                    // transposed once by prepare; a row tile's sums gather in acc over its column chunks
                    MemorySegment data = m.data();
                    long rowBytes = m.rowBytes();
                    GgmlType type = m.type();
                    float[] tile = scratch(grain * FloatGemm.TILE_COLS), acc = accumulators(grain * FloatGemm.paddedBatch(batch));
                    boolean f16 = type == GgmlType.F16;
                    short[] halves = f16 ? halves(grain * cols) : null;
                    for (int t0 = r0; t0 < r1; t0 += grain) {
                        int nr = Math.min(grain, r1 - t0);
                        // F16: the tile's rows copied whole in one pass first (nr·cols halves, contiguous in the file), so
                        // a product reads its matrix front to back as decode does, instead of nr streams of TILE_COLS
                        // halves at a time that the prefetchers did not keep up with (the copy was ~20% of an F16
                        // prompt, stalled on memory: perf, qwen3moe-bench F16); widened chunk by chunk from there.
                        if (f16) MemorySegment.copy(data, Num.LE_SHORT, t0 * rowBytes, halves, 0, nr * cols);
                        for (int c0 = 0; c0 < cols; c0 += FloatGemm.TILE_COLS) {
                            int kc = Math.min(FloatGemm.TILE_COLS, cols - c0);
                            long at = type.bytesFor(c0);
                            if (f16) {
                                for (int i = 0; i < nr; i++) F16Kernel.widenInto(halves, i * cols + c0, tile, i * FloatGemm.TILE_COLS, kc);
                            } else {
                                for (int i = 0; i < nr; i++) kernel.dequantize(data, (t0 + i) * rowBytes + at, tile, i * FloatGemm.TILE_COLS, kc);
                            }
                            FloatGemm.rowTile(tile, nr, kc, in.transposed, cols, c0, batch, acc, c0 > 0);
                        }
                        FloatGemm.scatter(acc, nr, batch, o, oOff, oStride, t0);
                    }
                }
            }
        }
    }
}
