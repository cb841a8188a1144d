package dev.jmoe.experts.predict;

import dev.jmoe.experts.Registry;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import java.io.IOException;

/**
 * The expert predictors jmoe knows ({@code --predictor}), registered once by name with their help text. A new
 * predictor is one class implementing {@link ExpertPredictor} and one {@link #REGISTRY} registration; runs, the
 * measuring commands and the help all find it there.
 */
public final class Predictors {
    private Predictors() {}

    /** How a predictor runs: in a real run, or measured by predict-eval (inline: no timing effects). */
    public enum Mode {
        /** A run: a shadow runs ahead on its own thread, falling back to gate lookahead where it has not reached. */
        RUN,
        /** Evaluation of prediction quality alone: a shadow runs inline, every layer it can predict is ready. */
        EVALUATE_INLINE,
        /** Evaluation with the shadow on its own thread as in a run. */
        EVALUATE_THREADED
    }

    /** Everything a factory may use: the main model's state it follows, the shadow models, its settings. */
    public record Context(InferenceState main, ShadowModels shadows, PredictorSettings settings, Mode mode, NextTokenRule rule) {
        public Context {
            if (main == null) throw new IllegalArgumentException("a predictor needs the main model's state");
            if (settings == null) settings = PredictorSettings.DEFAULTS;
            if (mode == null) mode = Mode.RUN;
            if (rule == null) rule = NextTokenRule.ARGMAX;
        }

        public Model model() { return main.model(); }
    }

    /** Makes one predictor for one main state. */
    @FunctionalInterface
    public interface Factory {
        ExpertPredictor create(Context context) throws IOException;
    }

    public static final Registry<Factory> REGISTRY = new Registry<>("predictor", "--predictor");

    static {
        REGISTRY.register("shadow", "OD-MoE's emulative predictor: a lower-precision copy of the model (--shadow q8_0|q4_0, or --shadow-model FILE)"
                + " runs ahead, re-aligned with the main model's tokens and KV entries", Predictors::shadow);
        REGISTRY.register("gate", "gate lookahead: a later layer's router applied to the current residual (Mixtral-offloading, HOBBIT)",
                c -> new GateLookaheadPredictor(c.model()));
        REGISTRY.register("history", "each layer's recent routing, decayed per token (--history-decay; MoE-Infinity-like)",
                c -> new HistoryPredictor(c.model().hyperparams().nLayer(), c.model().hyperparams().nExpert(), c.settings().historyDecay()));
        REGISTRY.register("none", "no prediction", c -> new NoPredictor());
    }

    /** The predictor called {@code name}, made for {@code context}. */
    public static ExpertPredictor create(String name, Context context) throws IOException {
        return REGISTRY.get(name).create(context);
    }

    /** Whether {@code name} means no prediction at all. */
    public static boolean isNone(String name) {
        return name == null || REGISTRY.require(name).name().equals("none");
    }

    /** Experts a predictor may name per layer: k, or with a shadow margin up to 2k so runners-up fit. */
    public static int width(ExpertPredictor p, int k, int nExpert) {
        return p instanceof ShadowPredictor s && s.margin() > 0 ? Math.min(nExpert, 2 * k) : k;
    }

    private static ExpertPredictor shadow(Context c) throws IOException {
        if (c.shadows() == null) throw new IllegalArgumentException("the shadow predictor needs the shadow models of its engine");
        PredictorSettings s = c.settings();
        Model shadow = s.shadowModel() != null ? c.shadows().file(s.shadowModel()) : c.shadows().copy(s.shadowType());
        boolean threaded = c.mode() != Mode.EVALUATE_INLINE;
        ExpertPredictor fallback = threaded ? new GateLookaheadPredictor(c.model()) : new NoPredictor();
        return new ShadowPredictor(s.shadowName(c.mode() != Mode.RUN), c.main(), shadow, s.alignment(), c.rule(), fallback,
                threaded ? ShadowPredictor.Mode.THREAD : ShadowPredictor.Mode.INLINE).withMargin(s.margin());
    }
}
