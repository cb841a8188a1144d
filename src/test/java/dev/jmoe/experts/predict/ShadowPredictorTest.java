package dev.jmoe.experts.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KvCache;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The shadow predictor on random models: fidelity at equal precision, alignment, and never blocking the main pass. */
class ShadowPredictorTest {
    static Parallel pool;
    static Model f16;

    @BeforeAll
    static void setUp() {
        pool = new Parallel(2);
        f16 = PredictTestModels.qwen2moeF16();
    }

    @AfterAll
    static void tearDown() {
        pool.close();
    }

    private static ShadowPredictor shadow(InferenceState main, Model copy, Alignment a, NextTokenRule rule, ShadowPredictor.Mode mode) {
        return new ShadowPredictor("shadow", main, copy, a, rule, new NoPredictor(), mode);
    }

    /** Teacher-forces {@code tokens} one at a time through an evaluator of {@code predictors}. */
    private static List<PredictionMetrics> teacher(InferenceState st, int[] tokens, List<ExpertPredictor> predictors, int depth) {
        try (PredictionEvaluator ev = new PredictionEvaluator(st, predictors, depth, st.model().hyperparams().nExpertUsed())) {
            for (int t : tokens) st.next(t);
            return ev.metrics();
        }
    }

    @Test
    void sameWeightsShadowPredictsEveryLayerExactly() {
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        int[] text = PredictTestModels.tokens(40, 1, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = shadow(st, copy, Alignment.EVERY_TOKEN, NextTokenRule.text(text), ShadowPredictor.Mode.INLINE)) {
            PredictionMetrics m = teacher(st, text, List.of(sp), 4).get(0);
            for (int d = 1; d <= 4; d++) {
                assertEquals(1.0, m.recall(d), "recall at lookahead " + d);
                assertEquals(1.0, m.setMatch(d), "set match at lookahead " + d);
                assertTrue(m.samples(d) >= (40 - 1) * 4, "samples at " + d + ": " + m.samples(d));
            }
            assertEquals(0, sp.stats().fallbacks(), "an inline shadow has every layer ready");
        }
    }

