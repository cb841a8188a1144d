package dev.jmoe.experts.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The load-or-compute split of decode misses. */
class BalancerTest {
    /** Splits n misses in order; returns how many went to the slow side. */
    private static int split(int n, int hits, int inflight, double c, double s, double l) {
        int slows = 0, loads = 0;
        for (int i = 0; i < n; i++) {
            if (Balancer.slowSide(hits, slows, inflight, loads, c, s, l)) slows++;
            else loads++;
        }
        return slows;
    }

    @Test
    void cheapLoadsAreLoadedAndExpensiveOnesComputedOnTheSlowSide() {
        assertFalse(Balancer.slowSide(0, 0, 0, 0, 1, 10, 0.5));  // loading costs less than slow compute
        assertTrue(Balancer.slowSide(0, 0, 0, 0, 1, 4, 100));    // a slow link: compute from the store
    }

    @Test
    void bothSidesFinishTogether() {
        // load 3, slow 5, compute 1: loads cost 3 each on the link, slow experts 5 each on the compute thread
        int n = 8;
        int slows = split(n, 0, 0, 1, 5, 3);
        int loads = n - slows;
        double slowEnd = slows * 5.0, loadEnd = loads * 3.0 + 1;
        assertTrue(slows > 0 && loads > 0, "both sides used: " + slows + " slow");
        assertTrue(Math.abs(slowEnd - loadEnd) <= 5, "slow side ends at " + slowEnd + ", load side at " + loadEnd);
    }

    @Test
    void hitsAndLoadsInFlightShiftTheSplit() {
        // many hits keep the compute thread busy: fewer misses go to the slow side
        assertTrue(split(4, 8, 0, 1, 4, 4) <= split(4, 0, 0, 1, 4, 4));
        // prefetches already on the link: more misses go to the slow side
        assertTrue(split(4, 0, 4, 1, 4, 4) >= split(4, 0, 0, 1, 4, 4));
    }

    @Test
    void theOverlappedSlowSideNeverEndsALayerLaterThanTheSerialOne() {
        for (int hits = 0; hits < 4; hits++) for (int slows = 0; slows < 4; slows++) for (int loads = 0; loads < 4; loads++) {
            double serial = Balancer.finish(hits, slows, 1, loads, 1, 4, 3, false), overlapped = Balancer.finish(hits, slows, 1, loads, 1, 4, 3, true);
            assertTrue(overlapped <= serial, hits + "/" + slows + "/" + loads + ": " + overlapped + " > " + serial);
        }
        // with the slow side in parallel, hits no longer wait behind it: 4 hits and 1 slow expert end at max(4, 4), not 4 + 4
        assertEquals(4.0, Balancer.finish(4, 1, 0, 0, 1, 4, 3, true));
        assertEquals(8.0, Balancer.finish(4, 1, 0, 0, 1, 4, 3, false));
    }

    @Test
    void scoreSplitLoadsFromTheFrontAndComputesFromTheBackUntilThePointersMeet() {
        assertEquals(6, Balancer.scoreSplit(0, 0, 6, 1, 10, 0.5, true), "cheap loads: load everything");
        assertEquals(0, Balancer.scoreSplit(0, 0, 6, 1, 4, 100, true), "a link far slower than the slow side: compute everything aside");
        int loads = Balancer.scoreSplit(0, 0, 8, 1, 5, 3, true);
        assertTrue(loads > 0 && loads < 8, "both sides used: " + loads + " loaded");
        // the chosen split ends the layer no later than any other split of the same misses
        double best = Balancer.finish(0, 8 - loads, 0, loads, 1, 5, 3, true);
        for (int l = 0; l <= 8; l++) assertTrue(best <= Balancer.finish(0, 8 - l, 0, l, 1, 5, 3, true) + 1e-9, "split " + l + " beats " + loads);
        // in parallel the slow side can take more misses than after the hits
        assertTrue(8 - Balancer.scoreSplit(6, 0, 8, 1, 5, 3, true) >= 8 - Balancer.scoreSplit(6, 0, 8, 1, 5, 3, false));
    }
}
