package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Models made by the generator for every architecture and tensor format run end to end, and the Vector
 * API kernels give the same logits as the scalar reference kernels on each of them (prompt batch and
 * single-token decode both).
 */
class GeneratedModelsTest {
    @TempDir static Path dir;
    private static Parallel pool;

    @BeforeAll static void start() { pool = new Parallel(2); }
    @AfterAll static void stop() { pool.close(); }

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        for (String arch : new String[]{"llama-moe", "qwen2moe", "qwen3moe", "olmoe", "llama-dense", "qwen3", "qwen2"}) {
            for (FileType t : new FileType[]{FileType.F16, FileType.Q8_0, FileType.Q4_K_M}) list.add(Arguments.of(arch, t));
        }
        for (FileType t : FileType.values()) {
            if (t != FileType.F16 && t != FileType.Q8_0 && t != FileType.Q4_K_M) list.add(Arguments.of("llama-moe", t));
        }
        return list.stream();
    }

    static RandomModel.Shape shape(String arch) {
        return switch (arch) {
            case "llama-moe" -> new RandomModel.Shape("llama", 2, 256, 8, 4, 32, 8, 2, 256, 0, 300, 256, 1e6f, 1e-5f, false, 1);
            case "qwen2moe" -> new RandomModel.Shape("qwen2moe", 2, 256, 4, 2, 64, 8, 3, 256, 256, 300, 256, 1e6f, 1e-6f, false, 2);
            case "qwen3moe" -> new RandomModel.Shape("qwen3moe", 2, 256, 4, 2, 128, 8, 2, 256, 0, 300, 256, 1e6f, 1e-6f, false, 3);
            case "olmoe" -> new RandomModel.Shape("olmoe", 2, 256, 8, 8, 32, 8, 2, 256, 0, 300, 256, 1e4f, 1e-5f, false, 4);
            case "llama-dense" -> new RandomModel.Shape("llama", 2, 256, 8, 2, 32, 0, 0, 512, 0, 300, 256, 1e4f, 1e-5f, true, 5);
            case "qwen3" -> new RandomModel.Shape("qwen3", 2, 256, 4, 2, 64, 0, 0, 512, 0, 300, 256, 1e6f, 1e-6f, false, 6);
            case "qwen2" -> new RandomModel.Shape("qwen2", 2, 256, 4, 2, 64, 0, 0, 512, 0, 300, 256, 1e6f, 1e-6f, true, 7);
            default -> throw new IllegalArgumentException(arch);
        };
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void vectorKernelsMatchScalarReferenceEndToEnd(String arch, FileType type) throws Exception {
        Path file = dir.resolve(arch + "-" + type + ".gguf");
        RandomModel.write(shape(arch), type, file);
        int[] prompt = {298, 5, 77, 190, 33, 250, 101, 64, 12};
        try (GgufFile f = GgufFile.open(file)) {
            Model m = Model.load(f);
            assertEquals(shape(arch).nExpert() > 0, m.hyperparams().hasExperts());
            float[][] fast = run(m);
            // Q4_0 and Q4_K matrices regrouped for the integer kernels (16-bit activations), as generate runs them
            float[][] packed = run(m.withPackedWeights());
            float[][] reference = Kernels.withScalarReference(true, () -> run(m));
            for (float[][] got : new float[][][]{fast, packed}) {
                String layout = got == fast ? "" : " packed";
                for (int i = 0; i < got.length; i++) {
                    double maxDiff = 0, maxAbs = 0;
                    for (int j = 0; j < got[i].length; j++) {
                        assertTrue(Float.isFinite(got[i][j]), "non-finite logit");
                        maxDiff = Math.max(maxDiff, Math.abs(got[i][j] - reference[i][j]));
                        maxAbs = Math.max(maxAbs, Math.abs(reference[i][j]));
                    }
                    assertTrue(maxAbs > 0.1, "logits are all ~0: the model computes nothing");
                    assertTrue(maxDiff < 2e-3, arch + " " + type + layout + " step " + i + ": max |Δ| " + maxDiff + " (max |logit| " + maxAbs + ")");
                }
            }
        }
    }

    /**
     * A prompt fed one token at a time gives the logits the batched prompt gives at every position. Decode steps take
     * their own path through the layer (one dispatch for q/k/v, a token's experts and a shared expert fused, outputs
     * laid out for the down projections as they are computed), which the comparison with the scalar kernels above
     * cannot check: both sides run the same layer code.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("decodeCases")
    void decodingTokenByTokenGivesTheBatchedPromptsLogits(String arch, FileType type, boolean int8) throws Exception {
        Path file = dir.resolve("steps-" + arch + "-" + type + ".gguf");
        RandomModel.write(shape(arch), type, file);
        int[] prompt = {298, 5, 77, 190, 33, 250, 101, 64, 12};
        try (GgufFile f = GgufFile.open(file)) {
            Model m = Model.load(f).withPackedWeights().withActivationQuantization(int8);
            float[] batched = m.newState(64, pool).evalAll(prompt, 0, prompt.length, prompt.length);
            float[] stepped = m.newState(64, pool).evalAll(prompt, 0, prompt.length, 1);
            int v = m.hyperparams().nVocab();
            for (int t = 0; t < prompt.length; t++) {
                double maxDiff = 0, maxAbs = 0;
                for (int j = t * v; j < (t + 1) * v; j++) {
                    maxDiff = Math.max(maxDiff, Math.abs(batched[j] - stepped[j]));
                    maxAbs = Math.max(maxAbs, Math.abs(batched[j]));
                }
                assertTrue(maxAbs > 0.1, "logits are all ~0: the model computes nothing");
                // 8-bit rounding of activations computed in another float order can flip, hence the wider bound there
                assertTrue(maxDiff < (int8 ? 0.05 : 2e-3), arch + " " + type + (int8 ? " int8" : "") + " position " + t + ": max |Δ| " + maxDiff);
            }
        }
    }

    static Stream<Arguments> decodeCases() {
        List<Arguments> list = new ArrayList<>();
        for (String arch : new String[]{"llama-moe", "qwen2moe", "qwen3moe", "olmoe", "llama-dense"}) {
            for (FileType t : new FileType[]{FileType.Q8_0, FileType.Q4_0, FileType.Q4_K_M}) list.add(Arguments.of(arch, t, false));
        }
        list.add(Arguments.of("qwen2moe", FileType.Q4_0, true));
        list.add(Arguments.of("llama-moe", FileType.Q4_K_M, true));
        return list.stream();
    }

    /** Logits after a 9-token prompt (batched) and after each of 3 decode steps fed with the greedy token. */
    private static float[][] run(Model m) {
        InferenceState st = m.newState(64, pool);
        float[][] out = new float[4][];
        out[0] = st.eval(new int[]{298, 5, 77, 190, 33, 250, 101, 64, 12}, 0, 9, 9);
        for (int i = 1; i < 4; i++) out[i] = st.next(ConformanceTest.argmax(out[i - 1]));
        return out;
    }

    @Test
    void attentionFourHeadsPerKvHeadMatchesOneHeadAtATime() throws Exception {
        // 8 query heads over 2 KV heads: groups of 4, the grouped attention path (the reference models have groups of 2)
        RandomModel.Shape shape = new RandomModel.Shape("llama", 2, 256, 8, 2, 32, 8, 2, 256, 0, 300, 256, 1e6f, 1e-5f, false, 11);
        Path file = dir.resolve("gqa4.gguf");
        RandomModel.write(shape, FileType.Q8_0, file);
        try (GgufFile f = GgufFile.open(file)) {
            Model m = Model.load(f);
            float[][] grouped = run(m);
            float[][] single = ScopedValue.where(Model.GROUPED_ATTENTION, false).call(() -> run(m));
            for (int i = 0; i < grouped.length; i++) {
                double maxDiff = 0;
                for (int j = 0; j < grouped[i].length; j++) maxDiff = Math.max(maxDiff, Math.abs(grouped[i][j] - single[i][j]));
                assertTrue(maxDiff < 1e-4, "step " + i + ": max |Δ| " + maxDiff);
            }
        }
    }
}
