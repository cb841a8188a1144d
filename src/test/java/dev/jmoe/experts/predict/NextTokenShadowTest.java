package dev.jmoe.experts.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.cache.Predictions;
import dev.jmoe.experts.trace.PolicySimulator;
import dev.jmoe.experts.trace.RecordedPredictor;
import dev.jmoe.experts.trace.ReplayPredictor;
import dev.jmoe.experts.trace.RoutingTrace;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.experts.trace.SimulatedPredictor;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KvCache;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shadow that predicts across the token boundary: asked more than a token's worth of layers ahead it speculates the
 * next two tokens, its speculative KV entries are replaced by the main model's, predictions beyond a token's layers
 * reach the cache as foreseen (not prefetched), and a replay driven by recorded predictions is reproducible.
 */
class NextTokenShadowTest {
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

    private static ShadowPredictor inline(InferenceState main, Model copy, NextTokenRule rule) {
        return new ShadowPredictor("shadow", main, copy, Alignment.EVERY_TOKEN, rule, new NoPredictor(), ShadowPredictor.Mode.INLINE);
    }

    @Test
    void theShadowPredictsTheNextTokensExpertsAtEveryLayer() {
        int nLayer = f16.hyperparams().nLayer(), depth = 2 * nLayer;
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        int[] text = PredictTestModels.tokens(30, 5, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = inline(st, copy, NextTokenRule.text(text))) {
            assertEquals(1, sp.speculationDepth(), "by default one token past the main model's");
            PredictionMetrics m;
            try (PredictionEvaluator ev = new PredictionEvaluator(st, List.of(sp), depth, f16.hyperparams().nExpertUsed())) {
                assertEquals(2, sp.speculationDepth(), "asked two tokens' worth of layers ahead, it speculates two tokens");
                for (int t : text) st.next(t);
                m = ev.metrics().get(0);
            }
            for (int d = 1; d <= depth; d++) {
                assertEquals(1.0, m.recall(d), "same weights, the text's tokens: recall at " + d + " layer steps ahead");
                assertTrue(m.samples(d) >= (30 - 2) * f16.hyperparams().nExpertUsed(), "scored at " + d + ": " + m.samples(d));
            }
            assertEquals(0, sp.stats().fallbacks(), "every distance up to two tokens came from the shadow itself");
        }
    }

    @Test
    void acrossTheTokenBoundaryTheShadowIsOnlyAsGoodAsItsGuessOfTheToken() {
        // random text: the shadow's greedy guess of the next token is almost always wrong, so what it predicts for the
        // next token's layers is the routing of another token (the within-token distances are unaffected)
        int nLayer = f16.hyperparams().nLayer();
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        int[] text = PredictTestModels.tokens(40, 6, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = inline(st, copy, NextTokenRule.ARGMAX)) {
            PredictionMetrics m;
            try (PredictionEvaluator ev = new PredictionEvaluator(st, List.of(sp), 2 * nLayer, f16.hyperparams().nExpertUsed())) {
                for (int t : text) st.next(t);
                m = ev.metrics().get(0);
            }
            // one layer ahead within the token (target layers 1 … L−1) the token is the main model's
            for (int l = 1; l < nLayer; l++) assertEquals(1.0, m.recall(1, l), "within the token, target layer " + l);
            // from the last layer one step ahead, and every distance past the layer count, the target is the guessed token's
            assertTrue(m.recall(1, 0) < 0.9, "next token's first layer, wrong guesses: " + m.recall(1, 0));
            assertTrue(m.recall(nLayer + 1) < 0.9, "next token, wrong guesses: " + m.recall(nLayer + 1));
            assertTrue(sp.stats().guesses() > sp.stats().guessHits(), "wrong guesses were made: " + sp.stats());
        }
    }

    @Test
    void speculativeKvEntriesAreReplacedByTheMainModelsOnceItRunsThem() {
        Model q4 = Requantizer.copyAs(f16, GgmlType.Q4_0, pool);
        int nLayer = f16.hyperparams().nLayer();
        int[] text = PredictTestModels.tokens(12, 7, f16.hyperparams().nVocab());
        InferenceState st = f16.newState(32, pool);
        try (ShadowPredictor sp = inline(st, q4, NextTokenRule.text(text)); PredictorHooks hooks = new PredictorHooks(st, sp, 2 * nLayer, 4, null)) {
            for (int i = 0; i < text.length; i++) {
                st.next(text[i]);
                // the shadow aligned every completed position when the main model announced i, then ran i, i+1, i+2 itself
                assertEquals(Math.min(i + 3, 32), sp.shadowState().position(), "the shadow ran two tokens past " + i);
                for (int p = 0; p < i; p++) assertTrue(samePosition(st.kv(), sp.shadowState().kv(), p), "position " + p + " after token " + i);
                assertFalse(samePosition(st.kv(), sp.shadowState().kv(), i), "position " + i + " is still the shadow's own");
            }
        }
    }

    private static boolean samePosition(KvCache a, KvCache b, int p) {
        return PredictTestModels.samePosition(a, b, p, f16.hyperparams().nLayer());
    }

