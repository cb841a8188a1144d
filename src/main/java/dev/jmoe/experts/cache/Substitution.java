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
        return active(selected, 0, k, e);
    }

    private static boolean active(int[] selected, int off, int k, int e) {
        for (int j = 0; j < k; j++) if (selected[off + j] == e) return true;
        return false;
    }

    /**
     * SMoE's batch mode: the rule judged over the scores of a decode batch of {@code tokens} tokens (token t's scores are
     * {@code probs[t·nExpert ..]}, its experts and weights {@code selected[t·k ..]}, {@code weights[t·k ..]}). Substituting
     * saves a load only when no token of the batch still needs the expert, so an active expert that is neither in fast
     * memory nor arriving is given up only when every token that selected it would give it up by the single-token rule: it
     * is not the token's top expert, it scores below (1+α)·S_t, and the token has a stand-in (its highest-scoring inactive
     * resident expert above (1−α)·S_t). Then each of those tokens takes its own stand-in; when even one token needs the
     * expert, it is loaded and every token keeps it. Missing experts are judged highest batch score first (an expert's
     * batch score is its best score among the tokens that chose it), so the best stand-ins go where the router was most
     * confident. Weights of a token that got a stand-in are recomputed as in {@link #apply}. With one token this is exactly
     * {@link #apply}.
     *
     * @param substituted receives {@code t·k + j} for every substituted pair (length at least tokens·k); may be null
     * @return how many (token, slot) pairs were substituted
     */
    public int applyBatch(float[] probs, int nExpert, int tokens, int[] selected, float[] weights, int k,
                          IntPredicate available, IntPredicate ready, int[] substituted) {
        if (alpha == 0 || k >= nExpert || tokens < 1) return 0;
        float[] s = new float[tokens];
        int[] top = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            int off = t * nExpert, base = t * k;
            s[t] = kPlusOneth(probs, off, nExpert, k);
            int best = 0;
            for (int j = 1; j < k; j++) if (probs[off + selected[base + j]] > probs[off + selected[base + best]]) best = j;
            top[t] = best;
        }
        // The batch's candidates: experts in some token's non-top slots, with their best score; an expert some token
        // ranks first is needed anyway.
        boolean[] needed = new boolean[nExpert];
        float[] bestScore = new float[nExpert];
        int[] firstSeen = new int[nExpert];
        java.util.Arrays.fill(bestScore, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(firstSeen, Integer.MAX_VALUE);
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < k; j++) {
                int e = selected[t * k + j];
                if (j == top[t]) needed[e] = true;
                bestScore[e] = Math.max(bestScore[e], probs[t * nExpert + e]);
                firstSeen[e] = Math.min(firstSeen[e], t * k + j);
            }
        }
        Integer[] candidates = new Integer[nExpert];
        int nc = 0;
        for (int e = 0; e < nExpert; e++) if (firstSeen[e] != Integer.MAX_VALUE && !needed[e]) candidates[nc++] = e;
        java.util.Arrays.sort(candidates, 0, nc, (a, b) -> bestScore[a] != bestScore[b] ? Float.compare(bestScore[b], bestScore[a])
                : Integer.compare(firstSeen[a], firstSeen[b]));
        boolean[] changed = new boolean[tokens];
        int[] users = new int[tokens], standIns = new int[tokens];
        int done = 0;
        for (int ci = 0; ci < nc; ci++) {
            int e = candidates[ci];
            if (available.test(e)) continue;
            int nu = 0;
            boolean giveUp = true;
            for (int t = 0; t < tokens && giveUp; t++) {
                int base = t * k, off = t * nExpert;
                int j = -1;
                for (int c = 0; c < k; c++) if (selected[base + c] == e) j = c;
                if (j < 0) continue;
                if (probs[off + e] >= (1 + alpha) * s[t]) {
                    giveUp = false;
                    break;
                }
                double standInAbove = (1 - alpha) * s[t];
                int best = -1;
                for (int c = 0; c < nExpert; c++) {
                    if (probs[off + c] > standInAbove && (best < 0 || probs[off + c] > probs[off + best]) && !active(selected, base, k, c) && ready.test(c)) {
                        best = c;
                    }
                }
                if (best < 0) {
                    giveUp = false;
                    break;
                }
                users[nu] = base + j;
                standIns[nu++] = best;
            }
            if (!giveUp) continue;
            for (int u = 0; u < nu; u++) {
                selected[users[u]] = standIns[u];
                changed[users[u] / k] = true;
                if (substituted != null) substituted[done] = users[u];
                done++;
            }
        }
        for (int t = 0; t < tokens; t++) {
            if (!changed[t]) continue;
            // The same arithmetic as the router's top-k: weights are the softmax scores, divided by their float sum.
            float sum = 0;
            for (int j = 0; j < k; j++) {
                weights[t * k + j] = probs[t * nExpert + selected[t * k + j]];
                sum += weights[t * k + j];
            }
            if (renormalize) for (int j = 0; j < k; j++) weights[t * k + j] /= sum;
        }
        return done;
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
