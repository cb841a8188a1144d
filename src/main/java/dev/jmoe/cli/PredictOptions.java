package dev.jmoe.cli;

import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.GateLookaheadPredictor;
import dev.jmoe.experts.predict.HistoryPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Option;

/** Expert-prediction flags: which predictor, how far ahead, and how the shadow model is made and aligned. */
final class PredictOptions {
    static final List<String> KINDS = List.of("shadow", "gate", "history", "none");

    @Option(names = "--predictor", split = ",", paramLabel = "NAME",
            description = "expert predictor: shadow, gate, history or none (predict-eval takes a list; default there: shadow,gate,history)")
    List<String> predictors;

    @Option(names = "--lookahead", paramLabel = "H", description = "layers ahead to predict and prefetch (1 … layers)")
    Integer lookahead;

    @Option(names = "--shadow", split = ",", paramLabel = "TYPE",
            description = "shadow model: a copy of the main weights re-encoded at load, q8_0 or q4_0 (predict-eval takes a list; default q8_0)")
    List<String> shadowTypes;

    @Option(names = "--shadow-model", paramLabel = "FILE", description = "shadow model from another GGUF file of the same model")
    Path shadowModel;

    @Option(names = "--align-period", paramLabel = "TOKENS[,KV]", defaultValue = "1,1",
            description = "shadow re-alignment: take the main token every TOKENS positions, overwrite its KV every KV positions; 0 = off (default: ${DEFAULT-VALUE})")
    String alignPeriod;

    /** A run's default: the near ties below cost a few percent extra loads and close most of the misses at width k. */
    static final double DEFAULT_RUN_MARGIN = 0.02;

    @Option(names = "--shadow-margin", split = ",", paramLabel = "M",
            description = "adaptive width: also predict a shadow runner-up within M (relative) of its k-th expert's probability, a near tie the"
                    + " main router may break the other way; 0 = exactly k (default " + DEFAULT_RUN_MARGIN + "; predict-eval takes a list,"
                    + " default there 0," + DEFAULT_RUN_MARGIN + ": every shadow at both widths)")
    List<Double> shadowMargins;

    @Option(names = "--history-decay", paramLabel = "D", defaultValue = "0.8",
            description = "history predictor: per-token decay of activation counts, 0 = previous token only, 1 = frequency (default: ${DEFAULT-VALUE})")
    double historyDecay;

    List<String> kinds(List<String> defaults) {
        List<String> ks = predictors == null || predictors.isEmpty() ? defaults : predictors;
        List<String> out = new ArrayList<>();
        for (String k : ks) {
            String n = k.trim().toLowerCase(Locale.ROOT);
            if (!KINDS.contains(n)) throw new IllegalArgumentException("unknown --predictor '" + k + "'; choose from " + KINDS);
            if (!out.contains(n)) out.add(n);
        }
        return out;
    }

    int lookahead(int dflt) { return lookahead != null ? lookahead : dflt; }

    /** Experts a predictor may name per layer: k, or with a shadow margin up to 2k so runners-up fit. */
    static int width(ExpertPredictor p, int k, int nExpert) {
        return p instanceof ShadowPredictor s && s.margin() > 0 ? Math.min(nExpert, 2 * k) : k;
    }

    /** The margins to evaluate (each shadow once per margin), checked. */
    List<Double> evaluationMargins() {
        if (shadowMargins == null || shadowMargins.isEmpty()) return List.of(0.0, DEFAULT_RUN_MARGIN);
        for (double m : shadowMargins) ShadowPredictor.checkMargin(m);
        return List.copyOf(shadowMargins);
    }

    /** The one margin a run uses. */
    double runMargin() {
        if (shadowMargins == null || shadowMargins.isEmpty()) return DEFAULT_RUN_MARGIN;
        if (shadowMargins.size() != 1) throw new IllegalArgumentException("a run takes one --shadow-margin, got " + shadowMargins);
        return ShadowPredictor.checkMargin(shadowMargins.get(0));
    }

    /** Report name of a shadow: its kind, plus the margin when it has one ("shadow-q8_0", "shadow-q8_0+m0.02"). */
    private static String shadowName(String base, double margin) {
        return margin > 0 ? base + "+m" + BigDecimal.valueOf(margin).stripTrailingZeros().toPlainString() : base;
    }

    Alignment alignment() { return Alignment.parse(alignPeriod); }

