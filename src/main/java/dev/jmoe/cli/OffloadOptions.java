package dev.jmoe.cli;

import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadRuntime;
import dev.jmoe.model.InferenceState;
import picocli.CommandLine.Option;

/**
 * Expert-memory flags of every command that runs a model. Without {@code --expert-memory} the experts stay
 * resident (the file mapping) and nothing here is installed, unless the model does not fit in memory
 * ({@link LoadedModel#plan}): then the automatic budget applies.
 */
final class OffloadOptions {
    @Option(names = "--expert-memory", paramLabel = "BYTES|FRACTION|auto",
            description = "bytes of expert weights allowed in fast memory (512MiB, 2GB), a fraction of the model's expert bytes (1/3, 0.25, 25%%), or auto:"
                    + " what the memory limit (cgroup or MemAvailable) leaves after the JVM, heap and non-expert weights; the rest are loaded as needed."
                    + " Without it, experts stay resident if the model fits and auto applies if it does not")
    String expertMemory;

    @Option(names = "--store", paramLabel = "KIND", defaultValue = "direct",
            description = "where all experts live: direct (file read with O_DIRECT, no page cache), host (copied once into process memory), mmap (page cache) (default: ${DEFAULT-VALUE})")
    String store;

    @Option(names = "--link", paramLabel = "BANDWIDTH,LATENCY|PRESET", defaultValue = "unlimited",
            description = "emulated store-to-fast-memory link, e.g. 2GB/s,50us, or a preset: unlimited, pcie4x16, pcie3x16, nvme, emmc, sdcard (default: ${DEFAULT-VALUE})")
    String link;

    @Option(names = "--slow-compute", paramLabel = "RATIO",
            description = "how much slower the slow side computes, e.g. 10x (default: the link preset's, 1x for a plain BANDWIDTH,LATENCY)")
    String slowCompute;

    @Option(names = "--policy", paramLabel = "NAME", defaultValue = "exact-smoe",
            description = "preset: smoe (score window, alpha 0.25, prefetch, balancing), exact-smoe (the same with alpha 0), lru-ondemand (mixtral-offloading-like), fiddler, lfu-ondemand, odmoe (just-in-time loading from --predictor, no cache; generate only) (default: ${DEFAULT-VALUE})")
    String policy;

    @Option(names = "--eviction", paramLabel = "NAME", description = "override the preset's eviction: lru, lfu, score")
    String eviction;

    @Option(names = "--alpha", paramLabel = "A", description = "override the preset's SMoE substitution threshold (0 = off, exact)")
    Double alpha;

    @Option(names = "--score-window", paramLabel = "N", description = "decode steps the score eviction averages over (default 16)")
    Integer scoreWindow;

    @Option(names = "--prefetch", negatable = true, description = "override the preset: top-score prefetch of the next layer")
    Boolean prefetch;

    @Option(names = "--balance", negatable = true, description = "override the preset: compute a decode miss from the store when that beats loading it")
    Boolean balance;

    @Option(names = "--loader-threads", paramLabel = "N", description = "threads moving experts into fast memory (default 1)")
    Integer loaderThreads;

    /** Whether experts are offloaded: --expert-memory was given, or the model's memory plan offloads (it does not fit). */
    boolean enabled(LoadedModel lm) {
        return expertMemory != null || lm.plan != null && lm.plan.offloads();
    }

    /** The budget to install: the plan's bytes for auto (or no flag), else the flag as given. */
    String budget(LoadedModel lm) {
        if ((expertMemory == null || dev.jmoe.memory.MemoryPlanner.isAuto(expertMemory)) && lm.plan != null && lm.plan.offloads()) {
            return Long.toString(lm.plan.expertBudget());
        }
        return expertMemory;
    }

    /** The configuration the flags describe (offloading enabled). */
    OffloadConfig config(LoadedModel lm) {
        String expertMemory = budget(lm);
        Link l = Link.parse(link);
        if (slowCompute != null) l = l.withSlowCompute(Link.parseRatio(slowCompute));
        String s = store == null ? "direct" : store.trim().toLowerCase(java.util.Locale.ROOT);
        if (!ExpertStore.KINDS.contains(s)) throw new IllegalArgumentException("unknown --store '" + store + "'; choose one of " + ExpertStore.KINDS);
        OffloadConfig c = OffloadConfig.preset(policy, expertMemory, s, l);
        if (eviction != null) {
            if (eviction.trim().equalsIgnoreCase("belady")) {
                throw new IllegalArgumentException("--eviction belady is an offline bound replayed from a recorded trace; jmoe offload-bench reports it");
            }
            if (!EvictionPolicy.NAMES.contains(eviction.trim().toLowerCase(java.util.Locale.ROOT))) {
                throw new IllegalArgumentException("unknown --eviction '" + eviction + "'; choose one of lru, lfu, score");
            }
            c = c.withEviction(eviction.trim());
        }
        if (alpha != null) c = c.withAlpha(alpha);
        if (scoreWindow != null) c = c.withScoreWindow(scoreWindow);
        if (prefetch != null) c = c.withPrefetch(prefetch);
        if (balance != null) c = c.withBalance(balance);
        if (loaderThreads != null) c = c.withLoaderThreads(loaderThreads);
        return c;
    }

    /** Installs offloading on the state if --expert-memory was given or the plan offloads (closed with the model); returns the runtime or null. */
    OffloadRuntime install(LoadedModel lm, InferenceState st) {
        if (!enabled(lm)) return null;
        OffloadRuntime rt = OffloadRuntime.install(st, config(lm), null);
        lm.closeFirst(rt);
        if (rt.store().note() != null) System.err.println("jmoe: note: " + rt.store().note());
        return rt;
    }
}
