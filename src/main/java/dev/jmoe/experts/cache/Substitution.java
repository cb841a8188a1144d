package dev.jmoe.experts.cache;

import java.util.function.IntPredicate;

/**
 * SMoE's expert substitution for one decode token. With S the (k+1)-th highest router score, an active
 * expert whose score is below (1+α)·S and that is not in fast memory is replaced by the highest-scoring
 * non-active expert that is in fast memory and scores above (1−α)·S. The substitute contributes with its own
 * gate weight, renormalised exactly as the architecture renormalises top-k weights (or not at all). The
 * token's top-scoring expert is never substituted; α = 0 changes nothing (no active expert scores below S,
 * no inactive one above it), so exact runs stay bit-identical.
 */
public final class Substitution {
    private final double alpha;
    private final boolean renormalize;

    public Substitution(double alpha, boolean renormalize) {
        if (!(alpha >= 0 && alpha < 1)) throw new IllegalArgumentException("--alpha must be in [0, 1), got " + alpha);
        this.alpha = alpha;
        this.renormalize = renormalize;
    }

    public double alpha() { return alpha; }

    /**
     * Applies the rule to one token in place.
     *
     * @param probs     router probabilities; the token's are {@code probs[off .. off+nExpert)}
     * @param selected  the token's k active experts (modified)
     * @param weights   their gate weights (rewritten when anything was substituted)
     * @param available whether an active expert can be used without loading (resident or already arriving)
     * @param ready     whether an inactive expert may stand in (resident now)
     * @param substitutedSlots receives the slots that were substituted (length ≥ k); may be null
     * @return how many slots were substituted
     */
    public int apply(float[] probs, int off, int nExpert, int[] selected, float[] weights, int k,
                     IntPredicate available, IntPredicate ready, int[] substitutedSlots) {
        if (alpha == 0 || k >= nExpert) return 0;
        float s = kPlusOneth(probs, off, nExpert, k);
        int top = 0;
        for (int j = 1; j < k; j++) if (probs[off + selected[j]] > probs[off + selected[top]]) top = j;
        double keepAbove = (1 + alpha) * s, standInAbove = (1 - alpha) * s;
        int done = 0;
        // Highest-scoring misses first, so the best stand-in goes where the router was most confident.
        boolean[] visited = new boolean[k];
        visited[top] = true;
        for (int round = 1; round < k; round++) {
            int j = -1;
            for (int c = 0; c < k; c++) if (!visited[c] && (j < 0 || probs[off + selected[c]] > probs[off + selected[j]])) j = c;
            visited[j] = true;
            int e = selected[j];
            if (probs[off + e] >= keepAbove || available.test(e)) continue;
            int best = -1;
            for (int c = 0; c < nExpert; c++) {
                if (probs[off + c] > standInAbove && (best < 0 || probs[off + c] > probs[off + best]) && !active(selected, k, c) && ready.test(c)) {
                    best = c;
                }
            }
            if (best < 0) continue;
            selected[j] = best;
            if (substitutedSlots != null) substitutedSlots[done] = j;
            done++;
        }
        if (done > 0) {
            // The same arithmetic as the router's top-k: weights are the softmax scores, divided by their float sum.
            float sum = 0;
            for (int j = 0; j < k; j++) {
                weights[j] = probs[off + selected[j]];
                sum += weights[j];
            }
            if (renormalize) for (int j = 0; j < k; j++) weights[j] /= sum;
        }
        return done;
    }

    private static boolean active(int[] selected, int k, int e) {
        for (int j = 0; j < k; j++) if (selected[j] == e) return true;
        return false;
    }

    /** The (k+1)-th highest of the token's scores. */
    static float kPlusOneth(float[] probs, int off, int nExpert, int k) {
        float[] top = new float[k + 1];
        java.util.Arrays.fill(top, Float.NEGATIVE_INFINITY);
        for (int e = 0; e < nExpert; e++) {
            float p = probs[off + e];
            if (p <= top[k]) continue;
            int i = k;
            while (i > 0 && top[i - 1] < p) {
                top[i] = top[i - 1];
                i--;
            }
            top[i] = p;
        }
        return top[k];
    }
}
