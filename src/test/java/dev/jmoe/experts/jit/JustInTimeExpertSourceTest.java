package dev.jmoe.experts.jit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.PredictTestModels;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.generate.Sampler;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import org.junit.jupiter.api.Test;

/** The just-in-time source's caching rules: nothing stays after use unless predicted, and right predictions load everything early. */
class JustInTimeExpertSourceTest {
    private static final int[] PROMPT = {1, 17, 42, 99, 7, 250, 3};

    private static void decode(InferenceState st, int tokens) {
        float[] logits = st.eval(PROMPT, 0, PROMPT.length, 4);
        for (int i = 0; i < tokens; i++) logits = st.next(Sampler.argmax(logits));
    }

    @Test
    void withoutPredictionsEveryExpertIsLoadedOnDemandAndEvictedAfterUse() {
        Model m = PredictTestModels.qwen2moeF16();
        try (Parallel pool = new Parallel(1)) {
            InferenceState st = m.newState(32, pool);
            try (OdMoeRuntime rt = OdMoeRuntime.install(st, new NoPredictor(), 2, "host", Link.UNLIMITED, null, 1)) {
                decode(st, 4);
                rt.source().awaitIdle();
                OffloadStats s = rt.stats();
                int uses = 4 * m.hyperparams().nLayer() * m.hyperparams().nExpertUsed();
                assertEquals(uses, s.get(OffloadStats.DECODE, Counter.MISSES_LOADED));
                assertEquals(uses, s.get(OffloadStats.DECODE, Counter.LOADS));
                assertEquals(0, rt.source().occupiedKeys().length, "no expert stays in fast memory after its use");
                assertEquals(12, rt.source().memory().slots(), "working set: k = 4 experts x (lookahead 2 + 1) layers");
                assertTrue(s.peakResidentBytes() <= 12 * ExpertLayout.of(m).maxExpertBytes());
            }
        }
    }

    @Test
    void rightPredictionsLoadEveryDecodeExpertAheadOfItsLayer() {
        Model m = PredictTestModels.qwen2moeF16();
        int k = m.hyperparams().nExpertUsed(), nLayer = m.hyperparams().nLayer();
        try (Parallel pool = new Parallel(1)) {
            InferenceState st = m.newState(32, pool);
            // a shadow with the main model's own weights, run inline: every prediction is right and ready in time
            ShadowPredictor oracle = new ShadowPredictor("same-weights", st, Requantizer.copyAs(m, GgmlType.F16, null), Alignment.EVERY_TOKEN,
                    NextTokenRule.ARGMAX, new NoPredictor(), ShadowPredictor.Mode.INLINE);
            try (OdMoeRuntime rt = OdMoeRuntime.install(st, oracle, 2, "mmap", Link.parse("500MB/s,20us"), null, 2)) {
                // let the loads requested at each layer finish before its FFN: this checks which experts the source
                // loads and keeps, not whether this machine's loader threads happen to be fast enough
                dev.jmoe.model.LayerHook predicting = st.layerHook();
                st.setLayerHook((l, pos, n, r, x) -> {
                    predicting.beforeFfn(l, pos, n, r, x);
                    rt.source().awaitIdle();
                });
                decode(st, 5);
                OffloadStats s = rt.stats();
                long uses = 5L * nLayer * k;
                assertEquals(uses, s.uses(OffloadStats.DECODE));
                // only the first decode token's layer 0 had no prediction (the prompt's last token ran as a batch)
                assertEquals(k, s.get(OffloadStats.DECODE, Counter.MISSES_LOADED), s.table());
                assertEquals(uses - k, s.get(OffloadStats.DECODE, Counter.PREFETCH_HITS), s.table());
                assertEquals(0, s.get(OffloadStats.DECODE, Counter.PREFETCHES_WASTED), s.table());
                rt.source().awaitIdle();
                // what is left is exactly what was predicted for the next token's first two layers
                assertEquals(2 * k, rt.source().occupiedKeys().length);
            }
        }
    }

    @Test
    void aBudgetBelowOneExpertIsRefusedClearly() {
        Model m = PredictTestModels.qwen2moeF16();
        try (Parallel pool = new Parallel(1)) {
            InferenceState st = m.newState(8, pool);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> OdMoeRuntime.install(st, new NoPredictor(), 1, "mmap", Link.UNLIMITED, "1000", 1));
            assertTrue(e.getMessage().contains("--expert-memory"), e.getMessage());
            assertEquals(m.residentExperts(), st.experts(), "a failed install leaves the state as it was");
        }
    }
}
