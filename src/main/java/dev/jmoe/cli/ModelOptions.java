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

    /** -t checked, not given or 0 being every available core (a command that passes the count on gets the real number). */
    int threadCount() {
        return dev.jmoe.generate.RunChecks.threadsOrEveryCore(threads);
    }

    /** The engine configuration these flags describe, with {@code defaultContext} when -c is not given (0: the model's). */
    EngineConfig config(ExpertRuntimeConfig experts, int defaultContext) throws IOException {
        Path path = model != null ? model : DefaultModel.path(quiet);
        int count = threadCount();
        if (ctxSize != null && ctxSize < 1) throw new IllegalArgumentException("--ctx-size must be at least 1, got " + ctxSize);
        return EngineConfig.builder(path).threads(count).contextSize(ctxSize != null ? ctxSize : defaultContext)
                .batchSize(batchSize).packWeights(!noPack).int8Activations(int8Activations).warmup(!noWarmup).experts(experts).build();
    }
}
