package dev.jmoe.model;

/**
 * Told, in a single-token step, what the MoE layer has computed so far once the experts that were ready in fast memory
 * at the layer's start have been computed: an approximation of the layer's output available before its misses arrive
 * (SMoE predicts the next layer's experts from it). The routed experts only; a shared expert is added later.
 */
@FunctionalInterface
public interface PartialOutputHook {
    /**
     * @param layer    the MoE layer
     * @param pos      the token's position
     * @param residual the layer's residual stream before the MoE output is added (after attention), nEmbd values
     * @param partial  Σ weight·output over the routed experts computed so far, nEmbd values; both arrays are only read
     *                 during the call
     * @param computed how many of the token's k routed experts {@code partial} holds
     */
    void afterReadyExperts(int layer, int pos, float[] residual, float[] partial, int computed);
}
