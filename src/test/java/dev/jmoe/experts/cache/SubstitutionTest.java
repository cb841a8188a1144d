package dev.jmoe.experts.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Set;
import java.util.function.IntPredicate;
import org.junit.jupiter.api.Test;

/** SMoE's substitution rule on hand-made router scores. */
class SubstitutionTest {
    private static IntPredicate in(Integer... experts) {
        Set<Integer> s = Set.of(experts);
        return s::contains;
    }

    @Test
    void kPlusOnethScoreIsTheThresholdBase() {
        float[] p = {0.05f, 0.30f, 0.10f, 0.25f, 0.20f, 0.10f};
        assertEquals(0.20f, Substitution.kPlusOneth(p, 0, 6, 2));
        assertEquals(0.10f, Substitution.kPlusOneth(p, 0, 6, 3));  // tie between experts 2 and 5
        assertEquals(0.10f, Substitution.kPlusOneth(p, 0, 6, 4));
        assertEquals(0.05f, Substitution.kPlusOneth(p, 0, 6, 5));
    }

    @Test
    void lowScoringMissIsReplacedByBestResidentStandIn() {
        // k = 2, active {0, 1}; S = 0.15 (expert 2). α = 0.25: keep if ≥ 0.1875, stand-ins must beat 0.1125.
        float[] p = {0.40f, 0.16f, 0.15f, 0.14f, 0.10f, 0.05f};
        int[] sel = {0, 1};
        float[] w = {0.40f, 0.16f};
        int[] slots = new int[2];
        int n = new Substitution(0.25, false).apply(p, 0, 6, sel, w, 2, in(0), in(0, 2, 3, 4), slots);
        assertEquals(1, n);
        assertEquals(1, slots[0]);
        assertArrayEquals(new int[]{0, 2}, sel);          // 2 beats 3; 4 is below (1-α)·S
        assertArrayEquals(new float[]{0.40f, 0.15f}, w);  // qwen2moe/olmoe: raw softmax weights
    }

    @Test
    void renormalisingArchitecturesRenormaliseOverTheNewSet() {
        float[] p = {0.40f, 0.16f, 0.15f, 0.14f, 0.10f, 0.05f};
        int[] sel = {0, 1};
        float[] w = {0.40f / 0.56f, 0.16f / 0.56f};
        new Substitution(0.25, true).apply(p, 0, 6, sel, w, 2, in(0), in(0, 3), null);
        assertArrayEquals(new int[]{0, 3}, sel);
        float sum = 0.40f + 0.14f;
        assertArrayEquals(new float[]{0.40f / sum, 0.14f / sum}, w);
    }

    @Test
    void alphaZeroChangesNothing() {
        float[] p = {0.40f, 0.16f, 0.15f, 0.14f, 0.10f, 0.05f};
        int[] sel = {0, 1};
        float[] w = {0.7f, 0.3f};
        assertEquals(0, new Substitution(0, true).apply(p, 0, 6, sel, w, 2, in(), in(2, 3, 4, 5), null));
        assertArrayEquals(new int[]{0, 1}, sel);
        assertArrayEquals(new float[]{0.7f, 0.3f}, w);
    }

    @Test
    void topScoringExpertIsNeverSubstitutedEvenWhenItQualifies() {
        // Both active experts are below (1+α)·S and missing; only the second may be replaced.
        float[] p = {0.17f, 0.16f, 0.15f, 0.14f, 0.13f, 0.25f};
        // active: 5 (0.25, top) and 0 (0.17). S = 0.16. α = 0.6: keep if ≥ 0.256 → both qualify by score
        int[] sel = {5, 0};
        float[] w = {0.25f, 0.17f};
        int n = new Substitution(0.6, false).apply(p, 0, 6, sel, w, 2, in(), in(1, 2, 3, 4), null);
        assertEquals(1, n);
        assertArrayEquals(new int[]{5, 1}, sel);
    }

    @Test
    void residentOrHighScoringActiveExpertsAndWeakStandInsAreLeftAlone() {
        float[] p = {0.40f, 0.16f, 0.15f, 0.14f, 0.10f, 0.05f};
        int[] sel = {0, 1};
        // 1 is available (resident or arriving): kept
        assertEquals(0, new Substitution(0.25, false).apply(p, 0, 6, sel.clone(), new float[2], 2, in(1), in(2), null));
        // no resident stand-in above (1-α)·S = 0.1125
        assertEquals(0, new Substitution(0.25, false).apply(p, 0, 6, sel.clone(), new float[2], 2, in(), in(4, 5), null));
        // a small α: 0.16 ≥ (1+0.05)·0.15 = 0.1575, so expert 1 is kept although missing
        assertEquals(0, new Substitution(0.05, false).apply(p, 0, 6, sel.clone(), new float[2], 2, in(), in(2, 3), null));
    }

