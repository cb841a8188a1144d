package dev.jmoe.experts.trace;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.cache.Predictions;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The predictions view, the predictive eviction policy, and the replay's predictor model. */
class PredictiveEvictionTest {
    @Test
    void predictionsKeepTheNearestLiveUseAndForgetRevokedOrPassedOnes() {
        Predictions p = new Predictions(2, 4);
        p.advance(10);
        p.predict(12, 1, new int[]{0, 3}, 2);
        p.predict(15, 1, new int[]{3}, 1);
        assertEquals(12, p.nextUse(4 + 0));
        assertEquals(12, p.nextUse(4 + 3)); // the nearer of two predicted uses
        assertEquals(Predictions.NEVER, p.nextUse(4 + 1));
        // a fresher prediction for step 12 no longer names expert 0: it loses the claim
        p.predict(12, 1, new int[]{3, 2}, 2);
        assertEquals(Predictions.NEVER, p.nextUse(4 + 0));
        assertEquals(12, p.nextUse(4 + 2));
        // step 12 passes: its predictions are stale
        p.advance(13);
        assertEquals(Predictions.NEVER, p.nextUse(4 + 2));
        // a prediction for a step already passed is ignored
        p.predict(11, 0, new int[]{1}, 1);
        assertEquals(Predictions.NEVER, p.nextUse(1));
        // going back (a rewound sequence) drops everything
        p.predict(14, 0, new int[]{1}, 1);
        p.advance(3);
        assertEquals(Predictions.NEVER, p.nextUse(1));
    }

    @Test
    void predictiveEvictsTheFarthestPredictedUseThenTheLeastUsedLately() {
        Predictions view = new Predictions(1, 8);
        EvictionPolicy p = EvictionPolicies.create("predictive", new EvictionPolicy.Context(1, 8, 16, null, view));
        for (int k : new int[]{1, 2, 3, 4, 5}) p.onInsert(k);
        p.onAccess(3);
        p.onAccess(3);
        p.onAccess(4);
        p.onAccess(5);
        view.advance(0);
        view.predict(2, 0, new int[]{1}, 1);
        view.predict(5, 0, new int[]{2}, 1);
        // 3, 4 and 5 are not predicted: the least used lately goes first (4 before 5: used as often, less recently)
        assertEquals(4, p.victim(new int[]{1, 2, 3, 4, 5}, 5));
        assertEquals(5, p.victim(new int[]{1, 2, 3, 5}, 4));
        assertEquals(3, p.victim(new int[]{1, 2, 3}, 3));
        // among predicted ones, the farthest
        assertEquals(2, p.victim(new int[]{1, 2}, 2));
        // a use fulfils the prediction for the current step
        view.advance(2);
        p.onAccess(1);
        assertEquals(1, p.victim(new int[]{1, 2}, 2));
    }

    static RoutingTrace decodeTrace(int nLayer, int nExpert, int k, int tokens, long seed) {
        Random rnd = new Random(seed);
        RoutingTrace t = new RoutingTrace(nLayer, nExpert, k);
        for (int s = 0; s < tokens; s++) {
            for (int l = 0; l < nLayer; l++) {
                float[] p = new float[nExpert];
                for (int e = 0; e < nExpert; e++) {
                    p[e] = (float) Math.exp(-0.5 * ((e + s / 7 + 3 * l) % nExpert) + 0.8 * rnd.nextGaussian());
                }
                t.add(PolicyTest.normalisedStep(l, p, k));
            }
        }
        return t;
    }

    private static long misses(RoutingTrace t, int slots, String policy, int h, double r, long seed) {
        long[] bytes = new long[t.nLayer()];
        Arrays.fill(bytes, 1);
        Predictions view = new Predictions(t.nLayer(), t.nExpert());
        EvictionPolicy pol = EvictionPolicies.create(policy, new EvictionPolicy.Context(t.nLayer(), t.nExpert(), 16, t.keySteps(), view));
        boolean predictive = policy.equals("predictive");
        OffloadStats s = PolicySimulator.simulate(t, bytes, 1, slots, pol, null, predictive ? new SimulatedPredictor(t, h, r, seed) : null,
                predictive ? view : null);
        return s.total(Counter.MISSES_LOADED);
    }

    @Test
    void aPerfectPredictorThatSeesTheWholeTraceMatchesBeladyAndANearSightedOneBeatsItsFallback() {
        RoutingTrace t = decodeTrace(4, 16, 2, 150, 3);
        int steps = t.steps().size();
        for (int slots : new int[]{8, 16, 24}) {
            long belady = misses(t, slots, "belady", 1, 1, 1);
            long lfu = misses(t, slots, "lfu", 1, 1, 1);
            assertEquals(belady, misses(t, slots, "predictive", steps, 1.0, 1), "slots " + slots);
            // one token ahead: between the bound and the frequency order it falls back on
            long nearSighted = misses(t, slots, "predictive", 4, 1.0, 1);
            assertTrue(nearSighted >= belady && nearSighted < lfu, slots + " slots: predictive H=4 " + nearSighted + ", belady " + belady + ", lfu " + lfu);
            // a predictor that is always wrong protects the wrong experts
            assertTrue(misses(t, slots, "predictive", 4, 0.0, 1) > nearSighted, "slots " + slots);
        }
    }

    @Test
    void mispredictionsAreDrawnReproduciblyFromTheSeed() {
        RoutingTrace t = decodeTrace(3, 8, 2, 40, 5);
        SimulatedPredictor a = new SimulatedPredictor(t, 3, 0.5, 7), b = new SimulatedPredictor(t, 3, 0.5, 7), c = new SimulatedPredictor(t, 3, 0.5, 8);
        boolean differs = false;
        int named = 0, right = 0;
        for (int j = 0; j < t.steps().size(); j++) {
            int[] pa = a.predictionFor(j);
            assertArrayEquals(pa, b.predictionFor(j));
            differs |= !Arrays.equals(pa, c.predictionFor(j));
            assertEquals(2, Arrays.stream(pa).distinct().count(), "k distinct experts per token");
            for (int e : pa) {
                named++;
                for (int s : t.steps().get(j).selected()) if (s == e) right++;
            }
        }
        assertTrue(differs, "another seed draws other mispredictions");
        double recall = (double) right / named;
        assertTrue(recall > 0.35 && recall < 0.65, "recall " + recall);
        assertFalse(Arrays.equals(a.predictionFor(0), new int[]{-1, -1}));
    }
}
