package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class SamplerTest {

    /** Logits whose softmax is exactly the given probabilities. */
    private static float[] logitsOf(double... probs) {
        float[] l = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            l[i] = (float) Math.log(probs[i]);
        }
        return l;
    }

    private static double[] frequencies(Sampler s, float[] logits, int draws) {
        double[] f = new double[logits.length];
        for (int i = 0; i < draws; i++) {
            f[s.sample(logits, null)]++;
        }
        for (int i = 0; i < f.length; i++) {
            f[i] /= draws;
        }
        return f;
    }

    private static SamplerConfig plain(float temperature, long seed) {
        return new SamplerConfig(temperature, 0, 1f, 0f, 1f, 0, seed);
    }

    @Test
    void greedyPicksArgmaxAndLowestIdOnTies() {
        Sampler g = new Sampler(SamplerConfig.greedy());
        assertEquals(2, g.sample(new float[] {0.1f, -3f, 5f, 4.9f}, null));
        assertEquals(1, g.sample(new float[] {0f, 7f, 3f, 7f, 7f}, null));
        assertEquals(1, Sampler.argmax(new float[] {Float.NEGATIVE_INFINITY, 2f, 2f}));
    }

    @Test
    void topKOfOneEqualsGreedy() {
        Random rnd = new Random(3);
        Sampler k1 = new Sampler(new SamplerConfig(1.5f, 1, 1f, 0f, 1f, 0, 99));
        for (int iter = 0; iter < 200; iter++) {
            float[] l = new float[1000];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) rnd.nextGaussian();
            }
            assertEquals(Sampler.argmax(l), k1.sample(l, null));
        }
    }

    @Test
    void sameSeedSameSequenceOtherSeedOtherSequence() {
        float[] l = logitsOf(0.2, 0.2, 0.2, 0.2, 0.2);
        int[] a = new int[200], b = new int[200], c = new int[200];
        Sampler sa = new Sampler(plain(1f, 42)), sb = new Sampler(plain(1f, 42)), sc = new Sampler(plain(1f, 43));
        for (int i = 0; i < a.length; i++) {
            a[i] = sa.sample(l, null);
            b[i] = sb.sample(l, null);
            c[i] = sc.sample(l, null);
        }
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, c));
    }

    @Test
    void drawsFollowTheSoftmax() {
        double[] p = {0.5, 0.3, 0.15, 0.05};
        double[] f = frequencies(new Sampler(plain(1f, 1)), logitsOf(p), 40_000);
        for (int i = 0; i < p.length; i++) {
            // Standard error is at most 0.0025 here; 0.012 is about five of them.
            assertEquals(p[i], f[i], 0.012, "token " + i);
        }
        // Temperature 2 flattens: p_i ∝ sqrt(p_i).
        double[] flat = frequencies(new Sampler(plain(2f, 2)), logitsOf(p), 40_000);
        double z = 0;
        for (double q : p) {
            z += Math.sqrt(q);
        }
        for (int i = 0; i < p.length; i++) {
            assertEquals(Math.sqrt(p[i]) / z, flat[i], 0.012, "token " + i + " at temperature 2");
        }
    }

    @Test
    void lowTemperatureApproachesGreedy() {
        float[] l = {1.0f, 0.9f, 0.8f, -1f};
        double[] f = frequencies(new Sampler(plain(0.01f, 5)), l, 5000);
        assertTrue(f[0] > 0.999, "argmax share " + f[0]);
        double[] warm = frequencies(new Sampler(plain(1f, 5)), l, 5000);
        assertTrue(warm[0] < 0.5, "at temperature 1 the others get a fair share: " + warm[0]);
    }

    @Test
    void topPExcludesTheTail() {
        // Cumulative 0.5, 0.8, 0.95, 1.0: top-p 0.75 keeps the first two, renormalised to 0.625 / 0.375.
        double[] f = frequencies(new Sampler(new SamplerConfig(1f, 0, 0.75f, 0f, 1f, 0, 7)), logitsOf(0.5, 0.3, 0.15, 0.05), 20_000);
        assertEquals(0.0, f[2]);
        assertEquals(0.0, f[3]);
        assertEquals(0.625, f[0], 0.015);
        // A large vocabulary whose head carries the mass: only the head may come out.
        float[] big = new float[50_000];
        java.util.Arrays.fill(big, -30f);
        big[123] = 10f;
        big[456] = 9.5f;
        Sampler headOnly = new Sampler(new SamplerConfig(1f, 0, 0.5f, 0f, 1f, 0, 7));
        for (int i = 0; i < 100; i++) {
            assertEquals(123, headOnly.sample(big, null), "p(123) = 0.62 reaches 0.5 alone");
        }
        // Two tokens at 0 and a thousand far below them, flattened afterwards by a huge temperature: top-p 0.9
        // stops at the two, top-p just below 1 must reach deep into the tail (which holds 3.8e-7 of the mass).
        float[] tail = new float[1002];
        java.util.Arrays.fill(tail, -21f);
        tail[0] = 0f;
        tail[1] = 0f;
        double[] short_ = frequencies(new Sampler(new SamplerConfig(1000f, 0, 0.9f, 0f, 1f, 0, 7)), tail, 2000);
        assertEquals(1.0, short_[0] + short_[1], 1e-12);
        double[] deep = frequencies(new Sampler(new SamplerConfig(1000f, 0, 0.99999994f, 0f, 1f, 0, 7)), tail, 2000);
        assertTrue(deep[0] + deep[1] < 0.05, "head share " + (deep[0] + deep[1]));
    }

    @Test
    void minPDropsUnlikelyTokens() {
        // Threshold 0.2 * 0.5 = 0.1: token 3 (0.05) goes, token 2 (0.15) stays.
        double[] f = frequencies(new Sampler(new SamplerConfig(1f, 0, 1f, 0.2f, 1f, 0, 11)), logitsOf(0.5, 0.3, 0.15, 0.05), 20_000);
        assertEquals(0.0, f[3]);
        assertTrue(f[2] > 0.1, "token 2 kept: " + f[2]);
    }

    @Test
    void topKKeepsTheKBest() {
        double[] f = frequencies(new Sampler(new SamplerConfig(1f, 2, 1f, 0f, 1f, 0, 13)), logitsOf(0.1, 0.4, 0.2, 0.3), 20_000);
        assertEquals(0.0, f[0]);
        assertEquals(0.0, f[2]);
        assertEquals(4.0 / 7, f[1], 0.015);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        SamplerConfig greedyPenalised = SamplerConfig.greedy().withRepeatPenalty(1.2f, 2);
        Sampler s = new Sampler(greedyPenalised);
        // 2.0 / 1.2 = 1.67 < 1.9: the repeated token loses.
        assertEquals(1, s.sample(new float[] {2.0f, 1.9f, 0f}, new int[] {0}));
        // -1.0 * 1.2 = -1.2 < -1.1: a negative logit is pushed further down, not up.
        assertEquals(1, s.sample(new float[] {-1.0f, -1.1f}, new int[] {0, 0, 0}));
        // Only the last repeatLastN = 2 tokens count: token 0 is outside the window.
        assertEquals(0, s.sample(new float[] {2.0f, 1.9f, 0f, 0f}, new int[] {0, 2, 3}));
        // -1 means the whole history.
        assertEquals(1, new Sampler(SamplerConfig.greedy().withRepeatPenalty(1.2f, -1)).sample(new float[] {2.0f, 1.9f, 0f, 0f}, new int[] {0, 2, 3}));
        // historyLength limits the valid part of a reused buffer.
        assertEquals(0, s.sample(new float[] {2.0f, 1.9f, 0f}, new int[] {2, 2, 0, 0}, 2));
    }

    @Test
    void callerLogitsAreNotModified() {
        float[] l = {2f, -1f, 0.5f};
        float[] copy = l.clone();
        new Sampler(SamplerConfig.defaults(1).withRepeatPenalty(1.5f, 64)).sample(l, new int[] {0, 1});
        assertArrayEquals(copy, l);
    }

    @Test
    void badConfigAndInputGiveClearErrors() {
        assertMessage(() -> new SamplerConfig(-1f, 0, 1f, 0f, 1f, 0, 0), "--temp");
        assertMessage(() -> new SamplerConfig(Float.NaN, 0, 1f, 0f, 1f, 0, 0), "--temp");
        assertMessage(() -> new SamplerConfig(1f, -1, 1f, 0f, 1f, 0, 0), "--top-k");
        assertMessage(() -> new SamplerConfig(1f, 0, 1.5f, 0f, 1f, 0, 0), "--top-p");
        assertMessage(() -> new SamplerConfig(1f, 0, 1f, -0.1f, 1f, 0, 0), "--min-p");
        assertMessage(() -> new SamplerConfig(1f, 0, 1f, 0f, 0f, 0, 0), "--repeat-penalty");
        assertMessage(() -> new SamplerConfig(1f, 0, 1f, 0f, 1f, -2, 0), "--repeat-last-n");
        Sampler s = new Sampler(SamplerConfig.defaults(0).withRepeatPenalty(1.1f, 8));
        assertMessage(() -> s.sample(new float[0], null), "empty");
        assertMessage(() -> s.sample(new float[] {1f, Float.NaN}, null), "NaN");
        assertMessage(() -> s.sample(new float[] {Float.NEGATIVE_INFINITY}, null), "infinity");
        assertMessage(() -> s.sample(new float[] {1f, 2f}, new int[] {5}), "history token 5");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String fragment) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(fragment), ex.getMessage());
    }

    @Test
    void largeVocabularyIsFast() {
        Random rnd = new Random(9);
        float[] l = new float[152_064];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) rnd.nextGaussian() * 3;
        }
        Sampler noTopK = new Sampler(new SamplerConfig(0.8f, 0, 0.95f, 0.05f, 1.1f, 64, 1));
        Sampler defaults = new Sampler(SamplerConfig.defaults(1));
        int[] history = new int[64];
        long t0 = System.nanoTime();
        for (int i = 0; i < 100; i++) {
            noTopK.sample(l, history);
            defaults.sample(l, history);
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 10_000, "200 samples over 152k logits took " + ms + " ms");
    }
}
