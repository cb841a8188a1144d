package dev.jmoe.model;

import java.util.List;

/**
 * Where a MoE layer's routed experts are computed when that is not this process: the seam a distributed run
 * plugs into. With an executor on the {@link InferenceState}, the MoE layer gathers each used expert's rows of
 * normed hidden state, hands the whole layer to {@link #computeLayer} in one call (so a remote implementation
 * sends all of them at once and they overlap), then scatters the returned rows into the token slots and sums them
 * in selection order exactly as the local path does. Without one (the default) the layer reads experts from its
 * {@link ExpertSource} and computes them itself.
 *
 * <p>An implementation must return, for each call, exactly what {@link Model#computeExpert} computes for that
 * expert on those rows with the model's packing and activation rounding: that is what keeps a distributed run
 * bit-identical to a single-node one.
 */
public interface ExpertExecutor {
    /**
     * One expert's share of a layer: {@code rows} tokens' normed hidden states in {@code input} (row-major,
     * {@code rows × nEmbd}); the implementation writes the expert's output rows into {@code output} (same shape).
     */
    record Call(int expert, int rows, float[] input, float[] output) {}

    /**
     * Computes every call of layer {@code layer} (the batch starts at position {@code position}, {@code tokens}
     * long) and returns when all outputs are written. Called on the forward pass's thread.
     */
    void computeLayer(int layer, int position, int tokens, List<Call> calls);
}
