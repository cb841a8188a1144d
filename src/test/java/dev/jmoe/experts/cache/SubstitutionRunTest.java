package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.testutil.TestModels;
import dev.jmoe.experts.store.Link;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.RoutingHook;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** SMoE substitution inside real decode steps: the rewritten routing obeys the rule and the architecture's weighting. */
class SubstitutionRunTest {
    @ParameterizedTest
    @ValueSource(strings = {"qwen2moe", "mixtral"})
    void substitutedRoutingKeepsTopExpertAndArchitectureWeights(String name) throws Exception {
        Path p = name.equals("mixtral") ? TestModels.mixtral() : TestModels.qwen2moe();
        try (GgufFile f = GgufFile.open(p); Parallel pool = new Parallel(1)) {
            Model m = Model.load(f);
            boolean renorm = m.spec().renormTopK();
            InferenceState st = m.newState(64, pool);
            OffloadConfig cfg = OffloadConfig.preset("smoe", "1/4", "host", Link.UNLIMITED).withAlpha(0.5);
            int nExpert = m.hyperparams().nExpert(), k = m.hyperparams().nExpertUsed();
            int[] checked = new int[1];
            try (OffloadRuntime rt = OffloadRuntime.install(st, cfg, null)) {
                RoutingHook offloadHook = st.routingHook();
                st.setRoutingHook((layer, pos, n, probs, routing) -> {
                    int top = 0;
                    for (int e = 1; e < nExpert; e++) if (probs[e] > probs[top]) top = e;
                    offloadHook.onRouting(layer, pos, n, probs, routing);
                    if (n != 1) return;
                    boolean hasTop = false;
                    float sum = 0;
                    for (int j = 0; j < k; j++) {
                        hasTop |= routing.expert(0, j) == top;
                        sum += probs[routing.expert(0, j)];
                        for (int i = 0; i < j; i++) assertTrue(routing.expert(0, i) != routing.expert(0, j), "expert used twice");
                    }
                    assertTrue(hasTop, "the top-scoring expert was substituted");
                    for (int j = 0; j < k; j++) {
                        float want = renorm ? probs[routing.expert(0, j)] / sum : probs[routing.expert(0, j)];
                        assertEquals(want, routing.weight(0, j), 1e-6f, "weight of slot " + j);
                    }
                    checked[0]++;
                });
                st.eval(new int[]{1, 5, 9, 13, 17}, 0, 5, 5);
                int tok = 3;
                for (int i = 0; i < 24; i++) {
                    float[] logits = st.next(tok);
                    for (float v : logits) assertTrue(Float.isFinite(v));
                    tok = ExactnessHarness.argmax(logits);
                }
                assertTrue(rt.stats().get(OffloadStats.DECODE, OffloadStats.Counter.SUBSTITUTIONS) > 0, "no substitution happened");
                assertEquals(0, rt.stats().get(OffloadStats.PREFILL, OffloadStats.Counter.SUBSTITUTIONS), "substitution in prefill");
            }
            assertEquals(24 * m.hyperparams().nLayer(), checked[0]);
        }
    }
}
