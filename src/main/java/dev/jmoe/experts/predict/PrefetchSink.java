package dev.jmoe.experts.predict;

/**
 * Where predictions go to start loads early: an expert source that can fetch experts ahead of use.
 * Called on the main pass's thread; must not block.
 */
public interface PrefetchSink {
    /** The main pass is at ({@code pos}, {@code layer}), about to run its FFN (called before that layer's routing). */
    default void at(int pos, int layer, int n) {}

    /**
     * Experts predicted for layer {@code layer} of position {@code pos}, best first, {@code distance} layers
     * before the pass gets there. The same target is usually asked for again, with fresher predictions, as the
     * pass comes closer.
     */
    void prefetch(int pos, int layer, int[] experts, int count, int distance);

    /**
     * Experts predicted for a layer more than a token's worth of layers ahead: too far to load now (a prefetch for that
     * layer would displace the nearer one), but what a cache that evicts by predicted next use wants to know. Ignored by
     * default.
     */
    default void foresee(int pos, int layer, int[] experts, int count, int distance) {}
}
