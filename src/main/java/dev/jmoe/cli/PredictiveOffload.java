package dev.jmoe.cli;

import dev.jmoe.experts.Link;
import dev.jmoe.experts.OffloadConfig;
import dev.jmoe.experts.OffloadRuntime;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.jit.OdMoeRuntime;
import dev.jmoe.experts.jit.OffloadedSourceSink;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.model.InferenceState;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * What a run installs for expert offloading and prediction, from the two flag groups:
 * <ul>
 *   <li>{@code --policy odmoe}: just-in-time loading fed by the predictor (default {@code --predictor shadow},
 *       lookahead 2); {@code --expert-memory} optional (default: the working set k × (lookahead + 1));</li>
 *   <li>another policy with {@code --expert-memory} and a {@code --predictor}: that policy's cache, prefetching
 *       from the predictor instead of its built-in next-layer gate;</li>
 *   <li>a {@code --predictor} without offloading: the predictor runs (e.g. to measure a shadow's cost) and its
 *       predictions go nowhere;</li>
 *   <li>otherwise what {@link OffloadOptions} installs, or nothing.</li>
 * </ul>
 * Everything installed is closed with the model ({@link LoadedModel#closeFirst}).
 */
final class PredictiveOffload {
    static final int DEFAULT_LOOKAHEAD = 2;

    final OffloadStats stats;          // null when nothing offloads
    final ExpertPredictor predictor;   // null without --predictor / odmoe

    private PredictiveOffload(OffloadStats stats, ExpertPredictor predictor) {
        this.stats = stats;
        this.predictor = predictor;
    }

    static boolean odmoe(OffloadOptions o) {
        return o.policy != null && o.policy.trim().toLowerCase(Locale.ROOT).equals("odmoe");
    }

    static PredictiveOffload install(OffloadOptions offload, PredictOptions predict, LoadedModel lm, InferenceState st) throws IOException {
        boolean odmoe = odmoe(offload);
        boolean predicting = odmoe || (predict.predictors != null && !predict.kinds(java.util.List.of("none")).equals(java.util.List.of("none")));
        if (!predicting) {
            OffloadRuntime rt = offload.install(lm, st);
            return new PredictiveOffload(rt == null ? null : rt.stats(), null);
        }
        PredictOptions.Shadows shadows = new PredictOptions.Shadows(lm.model, lm.pool);
        lm.closeFirst(shadows);
        int lookahead = predict.lookahead(Math.min(DEFAULT_LOOKAHEAD, lm.model.hyperparams().nLayer()));
        int k = lm.model.hyperparams().nExpertUsed();
        if (predict.predictors == null && odmoe) predict.predictors = java.util.List.of("shadow");
        ExpertPredictor p = predict.forRun(st, shadows);
        if (odmoe) {
            Link link = Link.parse(offload.link);
            if (offload.slowCompute != null) link = link.withSlowCompute(Link.parseRatio(offload.slowCompute));
            int loaders = offload.loaderThreads != null ? offload.loaderThreads : 1;
            OdMoeRuntime rt = OdMoeRuntime.install(st, p, lookahead, offload.store, link, offload.expertMemory, loaders);
            lm.closeFirst(rt);
            return new PredictiveOffload(rt.stats(), p);
        }
        if (!offload.enabled()) {
            PredictorHooks hooks = new PredictorHooks(st, p, lookahead, k, (pos, layer, experts, count, distance) -> { });
            lm.closeFirst(hooks);
            return new PredictiveOffload(null, p);
        }
        OffloadConfig cfg = offload.config().withPrefetch(false); // the predictor prefetches instead of the next-layer gate
        OffloadRuntime rt = OffloadRuntime.install(st, cfg, null);
        lm.closeFirst(rt);
        PredictorHooks hooks = new PredictorHooks(st, p, lookahead, k, new OffloadedSourceSink(rt.source()));
        lm.closeFirst(hooks); // closed before the runtime (a stack)
        rt.stats().config("predictor", p.name());
        rt.stats().config("lookahead", lookahead);
        return new PredictiveOffload(rt.stats(), p);
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
                err.printf(Locale.ROOT, "%s: %d of %d predictions from the shadow (%.1f%%), the rest from %s; shadow thread CPU %.1f ms (%.2f ms/token)%s%n",
                        sp.name(), x.served(), all, all == 0 ? 0.0 : 100.0 * x.served() / all, sp.fallback().name(), x.cpuNanos() / 1e6,
                        s.decodeTokens + s.promptTokens == 0 ? 0.0 : x.cpuNanos() / 1e6 / Math.max(1, s.decodeTokens),
                        sp.failure() != null ? "; the shadow failed: " + sp.failure() : "");
            }
        } else if (predictor != null) {
            s.extra.put("predictor", java.util.Map.of("name", predictor.name()));
        }
        err.flush();
    }
}
