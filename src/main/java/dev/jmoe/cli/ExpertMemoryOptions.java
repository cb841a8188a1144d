package dev.jmoe.cli;

import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.experts.store.Link;
import dev.jmoe.net.ClusterConfig;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/**
 * Expert-memory flags of every command that runs a model. Without {@code --expert-memory} (and without
 * {@code --policy odmoe}) every expert stays resident and the other flags here have no effect (a warning says so).
 * The lists of valid names come from the registries ({@code ${jmoe.…}} entries of {@link Registries#bundle()}).
 */
final class ExpertMemoryOptions {
    @Option(names = "--expert-memory", paramLabel = "BYTES",
            description = "bytes of expert weights allowed in fast memory (512MiB, 2GB), a fraction of the model's expert bytes (1/3, 0.25, 25%%),"
                    + " or auto: what the memory limit (cgroup or MemAvailable) leaves after the JVM, heap and non-expert weights; the rest are loaded"
                    + " as needed (default: every expert resident if the model fits, auto if it does not)")
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

    // ---- distributed OD-MoE: this process is the main node; routed experts are computed on worker nodes (docs/distributed.md)

    @Option(names = "--workers", paramLabel = "HOST:PORT[,…]",
            description = "worker nodes (jmoe worker) that compute every routed expert; this node keeps only the non-expert weights")
    String workers;

    @Option(names = "--shadow-node", paramLabel = "HOST:PORT", description = "a shadow node (jmoe shadow) that predicts experts (default: the shadow runs in this process)")
    String shadowNode;

    @Option(names = "--group-size", paramLabel = "WORKERS", description = "workers per group; layer l goes to group l mod (workers / WORKERS) (default: the model's k)")
    Integer groupSize;

    @Option(names = "--net", paramLabel = "BANDWIDTH[,LATENCY]",
            description = "emulate the network between this node and the others in the transport, e.g. 1Gb/s,100us (default: the real network)")
    String net;

    @Option(names = "--worker-timeout", paramLabel = "SECONDS", description = "deadline of one expert computation on a worker, its load included (default 120)")
    Double workerTimeout;

    @Option(names = "--lease", paramLabel = "SECONDS", description = "a worker that answers no health check for this long is dropped and its calls go to another (default 3)")
    Double lease;

    @Option(names = "--mini-batch", paramLabel = "ROWS",
            description = "a prompt step sends an expert's rows to its worker in messages of ROWS, so the worker starts before all arrived;"
                    + " only where that keeps the bits (0: one message per expert; default " + ClusterConfig.DEFAULT_MINI_BATCH + ")")
    Integer miniBatch;

    @Option(names = "--shadow-to-workers", description = "the shadow node (--shadow-node) sends load commands straight to the workers, not through this node")
    boolean shadowToWorkers;

    @ArgGroup(validate = false, exclusive = false) NodeOptions node = new NodeOptions();

    /** The cluster these flags describe, or null without --workers. */
    ClusterConfig cluster() {
        if (workers == null) {
            if (shadowNode != null || groupSize != null || net != null || workerTimeout != null || lease != null || node.given() || miniBatch != null
                    || shadowToWorkers) {
                throw new IllegalArgumentException("--shadow-node, --group-size, --net, --worker-timeout, --lease, --mini-batch, --shadow-to-workers"
                        + " and the TLS/token flags need --workers");
            }
            return null;
        }
        return new ClusterConfig(ClusterConfig.parseList(workers, "--workers"),
                shadowNode == null ? null : ClusterConfig.Endpoint.parse(shadowNode, "--shadow-node"), groupSize, node.security(),
                net == null ? null : Link.parse(net), workerTimeout != null ? workerTimeout : ClusterConfig.DEFAULT_CALL_TIMEOUT,
                lease != null ? lease : ClusterConfig.DEFAULT_LEASE_TIMEOUT, miniBatch != null ? miniBatch : ClusterConfig.DEFAULT_MINI_BATCH, shadowToWorkers);
    }
    @Option(names = "--prefetch-rule", paramLabel = "NAME", description = "how the cache's own prefetch predicts the next layer (default: gate):%n${jmoe.prefetchRules}")
    String prefetchRule;

    @Option(names = "--balance-split", paramLabel = "ORDER", description = "order decode misses are split between loading and the slow side in:"
            + " score (SMoE's two pointers: best loaded, worst computed; default) or id (each miss in expert-id order)")
    String balanceSplit;

    @Option(names = "--slow-overlap", negatable = true, description = "the slow side computes in parallel with the fast side (default), or after the hits")
    Boolean slowOverlap;

    /** Puts these flags into {@code b}. */
    ExpertRuntimeConfig.Builder apply(ExpertRuntimeConfig.Builder b) {
        return b.cluster(cluster()).expertMemory(expertMemory).store(store).link(link).slowCompute(slowCompute == null ? null : Link.parseRatio(slowCompute))
                .policy(policy).eviction(eviction).alpha(alpha).scoreWindow(scoreWindow).prefetch(prefetch).balance(balance)
                .loaderThreads(loaderThreads).prefetchRule(prefetchRule).balanceSplit(balanceSplit).slowOverlap(slowOverlap);
    }
}
