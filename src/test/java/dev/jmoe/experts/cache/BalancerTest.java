package dev.jmoe.experts.cache;

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
}
