package dev.jmoe.cli;

import dev.jmoe.model.ArchSpec;
import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe make-model}: a random-weight GGUF of any supported architecture, shape and tensor type. */
@Command(name = "make-model", description = {
        "Write a random-weight GGUF model (with a working byte-level BPE vocabulary) for tests and benchmarks.",
        "Presets give the shapes of ../shared/llamacpp-reference: tiny-mixtral, tiny-qwen3moe, mixtral-bench, qwen3moe-bench,",
        "plus tiny-qwen2moe, tiny-olmoe, tiny-llama (dense), tiny-qwen3 (dense). Explicit options override the preset."})
final class MakeModelCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "GGUF file to write")
    Path output;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "tiny-mixtral", description = "starting shape (default: ${DEFAULT-VALUE})")
    String preset;

    @Option(names = "--arch", paramLabel = "NAME", description = "architecture: " + "llama, qwen2moe, qwen3moe, olmoe, qwen3, qwen2") String arch;
    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "F16", description = "tensor type recipe: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K (default: ${DEFAULT-VALUE})") String type;
    @Option(names = "--layers", paramLabel = "COUNT") Integer layers;
    @Option(names = "--embd", paramLabel = "SIZE") Integer embd;
    @Option(names = "--heads", paramLabel = "COUNT") Integer heads;
    @Option(names = "--kv-heads", paramLabel = "COUNT") Integer kvHeads;
    @Option(names = "--head-dim", paramLabel = "SIZE") Integer headDim;
    @Option(names = "--experts", paramLabel = "COUNT") Integer experts;
    @Option(names = "--experts-used", paramLabel = "COUNT") Integer expertsUsed;
    @Option(names = "--ff", paramLabel = "SIZE", description = "expert ff size (dense ff for dense archs)") Integer ff;
    @Option(names = "--ff-shared", paramLabel = "SIZE", description = "shared expert ff size (qwen2moe)") Integer ffShared;
    @Option(names = "--vocab", paramLabel = "SIZE") Integer vocab;
    @Option(names = "--ctx", paramLabel = "TOKENS") Integer ctx;
    @Option(names = "--rope-theta", paramLabel = "THETA") Float ropeTheta;
    @Option(names = "--rms-eps", paramLabel = "EPSILON") Float rmsEps;
    @Option(names = "--tied", description = "tie output to token embeddings (no output.weight)") boolean tied;
    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42") long seed;
    @Option(names = "--force", description = "overwrite an existing file") boolean force;

    /** arch, layers, embd, heads, kv heads, head dim, experts, used, ff, ff shared, vocab, ctx, theta, eps */
    private static final Map<String, Object[]> PRESETS = Map.of(
            "tiny-mixtral", new Object[]{"llama", 4, 256, 8, 4, 32, 8, 2, 512, 0, 512, 4096, 1e6f, 1e-5f},
            "tiny-qwen3moe", new Object[]{"qwen3moe", 4, 256, 8, 4, 64, 16, 4, 256, 0, 512, 4096, 1e6f, 1e-6f},
            "tiny-qwen2moe", new Object[]{"qwen2moe", 4, 256, 8, 4, 32, 16, 4, 128, 256, 512, 4096, 1e6f, 1e-6f},
            "tiny-olmoe", new Object[]{"olmoe", 4, 256, 8, 8, 32, 16, 4, 128, 0, 512, 4096, 1e4f, 1e-5f},
            "tiny-llama", new Object[]{"llama", 4, 256, 8, 4, 32, 0, 0, 768, 0, 512, 4096, 1e4f, 1e-5f},
            "tiny-qwen3", new Object[]{"qwen3", 4, 256, 8, 4, 64, 0, 0, 768, 0, 512, 4096, 1e6f, 1e-6f},
            "mixtral-bench", new Object[]{"llama", 8, 1024, 16, 4, 64, 8, 2, 3584, 0, 512, 4096, 1e6f, 1e-5f},
            "qwen3moe-bench", new Object[]{"qwen3moe", 8, 1024, 16, 4, 64, 32, 4, 768, 0, 512, 4096, 1e6f, 1e-6f});

    @Override
    public Integer call() throws Exception {
        Object[] p = PRESETS.get(preset);
        if (p == null) throw new IllegalArgumentException("unknown preset '" + preset + "'; choose one of " + new java.util.TreeSet<>(PRESETS.keySet()));
        if (Files.exists(output) && !force) throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
        String a = arch != null ? arch : (String) p[0];
        ArchSpec.forName(a);
        RandomModel.Shape shape = new RandomModel.Shape(a,
                or(layers, p[1]), or(embd, p[2]), or(heads, p[3]), or(kvHeads, p[4]), or(headDim, p[5]),
                or(experts, p[6]), or(expertsUsed, p[7]), or(ff, p[8]), or(ffShared, p[9]), or(vocab, p[10]), or(ctx, p[11]),
                ropeTheta != null ? ropeTheta : (Float) p[12], rmsEps != null ? rmsEps : (Float) p[13], tied, seed);
        FileType ft = FileType.parse(type);
        PrintWriter out = spec.commandLine().getOut();
        long t0 = System.nanoTime();
        try (Status status = new Status("writing " + output.getFileName(), false)) {
            RandomModel.write(shape, ft, output, (done, total) -> status.update(done, total, "tensors"));
        }
        out.printf("wrote %s: %s %s, %d layers, n_embd %d, %d experts (top-%d), %,d parameters, %s in %.1f s%n", output, a, ft,
                shape.nLayer(), shape.nEmbd(), shape.nExpert(), shape.nExpertUsed(), shape.parameterCount(),
                Units.bytes(Files.size(output)), (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    private static int or(Integer v, Object preset) {
        return v != null ? v : (Integer) preset;
    }
}
