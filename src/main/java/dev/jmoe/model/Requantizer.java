package dev.jmoe.model;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.tensor.TypeKernel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A lower-precision copy of a loaded model, built in memory: every weight matrix is decoded row by row and
 * re-encoded in the new type (the shadow model a predictor runs ahead of the real one). Routers and the
 * 1-D tensors (norms, biases) stay as loaded, as llama-quantize keeps them: the router decides everything
 * the shadow is there to predict. A matrix whose rows do not fit the new type's block size keeps its type.
 */
public final class Requantizer {
    private Requantizer() {}

    /** Types a copy can be made in. */
    public static boolean canEncode(GgmlType type) {
        return type != null && Kernels.isSupported(type) && Kernels.forType(type).canQuantize();
    }

    /**
     * A copy of {@code model} with its weight matrices in {@code type}. The copy shares the source's file
     * (metadata, tokenizer) and norms; its matrices live in memory the garbage collector frees with the copy.
     *
     * @param pool splits the re-encoding over rows; null runs it on the calling thread
     */
    public static Model copyAs(Model model, GgmlType type, Parallel pool) {
        if (!canEncode(type)) {
            throw new IllegalArgumentException("cannot build a " + type + " copy of the model: jmoe has no encoder for " + type);
        }
        Map<Matrix, Matrix> done = new IdentityHashMap<>(); // tied matrices stay tied
        Hyperparams hp = model.hyperparams();
        LayerWeights[] layers = new LayerWeights[hp.nLayer()];
        for (int l = 0; l < layers.length; l++) {
            LayerWeights w = model.layer(l);
            StackedExperts ex = w.experts();
            StackedExperts exCopy = ex == null ? null : new StackedExperts(ex.layer(), ex.nExpert(), ex.nFf(), ex.nEmbd(),
                    copy(ex.gate(), type, pool, done), copy(ex.up(), type, pool, done), copy(ex.down(), type, pool, done));
            layers[l] = new LayerWeights(w.attnNorm(), copy(w.wq(), type, pool, done), copy(w.wk(), type, pool, done),
                    copy(w.wv(), type, pool, done), copy(w.wo(), type, pool, done), w.bq(), w.bk(), w.bv(), w.qNorm(), w.kNorm(),
                    w.ffnNorm(), copy(w.ffnGate(), type, pool, done), copy(w.ffnUp(), type, pool, done), copy(w.ffnDown(), type, pool, done),
                    w.router(), exCopy, w.sharedGateInp(), copy(w.sharedGate(), type, pool, done), copy(w.sharedUp(), type, pool, done),
                    copy(w.sharedDown(), type, pool, done));
        }
        Matrix embd = copy(model.tokenEmbedding(), type, pool, done);
        Matrix out = copy(model.output(), type, pool, done);
        return new Model(model.file(), model.spec(), hp, embd, model.outputNorm(), out, model.ropeFreqFactors(), layers);
    }

    /** Bytes of all weight matrices of a model (what a copy of it costs in memory, norms aside). */
    public static long matrixBytes(Model model) {
        Map<Matrix, Boolean> seen = new IdentityHashMap<>();
        long sum = 0;
        sum += bytes(model.tokenEmbedding(), seen) + bytes(model.output(), seen);
        for (int l = 0; l < model.hyperparams().nLayer(); l++) {
            for (Matrix m : model.layer(l).matrices()) sum += bytes(m, seen);
        }
        return sum;
    }

    private static long bytes(Matrix m, Map<Matrix, Boolean> seen) {
        if (m == null || seen.put(m, Boolean.TRUE) != null) return 0;
        return m.byteSize();
    }

    /**
     * Checks that {@code shadow} can stand in for {@code main} (another file of the same model): same
     * architecture and hyperparameters, so layers, experts and KV positions correspond one to one.
     */
    public static void requireSameShape(Model main, Model shadow, String shadowName) {
        Hyperparams a = main.hyperparams(), b = shadow.hyperparams();
        if (!main.spec().name().equals(shadow.spec().name())) {
            throw new IllegalArgumentException("shadow model " + shadowName + " is a " + shadow.spec().name() + " model, the main model is "
                    + main.spec().name());
        }
        String[] names = {"layers", "embedding", "heads", "KV heads", "head dim", "experts", "experts per token", "expert ff", "vocabulary"};
        int[] x = {a.nLayer(), a.nEmbd(), a.nHead(), a.nHeadKv(), a.headDim(), a.nExpert(), a.nExpertUsed(), a.nFfExpert(), a.nVocab()};
        int[] y = {b.nLayer(), b.nEmbd(), b.nHead(), b.nHeadKv(), b.headDim(), b.nExpert(), b.nExpertUsed(), b.nFfExpert(), b.nVocab()};
        for (int i = 0; i < x.length; i++) {
            if (x[i] != y[i]) {
                throw new IllegalArgumentException("shadow model " + shadowName + " has " + y[i] + " " + names[i] + ", the main model "
                        + x[i] + ": the shadow must be the same model at another precision");
            }
        }
        if (a.ropeTheta() != b.ropeTheta() || a.nRot() != b.nRot() || !Objects.equals(main.spec().rope(), shadow.spec().rope())) {
            throw new IllegalArgumentException("shadow model " + shadowName + " uses other RoPE settings than the main model");
        }
    }

    private static Matrix copy(Matrix m, GgmlType type, Parallel pool, Map<Matrix, Matrix> done) {
        if (m == null) return null;
        Matrix prev = done.get(m);
        if (prev != null) return prev;
        Matrix c = reencode(m, type, pool);
        done.put(m, c);
        return c;
    }

    private static Matrix reencode(Matrix m, GgmlType type, Parallel pool) {
        if (m.cols() % type.blockSize() != 0) return m; // rows do not fit the blocks: keep as loaded
        TypeKernel from = Kernels.forType(m.type()), to = Kernels.forType(type);
        int cols = m.cols();
        long inRow = m.rowBytes(), outRow = type.bytesFor(cols);
        MemorySegment dst = Arena.ofAuto().allocate(outRow * m.rows(), 64);
        Parallel.RangeTask task = (start, end) -> {
            float[] row = new float[cols];
            for (int r = start; r < end; r++) {
                from.dequantizeRow(m.data(), r * inRow, row, 0, cols);
                to.quantizeRow(row, 0, cols, dst, r * outRow);
            }
        };
        if (pool == null) task.run(0, m.rows());
        else pool.forRange(m.rows(), 16, task);
        return new Matrix(type, dst, m.rows(), cols);
    }
}
