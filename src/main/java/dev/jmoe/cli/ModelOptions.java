package dev.jmoe.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options of every command that runs a model (names follow llama.cpp's where one exists). */
final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "FILE",
            description = "GGUF model file (default: the bundled default model)")
    Path model;

    @Option(names = {"-t", "--threads"}, paramLabel = "N",
            description = "compute threads (default: available cores)")
    Integer threads;

    @Option(names = {"-c", "--ctx-size"}, paramLabel = "N",
            description = "context size in tokens (default: the model's, at most 4096)")
    Integer ctxSize;

    @Option(names = {"-b", "--batch-size"}, paramLabel = "N", defaultValue = "256",
            description = "prompt tokens processed per batch (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = {"-q", "--quiet"}, description = "no progress or status lines on stderr")
    boolean quiet;

    @Option(names = "--no-warmup", description = "skip compiling the kernels on a few rows of the model before the first prompt"
            + " (the first prompt then runs partly at interpreted speed)")
    boolean noWarmup;

    @Option(names = "--no-pack", description = "keep Q4_0, Q4_K and Q6_K matrices in the file's layout: float products instead of the faster integer"
            + " ones on a regrouped copy (for comparing; the results differ by float rounding only)")
    boolean noPack;

    @Option(names = "--int8-activations", description = "round activations to 8 bits inside quantized products as llama.cpp does:"
            + " faster (packed Q4_0 decode most), and the logits follow llama.cpp's quantized run instead of the exact one")
    boolean int8Activations;

    int threadCount() {
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        if (n < 1) throw new IllegalArgumentException("--threads must be at least 1, got " + n);
        return n;
    }

    int batch() {
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        return batchSize;
    }
}
