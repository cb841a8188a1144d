package dev.jmoe.model;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.Parallel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiConsumer;

/**
 * Gets the model's matrix kernels JIT-compiled before the first prompt. Vector API code runs about a hundred
 * times slower until C2 has compiled it, so without this the first prompt of a run is computed at that speed
 * with full-size matrices (seconds of time to first token on a mid-sized model). Here each weight type's
 * products (one vector, a few vectors, a tile batch) run on the first rows of one of the model's own matrices
 * — the same mapped-segment class as the real weights, so the compiled code is not thrown away on the first
 * real call — until they run at compiled speed.
 */
public final class KernelWarmup {
    private KernelWarmup() {}

    /**
     * The sample is the first bytes of a real matrix read as ROWS × COLS (whole blocks of every type, so
     * well-formed): compilation is triggered by call and loop counts, and a small product reaches them with
     * little work at interpreted speed.
     */
    private static final int ROWS = 32, COLS = 256; // two groups of 16 rows: the packed 16-bit products run them as a pair
    /**
     * Vectors of the batched products: one below and two at or above every kernel's tile threshold (float tiles take 8
     * tokens side by side up to 8, 16 above: two sets of microkernels).
     */
    private static final int SMALL_BATCH = 2, TILE_BATCH = 8, WIDE_BATCH = 16;
    /**
     * Weights per second (of one round's products) above which a type counts as compiled. Compiled kernels do
     * several billion per second per thread, interpreted or C1-compiled Vector API code tens of millions.
     */
    private static final double COMPILED_WEIGHTS_PER_SECOND = 4e8;
    private static final int STABLE_ROUNDS = 3;

    /** Types already warmed in this JVM (a second model of the same types needs nothing). */
    private static final Set<String> WARM = ConcurrentHashMap.newKeySet();

    /** Compiled code is the process's; which code a type runs depends on packing and activation rounding too. */
    private static String warmKey(GgmlType type, Model model) {
        return type + (model.packsWeights() ? "/packed" : "") + (model.activationQuantization() ? "/int8" : "");
    }

    /** What a warm-up did: the types it ran, those that reached compiled speed, and how long it took. */
    public record Result(List<GgmlType> types, List<GgmlType> compiled, long nanos) {}

    /** One matrix of each weight type the model computes with (first seen wins). */
    static Map<GgmlType, Matrix> samples(Model model) {
        Map<GgmlType, Matrix> out = new LinkedHashMap<>();
        List<Matrix> all = new ArrayList<>();
        all.add(model.output());
        for (int l = 0; l < model.hyperparams().nLayer(); l++) all.addAll(model.layer(l).matrices());
        for (Matrix m : all) {
            if (m != null && Kernels.isSupported(m.type())) out.putIfAbsent(m.type(), m);
        }
        return out;
    }

    /**
     * Runs each not yet warmed type's products until they reach compiled speed or {@code budgetNanos} has
     * passed in all; {@code progress} gets the number of types done and to do.
     */
    public static Result run(Model model, Parallel pool, long budgetNanos, BiConsumer<Integer, Integer> progress) {
        try {
            return warm(model, pool, budgetNanos, progress);
        } catch (IllegalStateException | InternalError e) {
            throw Model.mappingFailure(model.file(), e); // the model file changed while its rows were being read
        }
    }

    private static Result warm(Model model, Parallel pool, long budgetNanos, BiConsumer<Integer, Integer> progress) {
        long start = System.nanoTime();
        Map<GgmlType, Matrix> samples = samples(model);
        samples.keySet().removeIf(t -> WARM.contains(warmKey(t, model)));
        List<GgmlType> compiled = new ArrayList<>();
        int done = 0;
        for (Map.Entry<GgmlType, Matrix> e : samples.entrySet()) {
            long left = budgetNanos - (System.nanoTime() - start);
            if (left <= 0) break;
            // the model's own activation rounding: warm the kernels its forward passes will run
            boolean ok = Kernels.withActivationQuantization(model.activationQuantization(), () -> warm(e.getValue(), model.packsWeights(), pool, left));
            if (ok) {
                compiled.add(e.getKey());
                WARM.add(warmKey(e.getKey(), model));
            }
            progress.accept(++done, samples.size());
        }
        return new Result(List.copyOf(samples.keySet()), List.copyOf(compiled), System.nanoTime() - start);
    }

    /** True once {@link #STABLE_ROUNDS} rounds in a row ran at compiled speed, false if the time ran out first. */
    private static boolean warm(Matrix full, boolean packed, Parallel pool, long budgetNanos) {
        int rows = ROWS, cols = COLS;
        long bytes = full.type().bytesFor((long) rows * cols);
        Matrix m = bytes <= full.data().byteSize() && full.cols() % COLS == 0
                ? new Matrix(full.type(), full.data().asSlice(0, bytes), rows, cols)
                : full.rows(0, Math.min(ROWS, full.rows()));
        // A packing model computes its Q4_0, Q4_K and Q6_K products on packed copies (experts are packed on first use): warm those kernels.
        if (packed) m = Packing.packed(m);
        rows = m.rows();
        cols = m.cols();
        float[] x = new float[WIDE_BATCH * cols];
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        float[] out = new float[WIDE_BATCH * rows];
        double weightsPerRound = (double) rows * cols * (1 + SMALL_BATCH + TILE_BATCH + WIDE_BATCH);
        long start = System.nanoTime();
        int stable = 0;
        while (System.nanoTime() - start < budgetNanos) {
            long t0 = System.nanoTime();
            Kernels.matVec(pool, m, x, 0, out, 0);
            Kernels.matMul(pool, m, x, cols, SMALL_BATCH, out, rows);
            Kernels.matMul(pool, m, x, cols, TILE_BATCH, out, rows);
            Kernels.matMul(pool, m, x, cols, WIDE_BATCH, out, rows);
            double perSecond = weightsPerRound / Math.max(1, System.nanoTime() - t0) * 1e9;
            stable = perSecond >= COMPILED_WEIGHTS_PER_SECOND ? stable + 1 : 0;
            if (stable >= STABLE_ROUNDS) return true;
        }
        return false;
    }
}
