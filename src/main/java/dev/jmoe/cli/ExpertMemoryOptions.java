package dev.jmoe.cli;

import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.experts.store.Link;
import picocli.CommandLine.Option;

/**
 * Expert-memory flags of every command that runs a model. Without {@code --expert-memory} (and without
 * {@code --policy odmoe}) every expert stays resident and the other flags here have no effect (a warning says so).
 * The lists of valid names come from the registries ({@code ${jmoe.…}} entries of {@link Registries#bundle()}).
 */
final class ExpertMemoryOptions {
    @Option(names = "--expert-memory", paramLabel = "BYTES",
            description = "bytes of expert weights allowed in fast memory (512MiB, 2GB) or a fraction of the model's expert bytes (1/3, 0.25, 25%%);"
                    + " the rest are loaded as needed (default: every expert resident)")
    String expertMemory;

    @Option(names = "--store", paramLabel = "NAME", description = "where every expert lives (default: direct):%n${jmoe.stores}")
    String store;

    @Option(names = "--link", paramLabel = "LINK",
            description = "emulated store-to-fast-memory link: BANDWIDTH[,LATENCY] such as 2GB/s,50us, or a preset (default: unlimited):%n${jmoe.links}")
    String link;

    @Option(names = "--slow-compute", paramLabel = "RATIO",
            description = "how much slower the slow side computes, e.g. 10x (default: the link preset's, 1x for BANDWIDTH,LATENCY)")
    String slowCompute;

    @Option(names = "--policy", paramLabel = "NAME", description = "preset (default: exact-smoe):%n${jmoe.policies}")
    String policy;

    @Option(names = "--eviction", paramLabel = "NAME", description = "override the preset's eviction policy:%n${jmoe.evictions.online}")
    String eviction;

    @Option(names = "--alpha", paramLabel = "ALPHA", description = "override the preset's SMoE substitution threshold (0 = off, exact)")
    Double alpha;

    @Option(names = "--score-window", paramLabel = "STEPS", description = "decode steps the score eviction averages over (default 16)")
    Integer scoreWindow;

    @Option(names = "--prefetch", negatable = true, description = "override the preset: prefetch the next layer's predicted top-score experts")
    Boolean prefetch;

    @Option(names = "--balance", negatable = true, description = "override the preset: compute a decode miss from the store when that beats loading it")
    Boolean balance;

    @Option(names = "--loader-threads", paramLabel = "COUNT", description = "threads moving experts into fast memory (default 1)")
    Integer loaderThreads;

    @Option(names = "--prefetch-rule", paramLabel = "NAME", description = "how the cache's own prefetch predicts the next layer (default: gate):%n${jmoe.prefetchRules}")
    String prefetchRule;

    @Option(names = "--balance-split", paramLabel = "ORDER", description = "order decode misses are split between loading and the slow side in:"
            + " score (SMoE's two pointers: best loaded, worst computed; default) or id (each miss in expert-id order)")
    String balanceSplit;

    @Option(names = "--slow-overlap", negatable = true, description = "the slow side computes in parallel with the fast side (default), or after the hits")
    Boolean slowOverlap;

    /** Puts these flags into {@code b}. */
    ExpertRuntimeConfig.Builder apply(ExpertRuntimeConfig.Builder b) {
        return b.expertMemory(expertMemory).store(store).link(link).slowCompute(slowCompute == null ? null : Link.parseRatio(slowCompute))
                .policy(policy).eviction(eviction).alpha(alpha).scoreWindow(scoreWindow).prefetch(prefetch).balance(balance)
                .loaderThreads(loaderThreads).prefetchRule(prefetchRule).balanceSplit(balanceSplit).slowOverlap(slowOverlap);
    }
}
