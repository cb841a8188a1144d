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

    /** Checks a lookahead depth: at least 1, at most one token's worth of layers (a shadow runs at most one token ahead). */
    public static int requireDepth(int depth, int nLayer) {
        if (depth < 1 || depth > nLayer) {
            throw new IllegalArgumentException("--lookahead must be between 1 and the model's " + nLayer + " layers, got " + depth);
        }
        return depth;
    }
}
