package dev.jmoe.cli;

import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The model and how it runs (names follow llama.cpp's where one exists). */
final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "FILE", description = "GGUF model file (default: the bundled default model)")
    Path model;

    @Option(names = {"-t", "--threads"}, paramLabel = "COUNT", description = "compute threads (default, or 0: every available core)")
    Integer threads;

    @Option(names = {"-c", "--ctx-size"}, paramLabel = "TOKENS", description = "context size (default: the model's, at most 4096)")
    Integer ctxSize;

    @Option(names = {"-b", "--batch-size"}, paramLabel = "TOKENS", description = "prompt tokens processed per batch (default: ${DEFAULT-VALUE})")
    int batchSize = 256;

    @Option(names = "--no-pack", description = "keep Q4_0, Q4_K and Q6_K matrices in the file's layout: float products instead of the faster integer"
            + " ones on a regrouped copy (for comparing; the results differ by float rounding only)")
    boolean noPack;

    @Option(names = "--int8-activations", description = "round activations to 8 bits inside quantized products as llama.cpp does:"
            + " faster (packed Q4_0 decode most), and the logits follow llama.cpp's quantized run instead of the exact one")
    boolean int8Activations;

    @Option(names = "--no-warmup", description = "skip compiling the kernels on a few rows of the model before the first prompt"
            + " (the first prompt then runs partly at interpreted speed)")
    boolean noWarmup;

    @Option(names = {"-q", "--quiet"}, description = "no progress or status lines on stderr")
    boolean quiet;

    /** Takes a model given as a positional argument (MODEL) instead of -m; giving both is an error. */
    void positional(Path positional) {
        if (positional == null) return;
        if (model != null) throw new IllegalArgumentException("give the model either as MODEL or with -m, not both");
        model = positional;
    }

    /**
     * -t checked, with 0 meaning every available core as the engine and {@code speed} take it (a command that passes the
     * count on, to llama-bench or a table, gets the real number); null when -t is not given.
     */
    Integer threadCount() {
        if (threads == null) return null;
        return threads == 0 ? Runtime.getRuntime().availableProcessors() : dev.jmoe.generate.RunChecks.threads(threads);
    }

    /** The engine configuration these flags describe, with {@code defaultContext} when -c is not given (0: the model's). */
    EngineConfig config(ExpertRuntimeConfig experts, int defaultContext) throws IOException {
        Path path = model != null ? model : DefaultModel.path(quiet);
        Integer count = threadCount();
        if (ctxSize != null && ctxSize < 1) throw new IllegalArgumentException("--ctx-size must be at least 1, got " + ctxSize);
        return EngineConfig.builder(path).threads(count == null ? 0 : count).contextSize(ctxSize != null ? ctxSize : defaultContext)
                .batchSize(batchSize).packWeights(!noPack).int8Activations(int8Activations).warmup(!noWarmup).experts(experts).build();
    }
}
