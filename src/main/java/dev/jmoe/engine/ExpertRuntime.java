package dev.jmoe.engine;

import dev.jmoe.experts.OffloadReport;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadRuntime;
import dev.jmoe.experts.jit.OdMoeRuntime;
import dev.jmoe.experts.cache.OffloadedSourceSink;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.experts.predict.PredictorReport;
import dev.jmoe.experts.predict.Predictors;
import dev.jmoe.experts.predict.ShadowModels;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.model.InferenceState;
import dev.jmoe.net.ClusterConfig;
import dev.jmoe.net.ClusterStats;
import dev.jmoe.net.RemoteExperts;
import dev.jmoe.net.RemoteShadowPredictor;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * What a session installs on its inference state for its experts, from an {@link ExpertRuntimeConfig}:
 * <ul>
 *   <li>{@code --policy odmoe}: just-in-time loading fed by the predictor (default shadow); the budget is optional
 *       (default: the working set k × (lookahead + 1));</li>
 *   <li>a caching policy with a budget and a predictor: the cache, prefetching from the predictor instead of its own
 *       next-layer gate;</li>
 *   <li>a caching policy with a budget: the cache with its own next-layer prefetch;</li>
 *   <li>a predictor without a budget: the predictor runs, its predictions go nowhere (to measure its cost);</li>
 *   <li>otherwise nothing.</li>
 * </ul>
 * Closing it removes everything it installed, the predictor included.
 */
final class ExpertRuntime implements AutoCloseable {
    private final OffloadStats stats;          // null when nothing offloads
    private final ExpertPredictor predictor;   // null without one
    private final ArrayDeque<AutoCloseable> installed;
    private final RemoteExperts remote;        // null unless distributed

    private ExpertRuntime(OffloadStats stats, ExpertPredictor predictor, ArrayDeque<AutoCloseable> installed) {
        this(stats, predictor, installed, null);
    }

    private ExpertRuntime(OffloadStats stats, ExpertPredictor predictor, ArrayDeque<AutoCloseable> installed, RemoteExperts remote) {
        this.stats = stats;
        this.predictor = predictor;
        this.installed = installed;
        this.remote = remote;
    }

    static final ExpertRuntime NONE = new ExpertRuntime(null, null, new ArrayDeque<>());

    static ExpertRuntime install(InferenceState st, ExpertRuntimeConfig cfg, ShadowModels shadows, Consumer<String> notices) throws IOException {
        if (cfg.resident()) return new ExpertRuntime(null, null, new ArrayDeque<>());
        if (cfg.distributed()) return distributed(st, cfg, shadows, notices);
        var hp = st.model().hyperparams();
        int lookahead = cfg.lookaheadFor(hp.nLayer());
        ArrayDeque<AutoCloseable> done = new ArrayDeque<>();
        ExpertPredictor predictor = null;
        try {
            if (cfg.predicts()) {
                predictor = Predictors.create(cfg.predictorName(),
                        new Predictors.Context(st, shadows, cfg.predictorSettings(), Predictors.Mode.RUN, NextTokenRule.ARGMAX));
            }
            int width = predictor == null ? hp.nExpertUsed() : Predictors.width(predictor, hp.nExpertUsed(), hp.nExpert());
            if (cfg.justInTime()) {
                if (predictor == null) predictor = new NoPredictor(); // every expert demand-loaded, still exact
                int loaders = cfg.loaderThreads() != null ? cfg.loaderThreads() : 1;
                // just-in-time loading has no use for predictions beyond the next token's layers (they would only widen its working set)
                OdMoeRuntime rt = OdMoeRuntime.install(st, predictor, Math.min(lookahead, hp.nLayer()), width, cfg.storeName(), cfg.resolvedLink(), cfg.expertMemory(), loaders);
                done.push(rt);
                note(rt.stats(), notices);
                return new ExpertRuntime(rt.stats(), predictor, done);
            }
            OffloadStats stats = null;
            if (cfg.offloads()) {
                OffloadConfig cache = cfg.cacheConfig();
                OffloadRuntime rt = OffloadRuntime.install(st, predictor == null ? cache : cache.withPrefetch(false), null);
                done.push(rt);
                stats = rt.stats();
                note(stats, notices);
                if (predictor != null) {
                    done.push(new PredictorHooks(st, predictor, lookahead, width, new OffloadedSourceSink(rt.source())));
                    int la = lookahead;
                    String name = predictor.name();
                    stats.settings(s -> s.withPredictor(name, la));
                }
            } else if (predictor != null) {
                done.push(new PredictorHooks(st, predictor, lookahead, width, (pos, layer, experts, count, distance) -> { }));
            }
            return new ExpertRuntime(stats, predictor, done);
        } catch (IOException | RuntimeException | Error e) {
            closeAll(done);
            if (predictor != null) predictor.close(); // closing twice is harmless
            throw e;
        }
    }