    @Test
    void aStandInIsUsedOnceAndActiveExpertsAreNotStandIns() {
        // k = 3, active {0, 1, 2}: 1 and 2 missing, one resident stand-in (3); 0 is resident but active.
        float[] p = {0.30f, 0.14f, 0.135f, 0.13f, 0.12f, 0.10f, 0.075f};
        int[] sel = {0, 1, 2};
        float[] w = new float[3];
        int n = new Substitution(0.3, false).apply(p, 0, 7, sel, w, 3, in(0), in(0, 3), null);
        assertEquals(1, n);
        assertArrayEquals(new int[]{0, 3, 2}, sel); // the higher-scoring miss gets the stand-in
    }

    // ---------------------------------------------------------------- batch mode

    /** With one token the batch rule is the single-token rule, on random scores, residencies and α. */
    @Test
    void aBatchOfOneIsTheSingleTokenRule() {
        java.util.Random rnd = new java.util.Random(4);
        int agreed = 0, substitutedSomewhere = 0;
        for (int trial = 0; trial < 2000; trial++) {
            int nExpert = 4 + rnd.nextInt(12), k = 1 + rnd.nextInt(Math.min(4, nExpert - 1));
            float[] p = new float[nExpert];
            float sum = 0;
            for (int e = 0; e < nExpert; e++) sum += p[e] = rnd.nextFloat();
            for (int e = 0; e < nExpert; e++) p[e] /= sum;
            Integer[] order = new Integer[nExpert];
            for (int e = 0; e < nExpert; e++) order[e] = e;
            java.util.Arrays.sort(order, (a, b) -> Float.compare(p[b], p[a]));
            int[] sel = new int[k];
            float[] w = new float[k];
            for (int j = 0; j < k; j++) {
                sel[j] = order[j];
                w[j] = p[sel[j]];
            }
            boolean[] resident = new boolean[nExpert];
            for (int e = 0; e < nExpert; e++) resident[e] = rnd.nextBoolean();
            IntPredicate res = e -> resident[e];
            Substitution sub = new Substitution(rnd.nextDouble() * 0.9, rnd.nextBoolean());
            int[] s1 = sel.clone(), s2 = sel.clone();
            float[] w1 = w.clone(), w2 = w.clone();
            int n1 = sub.apply(p, 0, nExpert, s1, w1, k, res, res, null);
            int n2 = sub.applyBatch(p, nExpert, 1, s2, w2, k, res, res, null);
            assertEquals(n1, n2);
            assertArrayEquals(s1, s2);
            assertArrayEquals(w1, w2);
            agreed++;
            if (n1 > 0) substitutedSomewhere++;
        }
        assertEquals(2000, agreed);
        org.junit.jupiter.api.Assertions.assertTrue(substitutedSomewhere > 100, "the trials exercise substitution: " + substitutedSomewhere);
    }

    /** A miss is given up only when every token that chose it would give it up; one token that needs it keeps it for all. */
    @Test
    void aMissIsGivenUpOnlyWhenNoTokenOfTheBatchNeedsIt() {
        // k = 2 of 6 experts. Token 0: active {0, 1}, S = 0.15 (expert 2); token 1: active {3, 1}, S = 0.14.
        float[] p = {
                0.40f, 0.16f, 0.15f, 0.14f, 0.10f, 0.05f,
                0.10f, 0.16f, 0.14f, 0.45f, 0.10f, 0.05f};
        int[] sel = {0, 1, 3, 1};
        float[] w = {0.40f, 0.16f, 0.45f, 0.16f};
        int[] done = new int[4];
        // expert 1 is missing; resident stand-ins: 2 for both tokens (token 1's 2 scores 0.14 > (1-0.25)·0.14)
        int n = new Substitution(0.25, false).applyBatch(p, 6, 2, sel, w, 2, in(0, 3), in(0, 2, 3), done);
        assertEquals(2, n);
        assertArrayEquals(new int[] {0, 2, 3, 2}, sel);
        assertArrayEquals(new int[] {1, 3}, java.util.Arrays.copyOf(done, 2));
        assertArrayEquals(new float[] {0.40f, 0.15f, 0.45f, 0.14f}, w);

        // token 1 now scores expert 1 high (0.30 >= (1+α)·S): it needs it, so token 0 keeps it as well
        float[] q = p.clone();
        q[6 + 1] = 0.30f;
        int[] sel2 = {0, 1, 3, 1};
        float[] w2 = {0.40f, 0.16f, 0.45f, 0.30f};
        assertEquals(0, new Substitution(0.25, false).applyBatch(q, 6, 2, sel2, w2, 2, in(0, 3), in(0, 2, 3), null));
        assertArrayEquals(new int[] {0, 1, 3, 1}, sel2);

        // an expert that is some token's top choice is never given up
        int[] sel3 = {0, 1, 1, 3};
        float[] r = p.clone();
        r[6 + 1] = 0.5f;
        r[6 + 3] = 0.2f;
        assertEquals(0, new Substitution(0.25, false).applyBatch(r, 6, 2, sel3, new float[4], 2, in(0, 3), in(0, 2, 3), null));
    }

    @Test
    void badAlphaIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Substitution(1.0, false));
        assertThrows(IllegalArgumentException.class, () -> new Substitution(-0.1, false));
    }
}
