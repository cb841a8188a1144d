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

    /**
     * The routing of a step over several sequences ({@link Batch}): row t of {@code probs} and {@code routing} is row t
     * of the batch. A hook that understands batches overrides this (the expert runtime: scores, substitution over the
     * batch; predictors: each row at its own position). By default a step of one sequence is heard as
     * {@link #onRouting} and a step of several is not heard at all: a hook that follows one sequence (a routing trace)
     * has nothing to say about them. Hooks that chain to an earlier hook pass batches on through this method.
     */
    default void onBatchRouting(int layer, Batch batch, float[] probs, Routing routing) {
        if (batch.sequences() == 1) onRouting(layer, batch.position(0), batch.rows(), probs, routing);
    }
}
