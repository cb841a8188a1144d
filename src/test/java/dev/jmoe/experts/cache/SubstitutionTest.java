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

    @Test
    void badAlphaIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Substitution(1.0, false));
        assertThrows(IllegalArgumentException.class, () -> new Substitution(-0.1, false));
    }
}
