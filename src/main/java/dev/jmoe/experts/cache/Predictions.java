package dev.jmoe.experts.cache;

import java.util.Arrays;

/**
 * What a predictor says about the near future, as a cache sees it: for each expert (key {@code layer · nExpert + expert})
 * the step at which a live prediction says it will next be used. Steps are a clock that only moves forward: in a run the
 * pass's layer steps ({@code position · nLayer + layer}, see {@code Lookahead#step}), in a replay the trace's step index.
 * A prediction for a step the clock has passed is stale and counts as none; a clock that goes back (a rewound sequence)
 * drops every prediction.
 *
 * <p>Whoever sees predictions writes them here ({@link #predict}: the live cache from its predictor or its own next-layer
 * prefetch, the replayer from its predictor model) and moves the clock ({@link #advance}); eviction policies that look
 * ahead read it through {@link EvictionPolicy.Context#predictions()}. Not thread-safe: the live cache guards it with its
 * lock.
 */
public final class Predictions {
    /** No live prediction names the expert. */
    public static final long NEVER = Long.MAX_VALUE;

    private final int nExpert;
    private final long[] next;   // [key] -> step of the expert's predicted next use, or NEVER
    private long now = Long.MIN_VALUE;
    private long updates;

    public Predictions(int nLayer, int nExpert) {
        if (nLayer < 1 || nExpert < 1) throw new IllegalArgumentException("predictions need at least one layer and one expert");
        this.nExpert = nExpert;
        this.next = new long[nLayer * nExpert];
        Arrays.fill(next, NEVER);
    }

    /** The clock: the step the pass (or replay) is at. */
    public long now() { return now; }

    /** Predictions written so far (0: no predictor feeds this view). */
    public long updates() { return updates; }

    /**
     * Moves the clock to {@code step}. A step before the clock means the pass went back (a rewound or new sequence): every
     * prediction is dropped, since they were made for the abandoned future.
     */
    public void advance(long step) {
        if (step < now) Arrays.fill(next, NEVER);
        now = step;
    }

    /**
     * A prediction that layer {@code layer} will use {@code experts[0..count)} at {@code step}. It replaces an earlier
     * prediction for that layer and step: an expert that one named and this one does not loses its claim. An expert keeps
     * its nearest predicted use when several live predictions name it.
     */
    public void predict(long step, int layer, int[] experts, int count) {
        if (step < now) return;
        int base = layer * nExpert;
        for (int e = 0; e < nExpert; e++) {
            if (next[base + e] == step && !names(experts, count, e)) next[base + e] = NEVER;
        }
        for (int i = 0; i < count; i++) {
            int k = base + experts[i];
            if (next[k] < now || step < next[k]) next[k] = step;
        }
        updates++;
    }

    /**
     * The step of the key's next predicted use that has not passed, or {@link #NEVER}. A use the clock is at counts
     * (the layer about to run has not used it yet).
     */
    public long nextUse(int key) {
        long s = next[key];
        return s < now ? NEVER : s;
    }

    /** The key was used at the clock's step: its prediction for this step is fulfilled. */
    public void used(int key) {
        if (next[key] <= now) next[key] = NEVER;
    }

    private static boolean names(int[] experts, int count, int e) {
        for (int i = 0; i < count; i++) if (experts[i] == e) return true;
        return false;
    }
}