    List<GgmlType> shadowTypes(List<String> defaults) {
        List<String> ts = shadowTypes == null || shadowTypes.isEmpty() ? defaults : shadowTypes;
        List<GgmlType> out = new ArrayList<>();
        for (String t : ts) {
            GgmlType g;
            try {
                g = GgmlType.valueOf(t.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown --shadow type '" + t + "'; use q8_0 or q4_0 (or f16, bf16, f32)");
            }
            if (!Requantizer.canEncode(g)) throw new IllegalArgumentException("--shadow " + t + ": jmoe cannot encode " + g + " weights");
            if (!out.contains(g)) out.add(g);
        }
        return out;
    }

    /** Shadow models made or opened for one main model, reused across runs and closed together. */
    static final class Shadows implements AutoCloseable {
        private final Model main;
        private final Parallel pool;
        private final Map<String, Model> models = new LinkedHashMap<>();
        private final List<GgufFile> files = new ArrayList<>();

        Shadows(Model main, Parallel pool) {
            this.main = main;
            this.pool = pool;
        }

        /** The main model re-encoded in {@code type} (made once). */
        Model copy(GgmlType type) {
            return models.computeIfAbsent("shadow-" + type.name().toLowerCase(Locale.ROOT), n -> Requantizer.copyAs(main, type, pool));
        }

        /** Another file of the same model, checked to have the same shape (opened once). */
        Model file(Path path) throws IOException {
            String name = "shadow-file";
            Model m = models.get(name);
            if (m != null) return m;
            if (!Files.isRegularFile(path)) throw new IllegalArgumentException("--shadow-model file not found: " + path);
            GgufFile f = GgufFile.open(path);
            try {
                m = Model.load(f);
                Requantizer.requireSameShape(main, m, path.toString());
            } catch (RuntimeException e) {
                f.close();
                throw e;
            }
            files.add(f);
            models.put(name, m);
            return m;
        }

        @Override
        public void close() {
            for (GgufFile f : files) f.close();
        }
    }

    /**
     * The predictors to evaluate side by side on {@code main}: each shadow (one per --shadow type, plus
     * --shadow-model), then the baselines. A shadow runs inline (every layer it can predict is ready: its quality
     * without timing effects, no fallback) or, {@code threaded}, on its own thread as in a run, falling back to
     * gate lookahead for layers it has not reached.
     */
    List<ExpertPredictor> forEvaluation(InferenceState main, Shadows shadows, NextTokenRule rule, boolean threaded) throws IOException {
        Model m = main.model();
        List<ExpertPredictor> out = new ArrayList<>();
        try {
            for (String k : kinds(List.of("shadow", "gate", "history"))) {
                switch (k) {
                    case "shadow" -> {
                        List<Double> margins = evaluationMargins();
                        if (shadowModel == null || shadowTypes != null) {
                            for (GgmlType t : shadowTypes(List.of("q8_0"))) {
                                for (double margin : margins) {
                                    out.add(evaluated("shadow-" + t.name().toLowerCase(Locale.ROOT), main, shadows.copy(t), rule, threaded, margin));
                                }
                            }
                        }
                        if (shadowModel != null) {
                            for (double margin : margins) out.add(evaluated("shadow-file", main, shadows.file(shadowModel), rule, threaded, margin));
                        }
                    }
                    case "gate" -> out.add(new GateLookaheadPredictor(m));
                    case "history" -> out.add(new HistoryPredictor(m.hyperparams().nLayer(), m.hyperparams().nExpert(), historyDecay));
                    default -> out.add(new NoPredictor());
                }
            }
        } catch (IOException | RuntimeException e) {
            out.forEach(ExpertPredictor::close);
            throw e;
        }
        return out;
    }

    /** A shadow for evaluation: inline with no fallback, or threaded with gate lookahead behind it. */
    private ExpertPredictor evaluated(String kind, InferenceState main, Model shadow, NextTokenRule rule, boolean threaded, double margin) {
        return new ShadowPredictor(shadowName(kind, margin), main, shadow, alignment(), rule,
                threaded ? new GateLookaheadPredictor(main.model()) : new NoPredictor(),
                threaded ? ShadowPredictor.Mode.THREAD : ShadowPredictor.Mode.INLINE).withMargin(margin);
    }

    /**
     * The one predictor a run prefetches with (default: none). A shadow runs on its own thread and falls back
     * to gate lookahead for layers it has not reached.
     */
    ExpertPredictor forRun(InferenceState main, Shadows shadows) throws IOException {
        List<String> ks = kinds(List.of("none"));
        if (ks.size() != 1) throw new IllegalArgumentException("a run takes one --predictor, got " + ks);
        Model m = main.model();
        return switch (ks.get(0)) {
            case "shadow" -> {
                Model s;
                String name;
                if (shadowModel != null) {
                    if (shadowTypes != null) throw new IllegalArgumentException("give either --shadow TYPE or --shadow-model FILE, not both");
                    s = shadows.file(shadowModel);
                    name = "shadow-file";
                } else {
                    List<GgmlType> ts = shadowTypes(List.of("q8_0"));
                    if (ts.size() != 1) throw new IllegalArgumentException("a run takes one --shadow type, got " + ts);
                    s = shadows.copy(ts.get(0));
                    name = "shadow-" + ts.get(0).name().toLowerCase(Locale.ROOT);
                }
                double margin = runMargin();
                yield new ShadowPredictor(name, main, s, alignment(), NextTokenRule.ARGMAX, new GateLookaheadPredictor(m), ShadowPredictor.Mode.THREAD)
                        .withMargin(margin);
            }
            case "gate" -> new GateLookaheadPredictor(m);
            case "history" -> new HistoryPredictor(m.hyperparams().nLayer(), m.hyperparams().nExpert(), historyDecay);
            default -> new NoPredictor();
        };
    }
}
