package dev.jmoe.experts.trace;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.testutil.TestModels;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.cache.ExactnessHarness;
import dev.jmoe.experts.cache.Substitution;
import dev.jmoe.experts.store.ExpertLayout;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Eviction policies on hand-made access sequences, and Belady as a lower bound on replayed traces. */
class PolicyTest {
    @Test
    void lruEvictsTheLeastRecentlyUsed() {
        EvictionPolicy p = new EvictionPolicy.Lru(10);
        for (int k : new int[]{1, 2, 3}) p.onInsert(k);
        p.onAccess(1);
        p.onAccess(3);
        assertEquals(2, p.victim(new int[]{1, 2, 3}, 3));
        p.onAccess(2);
        assertEquals(1, p.victim(new int[]{1, 2, 3}, 3));
    }

    @Test
    void lfuEvictsTheLeastFrequentlyUsedWithLruTies() {
        EvictionPolicy p = new EvictionPolicy.Lfu(10);
        for (int k : new int[]{1, 2, 3}) p.onInsert(k);
        p.onAccess(1);
        p.onAccess(1);
        p.onAccess(2);
        p.onAccess(3);
        assertEquals(2, p.victim(new int[]{1, 2, 3}, 3)); // 2 and 3 once each; 2 less recent
        p.onAccess(2);
        assertEquals(3, p.victim(new int[]{1, 2, 3}, 3));
    }

    @Test
    void scoreWindowEvictsLowestMeanScoreCountingInactiveExpertsAndForgettingOldSteps() {
        // 1 layer, 4 experts, window 2
        EvictionPolicy.ScoreWindow p = new EvictionPolicy.ScoreWindow(1, 4, 2);
        p.onScores(0, new float[]{0.1f, 0.6f, 0.2f, 0.1f}, 0, 4);
        p.onScores(0, new float[]{0.1f, 0.5f, 0.3f, 0.1f}, 0, 4);
        // expert 2 was never used (inactive) but scores well: expert 0 goes, not 2
        for (int k : new int[]{0, 2}) p.onInsert(k);
        p.onAccess(0);
        assertEquals(0, p.victim(new int[]{0, 2}, 2));
        assertEquals(0.25, p.mean(2), 1e-6);
        // two more steps push the old ones out of the window
        p.onScores(0, new float[]{0.7f, 0.1f, 0.1f, 0.1f}, 0, 4);
        p.onScores(0, new float[]{0.7f, 0.1f, 0.1f, 0.1f}, 0, 4);
        assertEquals(2, p.victim(new int[]{0, 2}, 2));
        assertEquals(0.7, p.mean(0), 1e-6);
    }

    @Test
    void beladyEvictsTheExpertUsedFarthestInTheFuture() {
        // steps: {1} {2} {3} {1} {2} {4}: on the miss for 3 with {1, 2} resident, 2 is used later than 1
        int[][] steps = {{1}, {2}, {3}, {1}, {2}, {4}};
        EvictionPolicy.Belady b = new EvictionPolicy.Belady(8, steps);
        b.onAccess(1);
        b.onAccess(2);
        assertEquals(2, b.victim(new int[]{1, 2}, 2));
        assertThrows(IllegalStateException.class, () -> b.onAccess(5));
    }

