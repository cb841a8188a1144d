package dev.jmoe.experts.trace;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.cache.Predictions;
import dev.jmoe.experts.cache.OffloadedExpertSource;
import dev.jmoe.experts.cache.Substitution;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.OffloadStats.Counter;
import java.util.Arrays;

/**
 * Replays a {@link RoutingTrace} through a cache of {@code slots} experts managed by an
 * {@link EvictionPolicy}, optionally with {@link Substitution}, and reports the same {@link OffloadStats}
 * counters as a live run. It models demand caching the way {@link OffloadedExpertSource} does it: a step's
 * resident experts are used first, then its misses are loaded one by one, each evicting the policy's choice
 * among experts the step does not use (or, when the step needs more experts than there are slots, among those
 * it has already used). No prefetching and no slow-side compute: this is the policy alone. A predictive policy gets its view
 * of the future from a {@link ReplayPredictor} that announces the coming steps before each step: a {@link SimulatedPredictor}
 * (a model of a predictor) or a {@link RecordedPredictor} (a real predictor's recorded predictions).
 */
public final class PolicySimulator {
    private PolicySimulator() {}

    public static OffloadStats simulate(RoutingTrace trace, ExpertLayout layout, int slots, EvictionPolicy policy, Substitution substitution,
                                        boolean renormalize) {
        long[] bytes = new long[trace.nLayer()];
        for (int l = 0; l < bytes.length; l++) bytes[l] = layout.hasExperts(l) ? layout.expertBytes(l) : layout.maxExpertBytes();
        return simulate(trace, bytes, layout.maxExpertBytes(), slots, policy, substitution, null, null);
    }

    /**
     * The general replay.
     *
     * @param expertBytes bytes of one expert per layer (counted as moved per load); all 1 to count experts instead
     * @param slotBytes   bytes of a slot (reported)
     * @param predictor   a predictor model announcing the coming steps to {@code view} before each step, or null
     * @param view        the predictions the policy was made with (its {@link EvictionPolicy.Context#predictions()}), or null
     */
    public static OffloadStats simulate(RoutingTrace trace, long[] expertBytes, long slotBytes, int slots, EvictionPolicy policy,
                                        Substitution substitution, ReplayPredictor predictor, Predictions view) {
        if (slots < 1) throw new IllegalArgumentException("a cache needs at least one slot");
        if ((predictor == null) != (view == null)) throw new IllegalArgumentException("a predictor model needs the view it writes to, and back");
        if (substitution != null && trace.detail() != RoutingTrace.Detail.PROBABILITIES) {
            throw new IllegalArgumentException("substitution (--alpha > 0) needs the router's full probabilities; this trace records "
                    + trace.detail().name().toLowerCase(java.util.Locale.ROOT) + " only");
        }
        int nExpert = trace.nExpert(), k = trace.k();
        int[] slotKey = new int[slots];
        Arrays.fill(slotKey, -1);
        boolean[] resident = new boolean[trace.nLayer() * nExpert];
        int used = 0;
        OffloadStats stats = new OffloadStats();
        stats.memory(slots * slotBytes, slots, slotBytes);
        long residentBytes = 0;
        int[] candidates = new int[slots];
        int[] sel = new int[k];
        float[] w = new float[k];
        int[] subSlots = new int[k];
        int index = -1;
        for (RoutingTrace.Step step : trace.steps()) {
            index++;
            if (predictor != null) predictor.announce(index, view);
            int layer = step.layer(), base = layer * nExpert;
            int phase = step.n() == 1 ? OffloadStats.DECODE : OffloadStats.PREFILL;
            if (step.n() == 1) {
                // scores where the trace has them: every probability, or the selected experts' weights (0 for the rest)
                float[] scores = step.scores(0, nExpert);
                if (scores != null) policy.onScores(layer, scores, 0, nExpert);
            }
            int[] chosen = step.selected();
            boolean[] isSub = new boolean[nExpert];
            if (substitution != null && step.n() == 1) {
                System.arraycopy(chosen, 0, sel, 0, k);
                int subs = substitution.apply(step.probs(), 0, nExpert, sel, w, k, e -> resident[base + e], e -> resident[base + e], subSlots);
                for (int i = 0; i < subs; i++) isSub[sel[subSlots[i]]] = true;
                chosen = sel.clone();
            }
            int[] experts = Arrays.stream(chosen).distinct().sorted().toArray();
            boolean[] inStep = new boolean[nExpert], done = new boolean[nExpert];
            for (int e : experts) inStep[e] = true;
            // hits first (as the live source orders them), then misses
            for (int e : experts) {
                if (!resident[base + e]) continue;
                stats.inc(phase, isSub[e] ? Counter.SUBSTITUTIONS : Counter.EXACT_HITS);
                policy.onAccess(base + e);
                done[e] = true;
            }
            for (int e : experts) {
                if (done[e]) continue;
                int key = base + e;
                stats.inc(phase, Counter.MISSES_LOADED);
                int slot;
                if (used < slots) {
                    slot = used++;
                } else {
                    int n = 0;
                    for (int s = 0; s < slots; s++) {
                        int c = slotKey[s];
                        if (c / nExpert != layer || !inStep[c % nExpert]) candidates[n++] = c;
                    }
                    if (n == 0) for (int s = 0; s < slots; s++) if (done[slotKey[s] % nExpert]) candidates[n++] = slotKey[s];
                    int victim = policy.victim(candidates, n);
                    slot = indexOf(slotKey, victim);
                    resident[victim] = false;
                    policy.onRemove(victim);
                    residentBytes -= expertBytes[victim / nExpert];
                    stats.inc(phase, Counter.EVICTIONS);
                }
                slotKey[slot] = key;
                resident[key] = true;
                policy.onInsert(key);
                residentBytes += expertBytes[layer];
                stats.residentBytes(residentBytes);
                stats.inc(phase, Counter.LOADS);
                stats.add(phase, Counter.BYTES_MOVED, expertBytes[layer]);
                policy.onAccess(key);
                done[e] = true;
            }
            stats.inc(phase, Counter.LAYERS);
        }
        return stats;
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        throw new IllegalStateException("policy chose " + v + ", which is not resident");
    }
}
