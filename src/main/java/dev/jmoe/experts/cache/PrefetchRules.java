package dev.jmoe.experts.cache;

import dev.jmoe.experts.Registry;
import dev.jmoe.experts.predict.GateLookaheadPredictor;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.model.InferenceState;

/**
 * How the caching runtime predicts the next layer's experts for its own prefetch ({@code --prefetch-rule}, used when
 * prefetch is on and no {@code --predictor} drives it), registered once by name: help and validation come from here.
 */
public final class PrefetchRules {
    private PrefetchRules() {}

    /** Installs a rule's hooks on a state for a cache; closing the result removes them. */
    @FunctionalInterface
    public interface Rule {
        AutoCloseable install(InferenceState state, OffloadedExpertSource source, OffloadConfig config);
    }

    /** The rule a cache uses when none is named. */
    public static final String DEFAULT = "gate";

    public static final Registry<Rule> REGISTRY = new Registry<>("prefetch rule", "--prefetch-rule");

    static {
        REGISTRY.register("gate", "the next layer's router, after its ffn_norm, on this layer's residual before the MoE output, at the start of the"
                + " MoE block: its top-k (gate lookahead, Mixtral-offloading/HOBBIT)", (st, source, cfg) -> new PredictorHooks(st,
                new GateLookaheadPredictor(st.model()), 1, st.model().hyperparams().nExpertUsed(), new OffloadedSourceSink(source)));
        REGISTRY.register("smoe", "SMoE's: the next layer's router on this layer's approximate output (residual + the experts already in fast"
                + " memory) through the next layer's attention-input norm, once those experts are computed; only the experts substitution would"
                + " never replace (score >= (1+alpha) x the (k+1)-th)", (st, source, cfg) -> ApproximateOutputPrefetch.install(st, source, cfg.alpha()),
                "approx-output");
    }
}
