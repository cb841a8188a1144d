package dev.jmoe.cli;

import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadRuntime;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.jit.OdMoeRuntime;
import dev.jmoe.experts.jit.OffloadedSourceSink;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.model.InferenceState;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Locale;

/**
 * What a run installs for expert offloading and prediction:
 * <ul>
 *   <li>{@code --policy odmoe}: just-in-time loading fed by the predictor (default {@code --predictor shadow},
 *       lookahead 2); {@code --expert-memory} optional (default: the working set k × (lookahead + 1));</li>
 *   <li>another policy with {@code --expert-memory} and a {@code --predictor}: that policy's cache, prefetching
 *       from the predictor instead of its built-in next-layer gate;</li>
 *   <li>a {@code --predictor} without offloading: the predictor runs (e.g. to measure a shadow's cost) and its
 *       predictions go nowhere;</li>
 *   <li>otherwise what {@link OffloadOptions} installs, or nothing.</li>
 * </ul>
 * Closing it removes everything it installed (the predictor included).
 */
final class PredictiveOffload implements AutoCloseable {
    static final int DEFAULT_LOOKAHEAD = 2;

    /** Just-in-time loading settings ({@code --policy odmoe}); budget null = the working set. */
    record Jit(String store, Link link, String budget, int loaderThreads) {}

    final OffloadStats stats;          // null when nothing offloads
    final ExpertPredictor predictor;   // null without one
    private final ArrayDeque<AutoCloseable> installed;

    private PredictiveOffload(OffloadStats stats, ExpertPredictor predictor, ArrayDeque<AutoCloseable> installed) {
        this.stats = stats;
        this.predictor = predictor;
        this.installed = installed;
    }

    /**
     * Installs on {@code st}: with {@code jit}, OD-MoE loading from {@code predictor}; else with {@code cache}, that
     * caching runtime, prefetching from {@code predictor} if there is one (its own next-layer prefetch off); else the
     * predictor alone. The predictor is asked for as many experts per predicted layer as it may name
     * ({@link PredictOptions#width}). {@code predictor} is closed with the result (or at once if installing fails).
     */
    static PredictiveOffload attach(InferenceState st, ExpertPredictor predictor, int lookahead, OffloadConfig cache, Jit jit) {
        var hp = st.model().hyperparams();
        int width = PredictOptions.width(predictor, hp.nExpertUsed(), hp.nExpert());
        ArrayDeque<AutoCloseable> done = new ArrayDeque<>();
        try {
            if (jit != null) {
                if (predictor == null) throw new IllegalArgumentException("--policy odmoe needs a predictor");
                OdMoeRuntime rt = OdMoeRuntime.install(st, predictor, lookahead, width, jit.store(), jit.link(), jit.budget(), jit.loaderThreads());
                done.push(rt);
                return new PredictiveOffload(rt.stats(), predictor, done);
            }
            OffloadStats stats = null;
            if (cache != null) {
                OffloadRuntime rt = OffloadRuntime.install(st, predictor == null ? cache : cache.withPrefetch(false), null);
                done.push(rt);
                stats = rt.stats();
                if (predictor != null) {
                    done.push(new PredictorHooks(st, predictor, lookahead, width, new OffloadedSourceSink(rt.source())));
                    stats.config("predictor", predictor.name());
                    stats.config("lookahead", lookahead);
                }
            } else if (predictor != null) {
                done.push(new PredictorHooks(st, predictor, lookahead, width, (pos, layer, experts, count, distance) -> { }));
            }
            return new PredictiveOffload(stats, predictor, done);
        } catch (RuntimeException | Error e) {
            closeAll(done);
            if (predictor != null) predictor.close(); // closing twice is harmless
            throw e;
        }
    }

    /** From the command-line flags; closed with the model. */
    static PredictiveOffload install(OffloadOptions offload, PredictOptions predict, LoadedModel lm, InferenceState st) throws IOException {
        boolean odmoe = offload.policy != null && offload.policy.trim().toLowerCase(Locale.ROOT).equals("odmoe");
        boolean predicting = odmoe || (predict.predictors != null && !predict.kinds(List.of("none")).equals(List.of("none")));
        if (!predicting) {
            OffloadRuntime rt = offload.install(lm, st);
            return new PredictiveOffload(rt == null ? null : rt.stats(), null, new ArrayDeque<>());
        }
        PredictOptions.Shadows shadows = new PredictOptions.Shadows(lm.model, lm.pool);
        lm.closeFirst(shadows);
        int lookahead = predict.lookahead(Math.min(DEFAULT_LOOKAHEAD, lm.model.hyperparams().nLayer()));
        if (predict.predictors == null && odmoe) predict.predictors = List.of("shadow");
        Jit jit = null;
        OffloadConfig cache = null;
        if (odmoe) {
            Link link = Link.parse(offload.link);
            if (offload.slowCompute != null) link = link.withSlowCompute(Link.parseRatio(offload.slowCompute));
            jit = new Jit(offload.store, link, offload.expertMemory == null ? null : offload.budget(lm), offload.loaderThreads != null ? offload.loaderThreads : 1);
        } else if (offload.enabled(lm)) {
            cache = offload.config(lm);
        }
        ExpertPredictor predictor = predict.forRun(st, shadows);
        PredictiveOffload p = attach(st, predictor, lookahead, cache, jit);
        lm.closeFirst(p);
        return p;
    }

    /** Puts the offloading and predictor figures into the run's stats (JSON "offload" and "predictor") and prints them if asked. */
    void report(GenerationStats s, boolean print, PrintWriter err) {
        if (stats != null) {
            stats.timing(s.promptTokens, s.firstTokenNanos, s.decodeTokens, s.decodeNanos);
            s.extra.put("offload", stats.toMap());
            if (print) err.print(stats.table());
        }
        if (predictor instanceof ShadowPredictor sp) {
            ShadowPredictor.Stats x = sp.stats();
            s.extra.put("predictor", x.toMap());
            if (print) {
                long all = x.served() + x.fallbacks();
                err.printf(Locale.ROOT, "%s: %d of %d predictions from the shadow (%.1f%%), the rest from %s; shadow thread CPU %.1f ms%s%n",
                        sp.name(), x.served(), all, all == 0 ? 0.0 : 100.0 * x.served() / all, sp.fallback().name(), x.cpuNanos() / 1e6,
                        sp.failure() != null ? "; the shadow failed: " + sp.failure() : "");
            }
        } else if (predictor != null) {
            s.extra.put("predictor", java.util.Map.of("name", predictor.name()));
        }
        err.flush();
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
