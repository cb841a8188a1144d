package dev.jmoe.tensor;

import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.Map;

/**
 * Matrix products of a quantized or float weight matrix with float activations, split over output
 * rows across the threads of a {@link Parallel} pool. Every type has a scalar reference in
 * {@link TypeKernel} beside its Vector API path. With {@link #withActivationQuantization} the activations
 * of quantized matrices are first rounded to 8 bits as llama.cpp does, and the products run on integer paths.
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

    static {
        // Vector API code that is not compiled yet reinterprets vectors through heap segments. Loaded first then
        // (mid-prompt), those segment classes invalidate every compiled kernel that C2 built assuming mapped and
        // native segments were the only kinds: a storm of deoptimizations that cost the first tokens of a run.
        MemorySegment.ofArray(new byte[1]);
        MemorySegment.ofArray(new short[1]);
        MemorySegment.ofArray(new char[1]);
        MemorySegment.ofArray(new int[1]);
        MemorySegment.ofArray(new float[1]);
        MemorySegment.ofArray(new long[1]);
        MemorySegment.ofArray(new double[1]);
    }

    /** Weight bytes below which a product runs on the calling thread: waking workers would cost more. */
    static final long PARALLEL_MIN_BYTES = 48 * 1024;

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

    /**
     * Whether the products of the calling thread take the scalar reference ({@link TypeKernel#dotScalar}, row by row)
     * instead of the Vector API paths — for checking the fast kernels end to end on whole models. Bound per call
     * ({@link #withScalarReference}), never process-wide, so two models in one JVM do not see each other's setting.
     */
    private static final ScopedValue<Boolean> SCALAR_REFERENCE = ScopedValue.newInstance();

    /** Runs {@code body} with every product on this thread routed through the scalar reference (or not). */
    public static <T> T withScalarReference(boolean on, java.util.function.Supplier<T> body) {
        return ScopedValue.where(SCALAR_REFERENCE, on).call(body::get);
    }

    public static boolean scalarReference() {
        return SCALAR_REFERENCE.orElse(false);
    }

    /**
     * Whether the products of the calling thread round activations to 8 bits (see {@link #withActivationQuantization}).
     * Read only on the thread that starts a product (its workers compute from what that thread prepared).
     */
    private static final ScopedValue<Boolean> ACTIVATION_QUANTIZATION = ScopedValue.newInstance();

    /**
     * Runs {@code body} with the activation vector of every product with a quantized weight matrix rounded to 8 bits
     * before the product (or not), as llama.cpp's CPU backend does (Q8_0 blocks of 32 with a half scale for Q4_0, Q4_1,
     * Q5_0, Q5_1 and Q8_0 weights; Q8_K blocks of 256 with a float scale for Q4_K, Q5_K and Q6_K), so logits follow
     * llama.cpp's quantized runs instead of the exact dequantized product. Q8_0, Q4_0, Q4_K, Q5_K and Q6_K then use
     * integer dot products that repeat the arithmetic of ggml's AVX2 vec_dot kernels to the bit (lanes, integer sums,
     * FMAs, final sum), at every batch size (llama.cpp's repacked Q4_0/Q4_K kernels add the same integers in another
     * float order); Q4_1, Q5_0 and Q5_1 take their float paths with the rounded activations. F32, F16 and BF16
     * matrices are not affected. The setting is bound to the calling thread for the extent of {@code body} (a model
     * binds its own around each forward pass: see {@code Model#withActivationQuantization}); outside any binding
     * activations stay float.
     */
    public static <T> T withActivationQuantization(boolean on, java.util.function.Supplier<T> body) {
        return ScopedValue.where(ACTIVATION_QUANTIZATION, on).call(body::get);
    }

    /** {@link #withActivationQuantization(boolean, java.util.function.Supplier)} for a body without a result. */
    public static void withActivationQuantization(boolean on, Runnable body) {
        ScopedValue.where(ACTIVATION_QUANTIZATION, on).run(body);
    }

    public static boolean activationQuantization() {
        return ACTIVATION_QUANTIZATION.orElse(false);
    }

    /**
     * Whether the products of the calling thread compute every vector of a batch exactly as {@link #matVec} computes it
     * alone (see {@link #withBatchInvariance}). Read only on the thread that starts a product.
     */
    private static final ScopedValue<Boolean> BATCH_INVARIANCE = ScopedValue.newInstance();

    /**
     * Runs {@code body} with every batched product on this thread computing each vector exactly as {@link #matVec} computes
     * it alone (or not): integer products on packed copies and row-by-row dots otherwise, never the float tiles or
     * decoded panels a large enough batch would take. Each weight row is still read once for the whole batch. A
     * forward pass over several sequences binds it, so a sequence's tokens do not depend on the batch around it, nor on how
     * its prompt was cut into chunks: a decode token, a prompt token and a token alone all take the same arithmetic.
     */
    public static void withBatchInvariance(boolean on, Runnable body) {
        ScopedValue.where(BATCH_INVARIANCE, on).run(body);
    }

    public static boolean batchInvariance() {
        return BATCH_INVARIANCE.orElse(false);
    }

    /** The scheme activations of {@code k} are rounded with in this product, or null for float activations. */
    static QuantizedActivation.Scheme quantizing(RowKernel k) {
        return activationQuantization() ? k.activationScheme() : null;
    }

    static void scalarProduct(Parallel pool, Matrix w, float[] x, int xOff, int xStride, int batch, float[] out, int outOff, int outStride) {
        RowKernel k = rowKernel(w.type());
        MemorySegment data = w.data();
        long rowBytes = w.rowBytes();
        int cols = w.cols();
        QuantizedActivation.Scheme scheme = quantizing(k);
        Parallel.RangeTask task;
        if (scheme != null) {
            QuantizedActivation[] qs = new QuantizedActivation[batch];
            for (int b = 0; b < batch; b++) {
                qs[b] = new QuantizedActivation();
                qs[b].quantize(scheme, x, xOff + b * xStride, cols);
            }
            task = (start, end) -> {
                for (int r = start; r < end; r++) {
                    for (int b = 0; b < batch; b++) out[outOff + b * outStride + r] = k.dotQ8Scalar(data, r * rowBytes, qs[b], cols);
                }
            };
        } else {
            task = (start, end) -> {
                for (int r = start; r < end; r++) {
                    for (int b = 0; b < batch; b++) out[outOff + b * outStride + r] = k.dotScalar(data, r * rowBytes, x, xOff + b * xStride, cols);
                }
            };
        }
        if (pool == null) task.run(0, w.rows());
        else pool.forRange(w.rows(), 4, task);
    }

    /** out[outOff + r] = Σ_c w[r][c]·x[xOff + c] for every row r (vector path). */
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOff, float[] out, int outOff) {
        if (scalarReference()) {
            checkRange("x", x, xOff, w.cols());
            checkRange("out", out, outOff, w.rows());
            scalarProduct(pool, w, x, xOff, 0, 1, out, outOff, 0);
            return;
        }
        MatVecSet.single().add(w, x, xOff, out, outOff).run(pool);
    }

    /** How a gated feed-forward combines its two projections of one row (e.g. silu(g)·u). */
    @FunctionalInterface
    public interface Gate {
        float combine(float gate, float up);

        /**
         * gate[gateOff + i] = combine(gate[gateOff + i], up[upOff + i]) for i in [0, n): a gate may do this with vectors
         * (one combination per row of an expert is thousands per token), equal value for value to {@link #combine(float, float)}.
         */
        default void combine(float[] gate, int gateOff, float[] up, int upOff, int n) {
            for (int i = 0; i < n; i++) gate[gateOff + i] = combine(gate[gateOff + i], up[upOff + i]);
        }
    }

    /**
     * out[outOff + r] = gate.combine(g_r·x, u_r·x) for every row r, with g and u two matrices of the same type and
     * shape (an expert's gate and up projections). One dispatch instead of two products and a serial pass: each
     * thread combines its own rows. The products are the ones {@link #matVec} computes, so the result is identical
     * to two matVec calls followed by the combination.
     */
    public static void gatedMatVec(Parallel pool, Matrix g, Matrix u, Gate gate, float[] x, int xOff, float[] out, int outOff) {
        if (scalarReference()) {
            checkGatedPair(g, u);
            // the scalar reference keeps its own path: two products, then the combination
            float[] up = scratch(u.rows()); // matVec itself never uses this thread's scratch
            matVec(pool, g, x, xOff, out, outOff);
            matVec(pool, u, x, xOff, up, 0);
            gate.combine(out, outOff, up, 0, u.rows());
            return;
        }
        MatVecSet.single().addGated(g, u, gate, x, xOff, out, outOff).run(pool);
    }

    /**
     * Batched product: for b in [0, batch): out[b·outStride + r] = Σ_c w[r][c]·x[b·xStride + c].
     * Each weight row is read once per batch (the prompt / grouped-expert path). A {@link MatMulSet#beginTiled tiled}
     * {@link MatMulSet} of one product: large enough float batches take tiles or decoded panels, except under
     * {@link #withBatchInvariance}, where every vector is computed exactly as {@link #matVec} computes it.
     */
    public static void matMul(Parallel pool, Matrix w, float[] x, int xStride, int batch, float[] out, int outStride) {
        forType(w.type());
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
        if (scalarReference()) {
            scalarProduct(pool, w, x, 0, xStride, batch, out, 0, outStride);
            return;
        }
        MatMulSet.single().add(w, x, 0, xStride, batch, out, 0, outStride).run(pool);
    }

    /**
     * Whether cutting a {@link #matMul} over {@code batch} vectors into consecutive products of {@code part} vectors
     * (the last one also taking the remainder, so every part has {@code part} to {@code 2·part − 1} vectors) gives
     * every vector exactly the bits the whole product gives it, on this thread's settings (activation rounding, batch
     * invariance). {@code packed}: the matrix multiplies with a packed copy. A distributed prompt step cuts an expert's
     * rows into mini-batches only when this holds for each of its products.
     *
     * <p>Why it can hold: below the tile threshold, with rounded activations and under batch invariance, every vector
     * takes the single-vector arithmetic whatever the batch; a packed matrix's float panels accumulate each vector
     * column by column in one order whatever the batch, so any parts at or above the threshold agree. A file-layout
     * matrix's float row tiles ({@link FloatGemm#rowTile}) also sum each vector in column order whatever the batch
     * (KernelsTest.batchedRowsDoNotDependOnTheBatchAround); the even-parts rule below dates from the earlier 2×4 dot
     * tiles, which gave the last vector of an odd batch its own sweep, and is kept as a conservative bound. Parts of one
     * vector are never allowed (a gated product of one vector fuses gate and up). The scalar reference is not
     * analysed: false.
     */
    public static boolean splitKeepsBits(Matrix w, boolean packed, int batch, int part) {
        if (part < 2 || batch < 1) return false;
        if (batch < 2 * part) return true; // one part: the whole product
        if (scalarReference()) return false;
        if (!(forType(w.type()) instanceof RowKernel rk)) return false;
        int min = TILE_MIN_BATCH > 0 ? TILE_MIN_BATCH : rk.tileMinBatch();
        if (batchInvariance() || quantizing(rk) != null || batch < min) return true;
        if (part < min) return false;
        boolean panels = packed && Packing.canPack(w);
        return panels || part % 2 == 0;
    }

    /** Overrides every kernel's {@link RowKernel#tileMinBatch} when set (for measuring the crossover). */
    static final int TILE_MIN_BATCH = Tuning.intSetting("jmoe.matmul.tileMinBatch", 0, 0);

    private static final ThreadLocal<float[]> SCRATCH = new ThreadLocal<>();

    private static float[] scratch(int n) {
        return ThreadArrays.floats(SCRATCH, n);
    }

    /** A gated product's gate and up projections must have one type and shape. */
    static void checkGatedPair(Matrix g, Matrix u) {
        if (g.type() != u.type() || g.rows() != u.rows() || g.cols() != u.cols()) {
            throw new IllegalArgumentException("gate " + g.type() + " " + g.rows() + "x" + g.cols() + " and up " + u.type() + " " + u.rows() + "x"
                    + u.cols() + " differ");
        }
    }

    static void checkRange(String what, float[] a, long off, long len) {
        if (a == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0 || off + len > a.length) {
            throw new IllegalArgumentException(what + " needs " + len + " floats from offset " + off + " but has length " + a.length);
        }
    }
}
