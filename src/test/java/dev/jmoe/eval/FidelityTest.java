package dev.jmoe.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class FidelityTest {
    @Test
    void klOfIdenticalLogitsIsZeroAndShiftInvariant() {
        float[] a = {1, 2, 3, -1};
        float[] b = {11, 12, 13, 9};
        assertEquals(0.0, Fidelity.kl(a, a, 4));
        assertEquals(0.0, Fidelity.kl(a, b, 4), 1e-12);
    }

    @Test
    void klMatchesTheClosedFormForTwoTokens() {
        // p = softmax(0, ln 3) = (1/4, 3/4); q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2)
        float[] p = {0, (float) Math.log(3)};
        float[] q = {0, 0};
        assertEquals(0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), Fidelity.kl(p, q, 2), 1e-6);
    }

    @Test
    void percentileIsTheNearestRank() {
        double[] v = new double[100];
        for (int i = 0; i < 100; i++) v[i] = 99 - i;
        assertEquals(98.0, Fidelity.percentile(v, 100, 0.99));
        assertEquals(0.0, Fidelity.percentile(v, 100, 0.001));
    }
}