    @Test
    void beyondOneTokensLayersPredictionsAreForeseenNotPrefetched() {
        int nLayer = f16.hyperparams().nLayer();
        List<Integer> prefetched = new ArrayList<>(), foreseen = new ArrayList<>();
        PrefetchSink sink = new PrefetchSink() {
            @Override public void prefetch(int pos, int layer, int[] experts, int count, int distance) { prefetched.add(distance); }
            @Override public void foresee(int pos, int layer, int[] experts, int count, int distance) { foreseen.add(distance); }
        };
        ExpertPredictor fixed = new ExpertPredictor() {
            @Override public String name() { return "fixed"; }
            @Override public int predict(int pos, int layer, int distance, int[] out) {
                out[0] = distance % 16;
                return 1;
            }
        };
        InferenceState st = f16.newState(16, pool);
        try (PredictorHooks hooks = new PredictorHooks(st, fixed, 2 * nLayer, 4, sink)) {
            st.next(3);
            st.next(4);
        }
        assertEquals(2 * nLayer * 2 * nLayer, prefetched.size() + foreseen.size(), "every distance of every layer step of two tokens");
        assertTrue(prefetched.stream().allMatch(d -> d >= 1 && d <= nLayer), "prefetched: " + prefetched);
        assertTrue(foreseen.stream().allMatch(d -> d > nLayer && d <= 2 * nLayer), "foreseen: " + foreseen);
        assertEquals(prefetched.size(), foreseen.size(), "half the distances are past one token's layers");
        assertThrows(IllegalArgumentException.class, () -> new PredictorHooks(f16.newState(16, pool), fixed, 2 * nLayer + 1, 4, sink));
    }

    /** Records a same-weights shadow's predictions beside the routing, as {@code jmoe predict-eval --trace} does. */
    private static Path record(Path dir, int[] text, int depth) throws Exception {
        Path file = dir.resolve("recorded.trace.jsonl");
        Model copy = Requantizer.copyAs(f16, GgmlType.F16, pool);
        InferenceState st = f16.newState(64, pool);
        try (ShadowPredictor sp = inline(st, copy, NextTokenRule.text(text));
             RoutingTraceFile.Recorder rec = new RoutingTraceFile.Recorder(st, file, "test", sp.name(), depth);
             PredictionEvaluator ev = new PredictionEvaluator(st, List.of(sp), depth, f16.hyperparams().nExpertUsed())) {
            ev.listen((i, pos, layer, d, experts, count) -> rec.predicted(pos, layer, d, experts, count));
            for (int t : text) st.next(t);
        }
        return file;
    }

    private static OffloadStats replay(RoutingTraceFile.Loaded t, int slots, ReplayPredictor predictor) {
        RoutingTrace trace = t.trace();
        Predictions view = new Predictions(trace.nLayer(), trace.nExpert());
        EvictionPolicy pol = EvictionPolicies.create("predictive", new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), 16, trace.keySteps(), view));
        long[] ones = new long[trace.nLayer()];
        Arrays.fill(ones, 1);
        return PolicySimulator.simulate(trace, ones, 1, slots, pol, null, predictor, view);
    }

    @Test
    void aReplayDrivenByRecordedPredictionsIsTheTruthWhenTheyAreRightAndReproducible(@TempDir Path dir) throws Exception {
        int nLayer = f16.hyperparams().nLayer(), depth = 2 * nLayer;
        int[] text = PredictTestModels.tokens(48, 8, f16.hyperparams().nVocab());
        Path file = record(dir, text, depth);
        RoutingTraceFile.Loaded t = RoutingTraceFile.read(file);
        assertNotNull(t.predictions(), "the trace carries the predictions");
        assertEquals(depth, t.predictions().depth());
        assertEquals(48 * nLayer, t.trace().steps().size());
        int slots = 16; // a quarter of the 4 × 16 experts
        for (int h : new int[] {nLayer, depth}) {
            // a same-weights shadow reading the text names exactly the true experts: the replay equals the r = 1 model's
            OffloadStats recorded = replay(t, slots, new RecordedPredictor(t, h));
            OffloadStats truth = replay(t, slots, new SimulatedPredictor(t.trace(), h, 1.0, 1));
            assertEquals(truth.toMap().toString(), recorded.toMap().toString(), "H = " + h);
            assertEquals(recorded.toMap().toString(), replay(t, slots, new RecordedPredictor(t, h)).toMap().toString(), "deterministic, H = " + h);
        }
        OffloadStats one = replay(t, slots, new RecordedPredictor(t, nLayer)), two = replay(t, slots, new RecordedPredictor(t, depth));
        assertNotEquals(one.toMap().toString(), two.toMap().toString(), "seeing the next token's layers changes the evictions");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new RecordedPredictor(t, depth + 1));
        assertTrue(e.getMessage().contains("1.." + depth), e.getMessage());
    }

    @Test
    void badRecordedPredictionsAreRefusedWithTheLine(@TempDir Path dir) throws Exception {
        int[] text = PredictTestModels.tokens(6, 9, f16.hyperparams().nVocab());
        Path file = record(dir, text, 3);
        List<String> lines = new ArrayList<>(Files.readAllLines(file));
        int last = lines.size() - 1;
        lines.set(last, lines.get(last).replaceFirst("\"predicted\":\\[\\[[0-9,]*\\]", "\"predicted\":[[99]"));
        Path bad = dir.resolve("bad.jsonl");
        Files.write(bad, lines);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RoutingTraceFile.read(bad));
        assertTrue(e.getMessage().contains("line " + (last + 1)) && e.getMessage().contains("out of range"), e.getMessage());
        lines.set(last, lines.get(last).replaceFirst("\"predicted\":\\[\\[99\\]", "\"predicted\":[[1],[2],[3],[4]"));
        Files.write(bad, lines);
        e = assertThrows(IllegalArgumentException.class, () -> RoutingTraceFile.read(bad));
        assertTrue(e.getMessage().contains("prediction_depth"), e.getMessage());
    }
}
