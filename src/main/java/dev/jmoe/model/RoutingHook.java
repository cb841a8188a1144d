package dev.jmoe.model;

/**
 * Sees (and may adjust) each MoE layer's routing before its experts are computed: traces record it,
 * predictors learn from it, substitution policies rewrite it.
 *
 * @see Routing#replace
 */
@FunctionalInterface
public interface RoutingHook {
    /**
     * @param probs softmax router probabilities, {@code n × nExpert}, token-major
     * @param pos   position of the batch's first token
     */
    void onRouting(int layer, int pos, int n, float[] probs, Routing routing);
}
