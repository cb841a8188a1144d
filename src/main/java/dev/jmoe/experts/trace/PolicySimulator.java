package dev.jmoe.experts.trace;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.cache.EvictionPolicy;
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
 * it has already used). No prefetching and no slow-side compute: this is the policy alone.
 */
public final class PolicySimulator {
    private PolicySimulator() {}

    public static OffloadStats simulate(RoutingTrace trace, ExpertLayout layout, int slots, EvictionPolicy policy, Substitution substitution,
                                        boolean renormalize) {
        if (slots < 1) throw new IllegalArgumentException("a cache needs at least one slot");
        int nExpert = trace.nExpert(), k = trace.k();
        int[] slotKey = new int[slots];
        Arrays.fill(slotKey, -1);
        boolean[] resident = new boolean[trace.nLayer() * nExpert];
        int used = 0;
        OffloadStats stats = new OffloadStats();
        stats.memory(slots * layout.maxExpertBytes(), slots, layout.maxExpertBytes());
        long residentBytes = 0;
        int[] candidates = new int[slots];
        int[] sel = new int[k];
        float[] w = new float[k];
        int[] subSlots = new int[k];
        for (RoutingTrace.Step step : trace.steps()) {
            int layer = step.layer(), base = layer * nExpert;
            int phase = step.n() == 1 ? OffloadStats.DECODE : OffloadStats.PREFILL;
            if (step.n() == 1) policy.onScores(layer, step.probs(), 0, nExpert);
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
                    residentBytes -= layout.expertBytes(victim / nExpert);
                    stats.inc(phase, Counter.EVICTIONS);
                }
                slotKey[slot] = key;
                resident[key] = true;
                policy.onInsert(key);
                residentBytes += layout.expertBytes(layer);
                stats.residentBytes(residentBytes);
                stats.inc(phase, Counter.LOADS);
                stats.add(phase, Counter.BYTES_MOVED, layout.expertBytes(layer));
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
