package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.eval.Perplexity;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.Reference;
import java.nio.file.Files;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** jmoe against what llama.cpp computed for the reference models (../shared/llamacpp-reference). */
class ConformanceTest {
    private static Parallel pool;

    @BeforeAll static void start() { pool = new Parallel(2); }
    @AfterAll static void stop() { pool.close(); }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_f16", "tiny_mixtral_q8_0", "tiny_mixtral_q4_0", "tiny_qwen3moe_q8_0"})
    void tokenizesPromptLikeLlamaCpp(String name) throws Exception {
        try (GgufFile f = GgufFile.open(Reference.model(name))) {
            Tokenizer tok = Tokenizer.fromGguf(f);
            String prompt = Reference.prompt();
            assertArrayEquals(Reference.tokens(name), tok.encode(prompt, true, false));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_f16", "tiny_mixtral_q8_0", "tiny_mixtral_q4_0", "tiny_mixtral_q4_0+packed", "tiny_qwen3moe_q8_0"})
    void allPositionLogitsMatchExactDequantizedReference(String name) throws Exception {
        int[] tokens = Reference.tokens(base(name));
        float[][] expected = Reference.logitsAll(base(name) + "_deq_f32");
        try (GgufFile f = GgufFile.open(Reference.model(base(name)))) {
            Model m = load(f, name);
            int v = m.hyperparams().nVocab();
            // prompt in two uneven batches, so both the batched and the continuing path are exercised
            InferenceState st = m.newState(256, pool);
            float[] all = st.evalAll(tokens, 0, tokens.length, 17);
            double maxDiff = 0;
            for (int p = 0; p < tokens.length; p++) {
                for (int i = 0; i < v; i++) maxDiff = Math.max(maxDiff, Math.abs(all[p * v + i] - expected[p][i]));
            }
            assertEquals(tokens.length, expected.length);
            assertTrue(maxDiff < 1e-3, name + ": max |Δlogit| " + maxDiff);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_f16", "tiny_mixtral_q8_0", "tiny_mixtral_q4_0", "tiny_mixtral_q4_0+packed", "tiny_qwen3moe_q8_0"})
    void greedyContinuationMatchesExactReference(String name) throws Exception {
        int[] tokens = Reference.tokens(base(name));
        int[] expected = Reference.greedy(base(name) + "_deq_f32");
        try (GgufFile f = GgufFile.open(Reference.model(base(name)))) {
            Model m = load(f, name);
            InferenceState st = m.newState(256, pool);
            float[] logits = st.eval(tokens, 0, tokens.length, 64);
            int[] got = new int[expected.length];
            for (int i = 0; i < got.length; i++) {
                got[i] = argmax(logits);
                logits = st.next(got[i]);
            }
            assertArrayEquals(expected, got);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_f16", "tiny_mixtral_q8_0", "tiny_mixtral_q4_0", "tiny_mixtral_q4_0+packed", "tiny_qwen3moe_q8_0"})
    void perplexityWithinHalfPercentOfLlamaCpp(String name) throws Exception {
        String text = Files.readString(Reference.dir().resolve("sample.txt"));
        try (GgufFile f = GgufFile.open(Reference.model(base(name)))) {
            Model m = load(f, name);
            Tokenizer tok = Tokenizer.fromGguf(f);
            int[] tokens = tok.encode(text, true, false);
            InferenceState st = m.newState(256, pool);
            Perplexity.Result r = Perplexity.compute(st, tokens, 256, 256, tok.addBos() ? tok.bos() : -1, null);
            double expected = Reference.ppl(base(name));
            double rel = Math.abs(r.ppl() - expected) / expected;
            assertTrue(rel < 0.005, name + ": jmoe ppl " + r.ppl() + " vs llama.cpp " + expected + " (" + rel * 100 + "%)");
        }
    }

    /** "name+packed": name's model with its Q4_0 matrices packed, the layout generate and chat use by default. */
    private static String base(String name) {
        return name.replace("+packed", "");
    }

    private static Model load(GgufFile f, String name) {
        Model m = Model.load(f);
        if (!name.endsWith("+packed")) return m;
        Model packed = m.withPackedWeights();
        assertTrue(packed.layer(0).wq().packed() != null, "the Q4_0 attention matrices should be packed");
        return packed;
    }

    static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
