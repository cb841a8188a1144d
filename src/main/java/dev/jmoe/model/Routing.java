package dev.jmoe.model;

import java.util.Arrays;

/**
 * The routing decision of one MoE layer for a batch: per token the k selected experts (highest
 * probability first, lower id first on ties) with their weights, and per expert the tokens that use it
 * (so each expert's weights are read once per batch). Reused across layers and calls.
 */
public final class Routing {
    private final int nExpert;
    private int n, k;
    private final int[] selected;   // [token][slot] -> expert
    private final float[] weights;  // [token][slot] -> gate weight applied to that expert's output
    private final int[] counts;     // [expert] -> tokens using it
    private final int[] tokens;     // [expert][i] -> token (capacity slots per expert)
    private final int[] slots;      // [expert][i] -> slot of that token
    private final int capacity;
    private int[] used = new int[0];

    Routing(int capacity, int nExpert, int k) {
        this.capacity = capacity;
        this.nExpert = nExpert;
        this.selected = new int[capacity * k];
        this.weights = new float[capacity * k];
        this.counts = new int[nExpert];
        this.tokens = new int[nExpert * capacity];
        this.slots = new int[nExpert * capacity];
        this.k = k;
    }

    void reset(int n, int nExpert, int k) {
        if (n > capacity || nExpert != this.nExpert || k * capacity > selected.length) {
            throw new IllegalStateException("routing buffers sized for " + capacity + " tokens");
        }
        this.n = n;
        this.k = k;
        Arrays.fill(counts, 0);
        used = null;
    }

    /** Picks the top-k of probs[off .. off+nExpert) for token t; renormalises the k weights if asked. */
    void selectTopK(int t, float[] probs, int off, boolean renormalize) {
        int base = t * k;
        for (int j = 0; j < k; j++) {
            int best = -1;
            float bestP = Float.NEGATIVE_INFINITY;
            for (int ex = 0; ex < nExpert; ex++) {
                float p = probs[off + ex];
                if (p > bestP && !contains(base, j, ex)) {
                    best = ex;
                    bestP = p;
                }
            }
            if (best < 0) {
                // Every remaining probability is NaN or -inf: the forward pass checks scores before this, so only a caller
                // that skipped that check gets here; fail with the token rather than index -1 later.
                throw new IllegalArgumentException("no expert has a finite routing probability for token " + t + " (slot " + j + ")");
            }
            selected[base + j] = best;
            weights[base + j] = bestP;
        }
        if (renormalize) {
            float sum = 0;
            for (int j = 0; j < k; j++) sum += weights[base + j];
            for (int j = 0; j < k; j++) weights[base + j] /= sum;
        }
        for (int j = 0; j < k; j++) assign(t, j, selected[base + j]);
    }

    /** Overrides slot j of token t with another expert (for substitution policies); the weight is the caller's. */
    public void replace(int t, int j, int expert, float weight) {
        int base = t * k;
        int old = selected[base + j];
        // remove (t, j) from old expert's list
        int c = counts[old];
        for (int i = 0; i < c; i++) {
            int idx = old * capacity + i;
            if (tokens[idx] == t && slots[idx] == j) {
                tokens[idx] = tokens[old * capacity + c - 1];
                slots[idx] = slots[old * capacity + c - 1];
                counts[old]--;
                break;
            }
        }
        selected[base + j] = expert;
        weights[base + j] = weight;
        assign(t, j, expert);
        used = null;
    }

    private void assign(int t, int j, int ex) {
        int c = counts[ex]++;
        tokens[ex * capacity + c] = t;
        slots[ex * capacity + c] = j;
    }

    private boolean contains(int base, int upto, int ex) {
        for (int j = 0; j < upto; j++) if (selected[base + j] == ex) return true;
        return false;
    }

    public int tokens() { return n; }
    public int k() { return k; }
    public int expert(int t, int j) { return selected[t * k + j]; }
    public float weight(int t, int j) { return weights[t * k + j]; }
    /** Writes the weight of slot j of token t (e.g. after a substitution changed the renormalisation). */
    public void setWeight(int t, int j, float w) { weights[t * k + j] = w; }
    public int tokenCount(int expert) { return counts[expert]; }
    public int token(int expert, int i) { return tokens[expert * capacity + i]; }
    public int slot(int expert, int i) { return slots[expert * capacity + i]; }

    /** Experts used by at least one token, in ascending id order. */
    public int[] usedExperts() {
        if (used == null) {
            int m = 0;
            for (int ex = 0; ex < nExpert; ex++) if (counts[ex] > 0) m++;
            used = new int[m];
            m = 0;
            for (int ex = 0; ex < nExpert; ex++) if (counts[ex] > 0) used[m++] = ex;
        }
        return used;
    }
}
