package dev.jmoe.engine;

import java.nio.file.Path;

/**
 * How an {@link Engine} opens and runs a model. Checked when made: a wrong value fails before anything is loaded.
 *
 * @param model           the GGUF file
 * @param threads         compute threads; 0 = every available core
 * @param contextSize     tokens of KV cache per session; 0 = the model's training context, at most 4096
 * @param batchSize       prompt tokens processed per forward pass
 * @param packWeights     regroup Q4_0, Q4_K and Q6_K matrices for the integer kernels (faster; costs memory beside the mapping)
 * @param int8Activations round activations to 8 bits inside quantized products as llama.cpp does (faster; logits follow
 *                        llama.cpp's quantized run instead of the exact one). Applies to this engine only.
 * @param warmup          compile the kernels on a few rows of each weight type before the first prompt (about halves the
 *                        time to first token; at most a few seconds)
 * @param experts         where routed experts come from (default: all resident when the model fits in memory)
 * @param autoExpertMemory when {@code experts} gives no budget and the model does not fit in the memory this process may
 *                        use (a cgroup limit or MemAvailable), offload its experts with the budget the memory plan leaves
 *                        ({@code --expert-memory auto}) instead of running resident; default true (measuring commands that
 *                        need a resident baseline turn it off)
 */
public record EngineConfig(Path model, int threads, int contextSize, int batchSize, boolean packWeights, boolean int8Activations,
                           boolean warmup, ExpertRuntimeConfig experts, boolean autoExpertMemory) {
    public EngineConfig {
        if (model == null) throw new IllegalArgumentException("a model file is required (-m FILE)");
        if (threads != 0) dev.jmoe.generate.RunChecks.threads(threads); // 0: every available core
        if (contextSize < 0) throw new IllegalArgumentException("--ctx-size must be at least 1, got " + contextSize);
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        if (experts == null) experts = ExpertRuntimeConfig.RESIDENT;
    }

    /** The model with every default: all cores, the model's context (at most 4096), packed weights, exact activations. */
    public static EngineConfig of(Path model) {
        return builder(model).build();
    }

    /** Compute threads this configuration asks for. */
    public int threadCount() {
        return threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
    }

    public static Builder builder(Path model) { return new Builder(model); }

    public Builder toBuilder() {
        return new Builder(model).threads(threads).contextSize(contextSize).batchSize(batchSize).packWeights(packWeights)
                .int8Activations(int8Activations).warmup(warmup).experts(experts).autoExpertMemory(autoExpertMemory);
    }

    /** Builds an {@link EngineConfig}. */
    public static final class Builder {
        private Path model;
        private int threads, contextSize, batchSize = 256;
        private boolean packWeights = true, int8Activations, warmup = true, autoExpertMemory = true;
        private ExpertRuntimeConfig experts = ExpertRuntimeConfig.RESIDENT;

        private Builder(Path model) { this.model = model; }

        public Builder model(Path v) { model = v; return this; }
        public Builder threads(int v) { threads = v; return this; }
        public Builder contextSize(int v) { contextSize = v; return this; }
        public Builder batchSize(int v) { batchSize = v; return this; }
        public Builder packWeights(boolean v) { packWeights = v; return this; }
        public Builder int8Activations(boolean v) { int8Activations = v; return this; }
        public Builder warmup(boolean v) { warmup = v; return this; }
        public Builder experts(ExpertRuntimeConfig v) { experts = v; return this; }
        public Builder autoExpertMemory(boolean v) { autoExpertMemory = v; return this; }

        public EngineConfig build() {
            return new EngineConfig(model, threads, contextSize, batchSize, packWeights, int8Activations, warmup, experts, autoExpertMemory);
        }
    }
}
