package dev.jmoe.cli;

import dev.jmoe.generate.Tokenizer;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KernelWarmup;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Parallel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A model file opened for running: mapping, weights, tokenizer and compute threads, closed together. */
final class LoadedModel implements AutoCloseable {
    final Path path;
    final GgufFile file;
    final Model model;
    final Tokenizer tokenizer;
    final Parallel pool;
    final int ctxSize;
    final int batch;

    private LoadedModel(Path path, GgufFile file, Model model, Tokenizer tokenizer, Parallel pool, int ctxSize, int batch) {
        this.path = path;
        this.file = file;
        this.model = model;
        this.tokenizer = tokenizer;
        this.pool = pool;
        this.ctxSize = ctxSize;
        this.batch = batch;
    }

    /** At most this long compiling kernels before the first prompt (a slow or busy machine stops there). */
    private static final long WARMUP_BUDGET_NANOS = 4_000_000_000L;

    /** The memory plan the model was loaded under (resident or offloaded, heap, expert budget). */
    dev.jmoe.memory.MemoryPlan plan;

    static LoadedModel open(ModelOptions o) throws IOException {
        return open(o, null);
    }

    /** With {@code offload} (the command's expert-memory flags, or null), the plan may offload experts ({@link OffloadOptions#enabled(LoadedModel)}). */
    static LoadedModel open(ModelOptions o, OffloadOptions offload) throws IOException {
        Path path = o.model != null ? o.model : DefaultModel.path(o.quiet);
        if (!Files.exists(path)) throw new IllegalArgumentException("model file not found: " + path);
        if (Files.isDirectory(path)) throw new IllegalArgumentException("model path is a directory, not a GGUF file: " + path);
        int threads = o.threadCount();
        int batch = o.batch();
        GgufFile file = null;
        Parallel pool = null;
        boolean before = Kernels.activationQuantization();
        try (Status status = new Status("loading " + path.getFileName(), o.quiet)) {
            file = GgufFile.open(path);
            status.update(1, 3, "mapped");
            var planned = dev.jmoe.memory.ModelMemory.load(file, offload == null ? null : offload.expertMemory, o.ctxSize, o.noPack, offload != null,
                    (spec, experts) -> dev.jmoe.experts.cache.OffloadConfig.parseBudget(spec, experts));
            Model model = planned.model();
            if (o.int8Activations) Kernels.setActivationQuantization(true); // process-wide; close() restores it
            status.update(2, 3, "weights");
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            status.update(3, 3, "tokenizer");
            int ctx = planned.ctx();
            if (planned.status() != null && !o.quiet) System.err.println("jmoe: " + planned.status());
            pool = new Parallel(threads);
            if (!o.noWarmup) {
                try (Status warming = new Status("warming kernels", o.quiet)) {
                    KernelWarmup.run(model, pool, WARMUP_BUDGET_NANOS, (done, types) -> warming.update(done, types, "weight types"));
                }
            }
            LoadedModel loaded = new LoadedModel(path, file, model, tokenizer, pool, ctx, batch);
            loaded.plan = planned.plan();
            loaded.activationQuantizationBefore = before;
            return loaded;
        } catch (IOException | RuntimeException e) {
            Kernels.setActivationQuantization(before);
            if (pool != null) pool.close();
            if (file != null) file.close();
            throw e;
        }
    }

    InferenceState newState() {
        return model.newState(ctxSize, pool);
    }

    /** The process-wide rounding setting before --int8-activations changed it. */
    private boolean activationQuantizationBefore;

    private final java.util.ArrayDeque<AutoCloseable> closeFirst = new java.util.ArrayDeque<>();

    /** Closes {@code c} (e.g. an expert-offloading runtime that reads the model's file) before the model itself. */
    void closeFirst(AutoCloseable c) {
        if (c != null) closeFirst.push(c);
    }

    @Override
    public void close() {
        while (!closeFirst.isEmpty()) {
            try {
                closeFirst.pop().close();
            } catch (Exception e) {
                System.err.println("jmoe: warning: " + e.getMessage());
            }
        }
        pool.close();
        file.close();
        Kernels.setActivationQuantization(activationQuantizationBefore);
    }
}