    /**
     * {@code --workers}: this node keeps only the non-expert weights; every routed expert is computed on a worker
     * ({@link RemoteExperts} as the state's expert executor) and the predictor's predictions go to the workers as load
     * commands. The predictor is the shadow node's ({@code --shadow-node}) or one in this process.
     */
    private static ExpertRuntime distributed(InferenceState st, ExpertRuntimeConfig cfg, ShadowModels shadows, Consumer<String> notices)
            throws IOException {
        var hp = st.model().hyperparams();
        ClusterConfig cluster = cfg.cluster();
        ArrayDeque<AutoCloseable> done = new ArrayDeque<>();
        ExpertPredictor predictor = null;
        try {
            RemoteExperts remote = RemoteExperts.connect(cluster, st.model(), notices);
            done.push(remote);
            st.setExpertExecutor(remote);
            done.push(() -> st.setExpertExecutor(null));
            notices.accept("distributed experts: " + remote.describe());
            if (cfg.predicts()) {
                if (cluster.shadowNode() != null && cfg.predictorName().equals("shadow")) {
                    predictor = new RemoteShadowPredictor(cluster.shadowNode(), cluster.security(), cluster.net(), st,
                            cfg.predictorSettings().alignment(), new dev.jmoe.experts.predict.GateLookaheadPredictor(st.model()), remote.stats(), notices);
                } else {
                    predictor = Predictors.create(cfg.predictorName(),
                            new Predictors.Context(st, shadows, cfg.predictorSettings(), Predictors.Mode.RUN, NextTokenRule.ARGMAX));
                }
                int width = Predictors.width(predictor, hp.nExpertUsed(), hp.nExpert());
                if (cluster.shadowToWorkers() && predictor instanceof RemoteShadowPredictor direct) direct.sendLoadsDirectly(remote, width);
                // OD-MoE's schedule: a group loads layer l + groups while the others compute, so predictions must reach that far
                int lookahead = cfg.lookahead() != null ? cfg.lookaheadFor(hp.nLayer())
                        : Math.min(hp.nLayer(), Math.max(ExpertRuntimeConfig.DEFAULT_LOOKAHEAD, remote.groups()));
                done.push(new PredictorHooks(st, predictor, lookahead, width, remote));
            }
            return new ExpertRuntime(null, predictor, done, remote);
        } catch (RuntimeException | Error e) {
            closeAll(done);
            if (predictor != null) predictor.close();
            throw e;
        }
    }

    /** The cluster's counters (distributed runs), or null. */
    ClusterStats clusterStats() { return remote == null ? null : remote.stats(); }

    private static void note(OffloadStats stats, Consumer<String> notices) {
        String n = stats.settings().storeNote();
        if (n != null) notices.accept(n);
        String b = stats.settings().budgetNote();
        if (b != null) notices.accept(b);
    }

    /** The expert runtime's counters, or null when every expert is resident. */
    OffloadStats stats() { return stats; }

    ExpertPredictor predictor() { return predictor; }

    OffloadReport offloadReport() { return stats == null ? null : stats.report(); }

    PredictorReport predictorReport() { return predictor == null ? null : PredictorReport.of(predictor); }

    /** Waits until a shadow predictor has warmed up (benchmarks measure steady state); true if it has or there is none. */
    boolean awaitPredictorWarm(double seconds) throws InterruptedException {
        if (predictor instanceof RemoteShadowPredictor remote) return remote.awaitFirstPrediction(seconds); // a shadow node's stream
        return !(predictor instanceof ShadowPredictor sp) || sp.awaitWarm(seconds);
    }

    @Override
    public void close() {
        closeAll(installed);
    }

    private static void closeAll(ArrayDeque<AutoCloseable> stack) {
        RuntimeException first = null;
        while (!stack.isEmpty()) {
            try {
                stack.pop().close();
            } catch (Exception e) {
                if (first == null) first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
        }
        if (first != null) throw first;
    }
}
