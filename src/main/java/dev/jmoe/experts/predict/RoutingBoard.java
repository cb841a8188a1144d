package dev.jmoe.experts.predict;

import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Where a shadow publishes each layer's routing as soon as it has it, for the main pass to read without
 * locks or waiting. One slot per (position mod ring, layer) holds an immutable {@link Entry}; a reader checks
 * the entry's position (a slot may still hold an older position's entry, or none yet).
 */
final class RoutingBoard {
    /**
     * One shadow routing decision.
     *
     * @param token     the token the shadow ran at {@code pos}
     * @param prevToken the token it had at {@code pos − 1} (−1 at position 0): a guess built on a wrong token is stale
     * @param ranking   expert ids by the shadow router's probability, best first
     * @param probs     those experts' probabilities (same order), or null
     */
    record Entry(int pos, int token, int prevToken, int[] ranking, float[] probs) {}

    private final int nLayer, ring;
    private final AtomicReferenceArray<Entry> slots;

    RoutingBoard(int nLayer, int ring) {
        this.nLayer = nLayer;
        this.ring = ring;
        this.slots = new AtomicReferenceArray<>(nLayer * ring);
    }

    private int index(int pos, int layer) {
        return Math.floorMod(pos, ring) * nLayer + layer;
    }

    /** Told of every entry as it is published (a shadow node forwards them to its main node); null for none. */
    private volatile java.util.function.BiConsumer<Integer, Entry> listener;

    void listen(java.util.function.BiConsumer<Integer, Entry> l) { this.listener = l; }

    void publish(int layer, Entry e) {
        slots.set(index(e.pos(), layer), e);
        var l = listener;
        if (l != null) l.accept(layer, e);
    }

    /** The entry for (pos, layer), or null if the shadow has not published it (or it was cleared). */
    Entry get(int pos, int layer) {
        Entry e = slots.get(index(pos, layer));
        return e != null && e.pos() == pos ? e : null;
    }

    /** Drops every entry for positions ≥ pos (the shadow is redoing them). */
    void clearFrom(int pos) {
        for (int i = 0; i < slots.length(); i++) {
            Entry e = slots.get(i);
            if (e != null && e.pos() >= pos) slots.compareAndSet(i, e, null);
        }
    }
}
