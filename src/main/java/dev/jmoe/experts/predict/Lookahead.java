package dev.jmoe.experts.predict;

/**
 * The geometry of "layers ahead": the main pass visits (position, layer) in order, layer fastest, and a
 * lookahead distance counts steps along that order, crossing into the next position after the last layer.
 */
public final class Lookahead {
    private Lookahead() {}

    /** Position of the layer {@code distance} steps after ({@code pos}, {@code layer}). */
    public static int targetPos(int pos, int layer, int distance, int nLayer) {
        return pos + (layer + distance) / nLayer;
    }

    /** Layer index of the step {@code distance} after ({@code pos}, {@code layer}). */
    public static int targetLayer(int layer, int distance, int nLayer) {
        return (layer + distance) % nLayer;
    }

    /** One number per (position, layer) along the pass order. */
    public static long step(int pos, int layer, int nLayer) {
        return (long) pos * nLayer + layer;
    }

    /** Most tokens' worth of layers a lookahead may span: a shadow speculates at most this many tokens past the current one. */
    public static final int MAX_TOKENS = 2;

    /**
     * Checks a lookahead depth: at least 1, at most {@link #MAX_TOKENS} tokens' worth of layers. Up to the layer count a
     * prediction reaches the same layer of the next token; beyond it, the next token's later layers and the token after
     * (a shadow then speculates two tokens past the current one).
     */
    public static int requireDepth(int depth, int nLayer) {
        if (depth < 1 || depth > MAX_TOKENS * nLayer) {
            throw new IllegalArgumentException("--lookahead must be between 1 and twice the model's " + nLayer + " layers (" + MAX_TOKENS * nLayer
                    + ": two tokens ahead), got " + depth);
        }
        return depth;
    }

    /** Tokens past the current one a lookahead of {@code depth} layer steps reaches (1 up to the layer count, then 2). */
    public static int tokensAhead(int depth, int nLayer) {
        return Math.max(1, (depth + nLayer - 1) / nLayer);
    }
}