    @Test
    void aMarginAddsTheShadowsNearTiesAndOnlyThem() {
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        int[] text = PredictTestModels.tokens(30, 11, f16.hyperparams().nVocab());
        int k = f16.hyperparams().nExpertUsed();
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = shadow(st, copy, Alignment.EVERY_TOKEN, NextTokenRule.text(text), ShadowPredictor.Mode.INLINE).withMargin(0.3)) {
            int[] sizes = new int[2 * k + 1];
            st.setLayerHook((layer, pos, n, r, x) -> {
                int[] out = new int[2 * k];
                int c = sp.predict(pos, layer, 1, out);
                if (pos > 0) sizes[c]++;
            });
            PredictionMetrics m;
            try (PredictionEvaluator ev = new PredictionEvaluator(st, List.of(sp), 2, new int[] {2 * k})) {
                for (int t : text) st.next(t);
                m = ev.metrics().get(0);
            }
            assertEquals(1.0, m.recall(1), "same weights: the k real experts are always among the predicted");
            assertTrue(m.precision(1) < 1.0, "runners-up within 30% were added at least once: " + m.precision(1));
            for (int c = 0; c < k; c++) assertEquals(0, sizes[c], "never fewer than k");
            assertTrue(sizes[k] > 0, "and exactly k when no runner-up is close");
            assertThrows(IllegalArgumentException.class, () -> sp.withMargin(1.0));
        }
    }

    @Test
    void greedyShadowSpeculatesTheMainModelsTokens() {
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = shadow(st, copy, Alignment.EVERY_TOKEN, NextTokenRule.ARGMAX, ShadowPredictor.Mode.INLINE);
             PredictionEvaluator ev = new PredictionEvaluator(st, List.of(sp), 4, 4)) {
            float[] logits = st.eval(new int[] {1, 5, 9, 13, 17}, 0, 5, 8);
            for (int i = 0; i < 20; i++) logits = st.next(NextTokenRule.ARGMAX.next(0, logits));
            PredictionMetrics m = ev.metrics().get(0);
            for (int d = 1; d <= 4; d++) assertEquals(1.0, m.recall(d), "recall at lookahead " + d);
            ShadowPredictor.Stats s = sp.stats();
            assertEquals(s.guesses(), s.guessHits(), "same weights: every speculated token is the main model's");
            assertTrue(s.guesses() >= 18, "guesses " + s.guesses());
            assertEquals(5, s.adopted(), "the prompt's KV entries are taken from the main model, not recomputed");
        }
    }

    @Test
    void lowerPrecisionShadowsTrackTheRouting() {
        int[] text = PredictTestModels.tokens(48, 2, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(64, pool);
        Model q8 = Requantizer.copyAs(f16, GgmlType.Q8_0, pool), q4 = Requantizer.copyAs(f16, GgmlType.Q4_0, pool);
        List<ExpertPredictor> ps = new ArrayList<>();
        ps.add(new ShadowPredictor("q8", st, q8, Alignment.EVERY_TOKEN, NextTokenRule.text(text), new NoPredictor(), ShadowPredictor.Mode.INLINE));
        ps.add(new ShadowPredictor("q4", st, q4, Alignment.EVERY_TOKEN, NextTokenRule.text(text), new NoPredictor(), ShadowPredictor.Mode.INLINE));
        ps.add(new GateLookaheadPredictor(f16));
        ps.add(new HistoryPredictor(4, 16, HistoryPredictor.DEFAULT_DECAY));
        List<PredictionMetrics> m = teacher(st, text, ps, 4);
        for (int d = 1; d <= 4; d++) {
            assertTrue(m.get(0).recall(d) >= 0.97, "q8 recall at " + d + ": " + m.get(0).recall(d));
            assertTrue(m.get(0).recall(d) >= m.get(1).recall(d) - 1e-9, "q8 at least as good as q4 at " + d);
            assertTrue(m.get(1).recall(d) > m.get(2).recall(d), "q4 shadow beats gate lookahead at " + d);
            assertTrue(m.get(1).recall(d) > m.get(3).recall(d), "q4 shadow beats history at " + d);
        }
        ps.forEach(ExpertPredictor::close);
    }

    @Test
    void kvAlignmentOverwritesTheShadowsEntriesWithTheMainModels() {
        Model q4 = Requantizer.copyAs(f16, GgmlType.Q4_0, pool);
        int[] text = PredictTestModels.tokens(14, 3, f16.hyperparams().nVocab());
        for (Alignment a : new Alignment[] {new Alignment(1, 1), new Alignment(1, 3), new Alignment(1, 0)}) {
            InferenceState st = f16.newState(32, pool);
            try (ShadowPredictor sp = shadow(st, q4, a, NextTokenRule.text(text), ShadowPredictor.Mode.INLINE)) {
                new PredictorHooks(st, sp, 2, 4, null);
                for (int i = 0; i < text.length; i++) {
                    st.next(text[i]);
                    // the shadow aligned when the main model announced position i; it has run i and i + 1 since
                    int aligned = a.kvPeriod() == 0 ? 0 : i / a.kvPeriod() * a.kvPeriod();
                    for (int p = 0; p < i; p++) {
                        boolean same = samePosition(st.kv(), sp.shadowState().kv(), p);
                        if (p < aligned) assertTrue(same, a + ": position " + p + " should hold the main model's KV after token " + i);
                        else assertFalse(same, a + ": position " + p + " is the shadow's own (aligned up to " + aligned + ") after token " + i);
                    }
                }
            }
        }
    }

    private static boolean samePosition(KvCache a, KvCache b, int p) {
        return PredictTestModels.samePosition(a, b, p, f16.hyperparams().nLayer());
    }

    @Test
    void tokenAlignmentRedoesWrongGuessesOnlyAtAlignedPositions() {
        Model q4 = Requantizer.copyAs(f16, GgmlType.Q4_0, pool);
        int[] text = PredictTestModels.tokens(20, 4, f16.hyperparams().nVocab()); // random text: greedy guesses are mostly wrong
        for (Alignment a : new Alignment[] {new Alignment(1, 1), new Alignment(0, 1)}) {
            InferenceState st = f16.newState(32, pool);
            try (ShadowPredictor sp = shadow(st, q4, a, NextTokenRule.ARGMAX, ShadowPredictor.Mode.INLINE)) {
                new PredictorHooks(st, sp, 1, 4, null);
                for (int t : text) st.next(t);
                ShadowPredictor.Stats s = sp.stats();
                assertTrue(s.guesses() > 5 && s.guessHits() < s.guesses(), a + ": " + s);
                if (a.tokenPeriod() == 1) assertEquals(s.guesses() - s.guessHits(), s.redone(), "every wrong guess is redone");
                else assertEquals(0, s.redone(), "without token alignment the shadow keeps its own tokens");
            }
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS) // a hang guard: a main pass that waited for the stalled shadow would never finish
    void mainPassNeverWaitsForAStalledShadow() throws Exception {
        Model q8 = Requantizer.copyAs(f16, GgmlType.Q8_0, pool);
        int[] text = PredictTestModels.tokens(12, 5, f16.hyperparams().nVocab());
        float[] reference = f16.newState(32, pool).eval(text, 0, text.length, 1);
        CountDownLatch release = new CountDownLatch(1);
        InferenceState st = f16.newState(32, pool);
        HistoryPredictor history = new HistoryPredictor(4, 16, 0.8);
        ShadowPredictor sp = new ShadowPredictor("stalled", st, q8, Alignment.EVERY_TOKEN, NextTokenRule.ARGMAX, history, ShadowPredictor.Mode.THREAD);
        sp.setLayerListener(layer -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        AtomicInteger prefetches = new AtomicInteger();
        try (PredictorHooks hooks = new PredictorHooks(st, sp, 3, 4, (pos, layer, experts, count, distance) -> prefetches.incrementAndGet())) {
            float[] logits = st.eval(text, 0, text.length, 1);
            assertArrayEquals(reference, logits, "predictions never change the main model's output");
            ShadowPredictor.Stats s = sp.stats();
            assertEquals(0, s.served(), "the stalled shadow published nothing");
            assertEquals((long) text.length * 4 * 3, s.fallbacks(), "every prediction came from the fallback at once");
            assertTrue(prefetches.get() > 0, "history predictions still reached the sink");
            assertNull(sp.failure());
            release.countDown();
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void threadedShadowServesPredictionsWhenItIsAhead() {
        Model q8 = Requantizer.copyAs(f16, GgmlType.Q8_0, pool);
        int[] text = PredictTestModels.tokens(10, 6, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(32, pool);
        // a slow main model (a pause before every layer): the shadow has time to get ahead
        st.setLayerHook((layer, pos, n, r, x) -> {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        ShadowPredictor sp = new ShadowPredictor("q8", st, q8, Alignment.EVERY_TOKEN, NextTokenRule.ARGMAX, new NoPredictor(), ShadowPredictor.Mode.THREAD);
        try (PredictorHooks hooks = new PredictorHooks(st, sp, 2, 4, (pos, layer, experts, count, distance) -> { })) {
            for (int t : text) st.next(t);
            ShadowPredictor.Stats s = sp.stats();
            assertTrue(s.served() > 0, "the shadow answered some predictions: " + s);
            assertEquals((long) text.length * 4 * 2, s.served() + s.fallbacks());
            assertNull(sp.failure());
        }
    }

    @Test
    void theShadowStopsAtTheEndOfTheContext() {
        Model q8 = Requantizer.copyAs(f16, GgmlType.Q8_0, pool);
        int[] text = PredictTestModels.tokens(8, 7, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(text.length, pool); // the last token fills the context: nothing to speculate after it
        try (ShadowPredictor sp = shadow(st, q8, Alignment.EVERY_TOKEN, NextTokenRule.text(text), ShadowPredictor.Mode.INLINE)) {
            PredictionMetrics m = teacher(st, text, List.of(sp), 4).get(0);
            assertEquals(text.length, sp.stats().positionsRun(), "every position once (guesses from the text are right), none past the context");
            assertTrue(m.samples(1) > 0);
        }
    }

    @Test
    void shadowMustBeTheSameModel() {
        Model other = PredictTestModels.mixtralQ8();
        InferenceState st = f16.newState(16, pool);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> shadow(st, other, Alignment.EVERY_TOKEN, NextTokenRule.ARGMAX, ShadowPredictor.Mode.INLINE));
        assertTrue(e.getMessage().contains("shadow model"), e.getMessage());
    }
}
