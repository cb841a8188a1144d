package dev.jmoe.experts.jit;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadRuntime;
import dev.jmoe.experts.cache.OffloadedSourceSink;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.GateLookaheadPredictor;
import dev.jmoe.experts.predict.HistoryPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.PredictTestModels;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.generate.Sampler;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Child-JVM side of {@link JitExactnessTest}: for each combo "model|mode|predictor|lookahead|link|budget" runs a
 * prompt batch and greedy decode with predictions driving loads, compares tokens and every logit bit with the
 * resident run, and prints {@code RESULT combo OK} or {@code RESULT combo FAIL why}. Modes: {@code hooks} (resident
 * experts, predictions to a sink that ignores them), {@code odmoe} (just-in-time source), {@code exact-smoe} (the
 * caching runtime with predictions in place of its next-layer gate).
 */
public final class JitExactnessHarness {
    static final int[] PROMPT = {1, 17, 42, 99, 7, 250, 3, 64, 128, 5};
    static final int DECODE = 12;

    record Run(float[] logits, int[] tokens, OffloadStats stats) {}

    public static void main(String[] args) {
        Map<String, Run> resident = new HashMap<>();
        try (Parallel pool = new Parallel(2)) {
            for (String combo : args) {
                String why;
                try {
                    String[] c = combo.split("\\|");
                    Model m = PredictTestModels.load(c[0]);
                    Run ref = resident.get(c[0]);
                    if (ref == null) {
                        ref = run(m, pool, c, true);
                        if (!Arrays.equals(ref.logits(), run(m, pool, c, true).logits())) {
                            throw new AssertionError("two resident runs differ: the kernels are not deterministic in this JVM");
                        }
                        resident.put(c[0], ref);
                    }
                    Run r = run(m, pool, c, false);
                    why = compare(m, ref, r, c);
                    if (r.stats() != null) {
                        OffloadStats s = r.stats();
                        System.out.printf("STATS %s decode: prefetch hits %d, exact hits %d, demand loads %d, prefetches issued %d, wasted %d%n", combo,
                                s.get(OffloadStats.DECODE, OffloadStats.Counter.PREFETCH_HITS), s.get(OffloadStats.DECODE, OffloadStats.Counter.EXACT_HITS),
                                s.get(OffloadStats.DECODE, OffloadStats.Counter.MISSES_LOADED),
                                s.get(OffloadStats.DECODE, OffloadStats.Counter.PREFETCHES_ISSUED),
                                s.get(OffloadStats.DECODE, OffloadStats.Counter.PREFETCHES_WASTED));
                    }
                } catch (Throwable t) {
                    why = t.toString().replace('\n', ' ');
                }
                System.out.println("RESULT " + combo + " " + (why == null ? "OK" : "FAIL " + why));
            }
        }
    }

    static ExpertPredictor predictor(String name, InferenceState st) {
        Model m = st.model();
        return switch (name) {
            case "none" -> new NoPredictor();
            case "gate" -> new GateLookaheadPredictor(m);
            case "history" -> new HistoryPredictor(m.hyperparams().nLayer(), m.hyperparams().nExpert(), 0.8);
            default -> {
                if (!name.startsWith("shadow-")) throw new IllegalArgumentException("unknown predictor " + name);
                // "shadow-q8_0" or, with an adaptive-width margin, "shadow-q8_0+m0.02"
                String[] parts = name.substring(7).split("\\+m");
                GgmlType t = GgmlType.valueOf(parts[0].toUpperCase(java.util.Locale.ROOT));
                yield new ShadowPredictor(name, st, Requantizer.copyAs(m, t, null), Alignment.EVERY_TOKEN, NextTokenRule.ARGMAX,
                        new GateLookaheadPredictor(m), ShadowPredictor.Mode.THREAD).withMargin(parts.length > 1 ? Double.parseDouble(parts[1]) : 0);
            }
        };
    }

    static Run run(Model m, Parallel pool, String[] c, boolean residentRun) {
        InferenceState st = m.newState(64, pool);
        AutoCloseable installed = null;
        OffloadStats stats = null;
        try {
            if (!residentRun) {
                int lookahead = Integer.parseInt(c[3]);
                Link link = Link.parse(c[4]);
                ExpertPredictor p = predictor(c[2], st);
                var hp = m.hyperparams();
                int width = p instanceof ShadowPredictor sp && sp.margin() > 0 ? Math.min(hp.nExpert(), 2 * hp.nExpertUsed()) : hp.nExpertUsed();
                switch (c[1]) {
                    case "hooks" -> installed = new PredictorHooks(st, p, lookahead, m.hyperparams().nExpertUsed(), (pos, l, e, n, d) -> { });
                    case "odmoe" -> {
                        String budget = c[5].equals("ws") ? null : c[5].equals("1slot") ? Long.toString(ExpertLayout.of(m).maxExpertBytes() + 64) : c[5];
                        OdMoeRuntime rt = OdMoeRuntime.install(st, p, lookahead, width, "mmap", link, budget, 2);
                        stats = rt.stats();
                        installed = rt;
                    }
                    case "exact-smoe" -> {
                        OffloadRuntime rt = OffloadRuntime.install(st, OffloadConfig.preset("exact-smoe", c[5], "direct", link).withPrefetch(false), null);
                        PredictorHooks hooks = new PredictorHooks(st, p, lookahead, width, new OffloadedSourceSink(rt.source()));
                        stats = rt.stats();
                        installed = () -> {
                            hooks.close();
                            rt.close();
                        };
                    }
                    default -> throw new IllegalArgumentException("unknown mode " + c[1]);
                }
            }
            float[] logits = st.eval(PROMPT, 0, PROMPT.length, 4);
            int[] tokens = new int[DECODE];
            for (int i = 0; i < DECODE; i++) {
                tokens[i] = Sampler.argmax(logits);
                logits = st.next(tokens[i]);
            }
            return new Run(logits, tokens, stats);
        } finally {
            if (installed != null) {
                try {
                    installed.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    static String compare(Model m, Run resident, Run run, String[] c) {
        if (!Arrays.equals(resident.tokens(), run.tokens())) {
            return "greedy tokens differ: " + Arrays.toString(resident.tokens()) + " vs " + Arrays.toString(run.tokens());
        }
        for (int i = 0; i < resident.logits().length; i++) {
            if (Float.floatToRawIntBits(resident.logits()[i]) != Float.floatToRawIntBits(run.logits()[i])) {
                return "logit " + i + " differs: " + resident.logits()[i] + " vs " + run.logits()[i];
            }
        }
        OffloadStats s = run.stats();
        if (s == null) return null;
        long uses = s.uses(OffloadStats.DECODE), want = (long) DECODE * m.hyperparams().nLayer() * m.hyperparams().nExpertUsed();
        if (uses != want) return "decode expert uses " + uses + ", expected " + want;
        if (c[1].equals("odmoe")) {
            long limit = c[5].equals("ws") ? (long) m.hyperparams().nExpertUsed() * (Integer.parseInt(c[3]) + 1) : 1;
            if (s.peakResidentBytes() > limit * ExpertLayout.of(m).maxExpertBytes()) return "peak resident " + s.peakResidentBytes() + " over the working set";
            if (!c[2].equals("none") && s.get(OffloadStats.DECODE, OffloadStats.Counter.PREFETCH_HITS) == 0 && !c[5].equals("1slot")) {
                return "no prefetch hits with predictor " + c[2];
            }
            if (c[2].equals("none") && s.get(OffloadStats.DECODE, OffloadStats.Counter.MISSES_LOADED) != want) return "without prediction every use is a demand load";
        }
        return null;
    }
}
