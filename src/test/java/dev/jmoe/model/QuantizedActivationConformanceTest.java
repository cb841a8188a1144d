package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.Reference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * With Model.withActivationQuantization, jmoe rounds activations to 8 bits as llama.cpp does, so its
 * logits follow llama.cpp's own quantized run (logits_all.txt of the quantized model) instead of differing
 * from it by the rounding of the activations, as the exact float path does.
 */
class QuantizedActivationConformanceTest {
    private static Parallel pool;

    @BeforeAll static void start() { pool = new Parallel(2); }
    @AfterAll static void stop() { pool.close(); }

    /** max |Δlogit| per position against {@code expected}. */
    private static double[] diffs(Model m, int[] tokens, float[][] expected, int batch) {
        int v = m.hyperparams().nVocab();
        float[] all = m.newState(256, pool).evalAll(tokens, 0, tokens.length, batch);
        double[] d = new double[tokens.length];
        for (int p = 0; p < tokens.length; p++) {
            for (int i = 0; i < v; i++) d[p] = Math.max(d[p], Math.abs(all[p * v + i] - expected[p][i]));
        }
        return d;
    }

    private static double max(double[] d) {
        double m = 0;
        for (double x : d) m = Math.max(m, x);
        return m;
    }

    /**
     * Q8_0 products reproduce llama.cpp's arithmetic exactly, so the logits agree to the bit unless a float
     * step outside the kernels (attention, norms, router) rounds differently by an ulp and flips one 8-bit
     * rounding downstream; one such flip moves logits by a few hundredths.
     */
    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_q8_0", "tiny_qwen3moe_q8_0"})
    void q8_0LogitsFollowLlamaCppQuantizedRun(String name) throws Exception {
        int[] tokens = Reference.tokens(name);
        float[][] expected = Reference.logitsAll(name);
        assertEquals(tokens.length, expected.length);
        try (GgufFile f = GgufFile.open(Reference.model(name))) {
            Model m = Model.load(f);
            double exact = max(diffs(m, tokens, expected, 64));
            Model rounded = m.withActivationQuantization(true);
            // The prompt in one batch (grouped experts) and token by token (the decode path).
            double batched = max(diffs(rounded, tokens, expected, 64)), single = max(diffs(rounded, tokens, expected, 1));
            String report = name + ": max |Δlogit| vs llama.cpp's quantized run: float activations " + exact
                    + ", rounded activations batched " + batched + ", token by token " + single;
            System.out.println(report);
            assertTrue(batched < 0.05 && single < 0.05, report);
            assertTrue(exact > 0.1, "the float path should differ from llama.cpp's quantized run: " + report);
        }
    }

    /**
     * The Q4_0 model (Q4_0, Q8_0 attn_k/attn_v, Q6_K output) agrees with llama.cpp's quantized run to float
     * rounding at positions 0 and 1, through every kernel it uses; from position 2 on it is off by ~0.09 (less
     * than the float path's 0.12). The reference was computed with llama.cpp's repacked Q4_0 kernels: llama.cpp
     * 0.7.0 itself, run with --no-repack, parts from the reference at the same position by the same amount, and
     * jmoe's rounded path follows that plain run to ~1e-6 up to position 26 (measured with llama-results; see the
     * README's Conformance section).
     */
    @Test
    void q4_0LogitsFollowLlamaCppQuantizedRunForTheFirstPositions() throws Exception {
        String name = "tiny_mixtral_q4_0";
        int[] tokens = Reference.tokens(name);
        float[][] expected = Reference.logitsAll(name);
        try (GgufFile f = GgufFile.open(Reference.model(name))) {
            Model m = Model.load(f);
            double exact = max(diffs(m, tokens, expected, 64));
            Model rounded = m.withActivationQuantization(true);
            for (int batch : new int[] {64, 1}) {
                double[] d = diffs(rounded, tokens, expected, batch);
                String report = name + " batch " + batch + ": max |Δlogit| at positions 0, 1: " + d[0] + ", " + d[1]
                        + "; overall " + max(d) + " (float activations " + exact + ")";
                System.out.println(report);
                assertTrue(d[0] < 1e-4 && d[1] < 1e-4, report);
                assertTrue(max(d) < exact, report);
            }
        }
    }
}
