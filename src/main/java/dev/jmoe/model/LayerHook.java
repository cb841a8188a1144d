package dev.jmoe.model;

/**
 * Sees each layer's FFN input before the FFN runs: predictors apply later layers' routers to it
 * (gate lookahead) and prefetchers start loads from it. Must not modify the arrays.
 */
@FunctionalInterface
public interface LayerHook {
    /**
     * @param residual the residual stream after attention, {@code n × nEmbd}
     * @param normed   the same after this layer's ffn_norm (what the router sees), {@code n × nEmbd}
     * @param pos      position of the batch's first token
     */
    void beforeFfn(int layer, int pos, int n, float[] residual, float[] normed);

    /**
     * A step over several sequences reached layer {@code layer}'s FFN; row t of the arrays is row t of {@code batch}. By
     * default a step of one sequence is heard as {@link #beforeFfn} and a step of several is not heard (see
     * {@link RoutingHook#onBatchRouting}).
     */
    default void beforeBatchFfn(int layer, Batch batch, float[] residual, float[] normed) {
        if (batch.sequences() == 1) beforeFfn(layer, batch.position(0), batch.rows(), residual, normed);
    }
}