    @Test
    void unknownPolicyAndBeladyWithoutTraceAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EvictionPolicy.create("fifo", 2, 4, 8, null));
        assertTrue(e.getMessage().contains("lru"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EvictionPolicy.create("belady", 2, 4, 8, null));
        assertTrue(e.getMessage().contains("trace"), e.getMessage());
    }

    /** A decode step of one token at {@code layer}: the weights p normalised to sum 1 (in place) and their top k. */
    static RoutingTrace.Step normalisedStep(int layer, float[] p, int k) {
        float sum = 0;
        for (float w : p) sum += w;
        for (int e = 0; e < p.length; e++) p[e] /= sum;
        int[] sel = java.util.stream.IntStream.range(0, p.length).boxed().sorted((a, b) -> Float.compare(p[b], p[a]))
                .limit(k).mapToInt(Integer::intValue).toArray();
        return new RoutingTrace.Step(layer, 1, p, sel);
    }

    private static RoutingTrace syntheticTrace(int nLayer, int nExpert, int k, int steps, long seed) {
        Random rnd = new Random(seed);
        RoutingTrace t = new RoutingTrace(nLayer, nExpert, k);
        for (int s = 0; s < steps; s++) {
            for (int l = 0; l < nLayer; l++) {
                float[] p = new float[nExpert];
                for (int e = 0; e < nExpert; e++) {
                    // skewed popularity that drifts over time, like real routing
                    p[e] = (float) Math.exp(-0.4 * ((e + s / 20 + l) % nExpert) + rnd.nextGaussian());
                }
                t.add(normalisedStep(l, p, k));
            }
        }
        return t;
    }

    private static long misses(OffloadStats s) {
        return s.total(Counter.MISSES_LOADED);
    }

    @Test
    void beladyNeedsNoMoreLoadsThanAnyOnlinePolicy() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            ExpertLayout layout = ExpertLayout.of(Model.load(f));
            RoutingTrace synthetic = syntheticTrace(4, 16, 4, 200, 3);
            for (int slots : new int[]{1, 4, 7, 16, 33}) {
                long belady = misses(PolicySimulator.simulate(synthetic, layout, slots,
                        EvictionPolicy.create("belady", 4, 16, 8, synthetic.keySteps()), null, false));
                for (String online : new String[]{"lru", "lfu", "score"}) {
                    long m = misses(PolicySimulator.simulate(synthetic, layout, slots, EvictionPolicy.create(online, 4, 16, 8, null), null, false));
                    assertTrue(belady <= m, slots + " slots: belady " + belady + " > " + online + " " + m);
                }
                // every step's experts are used exactly once: uses = hits + misses
                OffloadStats s = PolicySimulator.simulate(synthetic, layout, slots, EvictionPolicy.create("lru", 4, 16, 8, null), null, false);
                assertEquals(200L * 4 * 4, s.uses(OffloadStats.DECODE));
            }
        }
    }

    @Test
    void recordedTraceOfARealRunReplaysWithBeladyAsTheBound() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe()); Parallel pool = new Parallel(1)) {
            Model m = Model.load(f);
            ExpertLayout layout = ExpertLayout.of(m);
            InferenceState st = m.newState(64, pool);
            RoutingTrace trace = new RoutingTrace(m.hyperparams().nLayer(), m.hyperparams().nExpert(), m.hyperparams().nExpertUsed());
            st.setRoutingHook((layer, pos, n, probs, routing) -> trace.record(layer, n, probs, routing));
            st.eval(new int[]{1, 2, 3, 4, 5}, 0, 5, 5);
            int tok = 7;
            for (int i = 0; i < 20; i++) tok = ExactnessHarness.argmax(st.next(tok));
            assertEquals(4 + 20 * 4, trace.steps().size());
            int nl = m.hyperparams().nLayer(), ne = m.hyperparams().nExpert();
            for (int slots : new int[]{2, 8, 20}) {
                long belady = misses(PolicySimulator.simulate(trace, layout, slots, EvictionPolicy.create("belady", nl, ne, 8, trace.keySteps()), null, false));
                for (String online : new String[]{"lru", "lfu", "score"}) {
                    long mm = misses(PolicySimulator.simulate(trace, layout, slots, EvictionPolicy.create(online, nl, ne, 8, null), null, false));
                    assertTrue(belady <= mm, slots + " slots: belady " + belady + " > " + online + " " + mm);
                }
            }
            // substitution in the replay only ever replaces misses: it never needs more loads than the exact replay
            for (int slots : new int[]{8, 20}) {
                OffloadStats exact = PolicySimulator.simulate(trace, layout, slots, EvictionPolicy.create("score", nl, ne, 8, null), null, false);
                OffloadStats subst = PolicySimulator.simulate(trace, layout, slots, EvictionPolicy.create("score", nl, ne, 8, null),
                        new Substitution(0.5, false), false);
                assertTrue(subst.total(Counter.SUBSTITUTIONS) > 0, "no substitutions at " + slots + " slots");
                assertEquals(exact.uses(OffloadStats.DECODE), subst.uses(OffloadStats.DECODE));
            }
        }
    }
}
