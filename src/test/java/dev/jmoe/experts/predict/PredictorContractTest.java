package dev.jmoe.experts.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every predictor honours the interface: at any point of a run and any distance it answers at once with at most
 * {@code out.length} distinct expert ids of the model, and the hooks it is driven through leave the model's output
 * unchanged.
 */
class PredictorContractTest {
    record Case(String name, BiFunction<InferenceState, Model, ExpertPredictor> make) {
        @Override public String toString() { return name; }
    }

    static Stream<Case> predictors() {
        return Stream.of(
                new Case("none", (st, m) -> new NoPredictor()),
                new Case("gate", (st, m) -> new GateLookaheadPredictor(m)),
                new Case("history", (st, m) -> new HistoryPredictor(m.hyperparams().nLayer(), m.hyperparams().nExpert(), 0.5)),
                new Case("shadow-inline", (st, m) -> new ShadowPredictor("s", st, Requantizer.copyAs(m, GgmlType.Q8_0, null), Alignment.EVERY_TOKEN,
                        NextTokenRule.ARGMAX, new HistoryPredictor(m.hyperparams().nLayer(), m.hyperparams().nExpert(), 0.5), ShadowPredictor.Mode.INLINE)),
                new Case("shadow-thread", (st, m) -> new ShadowPredictor("s", st, Requantizer.copyAs(m, GgmlType.Q4_0, null), new Alignment(2, 3),
                        NextTokenRule.ARGMAX, new GateLookaheadPredictor(m), ShadowPredictor.Mode.THREAD)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("predictors")
    void answersAreBoundedDistinctExpertIds(Case c) {
        Model m = PredictTestModels.mixtralQ8();
        int nLayer = m.hyperparams().nLayer(), nExpert = m.hyperparams().nExpert();
        try (Parallel pool = new Parallel(1)) {
            int[] prompt = PredictTestModels.tokens(6, 8, m.hyperparams().nVocab());
            InferenceState plain = m.newState(32, pool);
            float[] reference = plain.eval(prompt, 0, 3, 3);
            for (int i = 3; i < prompt.length; i++) reference = plain.next(prompt[i]);
            InferenceState st = m.newState(32, pool);
            ExpertPredictor p = c.make().apply(st, m);
            int[] calls = {0};
            // predictions are checked from inside the pass, at every layer step, for every distance and two widths
            st.setLayerHook((layer, pos, n, residual, normed) -> {
                if (n != 1) return;
                for (int d = 1; d <= nLayer; d++) {
                    for (int w : new int[] {1, nExpert}) {
                        int[] out = new int[w];
                        int got = p.predict(pos, layer, d, out);
                        assertTrue(got >= 0 && got <= w, c + ": " + got + " ids for width " + w);
                        for (int i = 0; i < got; i++) {
                            assertTrue(out[i] >= 0 && out[i] < nExpert, c + ": expert id " + out[i]);
                            for (int j = 0; j < i; j++) assertTrue(out[i] != out[j], c + ": repeated id " + out[i]);
                        }
                        calls[0]++;
                    }
                }
            });
            try (PredictorHooks hooks = new PredictorHooks(st, p, nLayer, 2, (pos, layer, e, n, d) -> {
                assertTrue(n >= 1 && n <= 2 && d >= 1 && d <= nLayer && layer >= 0 && layer < nLayer);
            })) {
                float[] logits = st.eval(prompt, 0, 3, 3);             // a batch: no predictions
                for (int i = 3; i < prompt.length; i++) logits = st.next(prompt[i]);
                assertEquals((prompt.length - 3) * nLayer * nLayer * 2, calls[0]);
                // (bit-exactness is checked in a child JVM by JitExactnessTest; here the JIT tier may move the last bit)
                assertTrue(maxDiff(reference, logits) < 1e-5f, c + ": the predictor changed the model's output");
            }
        }
    }

    private static float maxDiff(float[] a, float[] b) {
        float m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
