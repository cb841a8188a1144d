package dev.jmoe.experts.predict;

/**
 * Predicts which experts later layers will route to, from what the main forward pass has shown so far.
 *
 * <p>Layers are counted along the pass: from layer {@code l} of position {@code t}, distance {@code d}
 * names layer {@code (l + d) mod nLayer} of position {@code t + (l + d) / nLayer}, so a lookahead past the
 * last layer reaches into the next token (see {@link Lookahead}). The main pass drives a predictor through
 * {@link PredictorHooks}: {@link #onTokens} when it starts tokens, {@link #onLayer} at each layer's FFN input
 * (single-token steps only), {@link #observe} with each layer's real routing, and {@link #predict} at any time
 * after {@code onLayer}. All calls come from the main pass's thread; {@code predict} never blocks.
 */
public interface ExpertPredictor extends AutoCloseable {
    /** Short name for reports ("shadow-q8_0", "gate", "history", "none"). */
    String name();

    /** The main pass starts {@code tokens[off .. off+n)} at positions {@code pos ..}; earlier positions are complete. */
    default void onTokens(int pos, int[] tokens, int off, int n) {}

    /**
     * The main pass reached layer {@code layer}'s FFN for the single token at {@code pos}.
     *
     * @param residual the residual stream after attention (at least nEmbd values; only read during the call)
     * @param normed   the same after the layer's ffn_norm (what its router sees)
     */
    default void onLayer(int layer, int pos, float[] residual, float[] normed) {}

    /**
     * The real routing of one token: the k experts chosen at {@code layer} for position {@code pos} (best
     * first) and the router's softmax probabilities {@code probs[probsOff .. probsOff+nExpert)}.
     */
    default void observe(int layer, int pos, int[] experts, int k, float[] probs, int probsOff) {}

    /**
     * Writes the experts predicted for the layer {@code distance} layers after ({@code pos}, {@code layer}),
     * most likely first, into {@code out} (at most {@code out.length}); returns how many were written (0 when
     * the predictor has nothing to say). Must return at once.
     */
    int predict(int pos, int layer, int distance, int[] out);

    /**
     * Told once, before the first token, how many layer steps ahead the caller will ask ({@link #predict}'s largest
     * distance), so a predictor that runs ahead can run far enough: a shadow speculates as many tokens as that spans.
     */
    default void lookahead(int depth) {}

    @Override default void close() {}
}
