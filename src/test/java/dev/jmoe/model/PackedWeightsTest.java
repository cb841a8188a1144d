package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.Reference;
import org.junit.jupiter.api.Test;

/** {@link Model#withPackedWeights}: what gets packed, and when. */
class PackedWeightsTest {

    @Test
    void packsQ4_0AttentionNowAndEachExpertOnFirstUse() throws Exception {
        try (GgufFile f = GgufFile.open(Reference.model("tiny_mixtral_q4_0"))) {
            Model plain = Model.load(f);
            Model packed = plain.withPackedWeights();
            assertFalse(plain.packsWeights());
            assertTrue(packed.packsWeights());
            assertNull(plain.layer(0).wq().packed());
            assertNotNull(packed.layer(0).wq().packed());
            assertEquals(GgmlType.Q8_0, packed.layer(0).wk().type());
            assertInstanceOf(dev.jmoe.tensor.PackedQ8.class, packed.layer(0).wk().packed(), "Q8_0 is packed too, for float products");
            assertNotNull(packed.output().packed(), "the Q6_K output is packed too");

            ResidentExpertSource experts = (ResidentExpertSource) packed.residentExperts();
            assertEquals(0, experts.packedBytes(), "no expert is packed before it is used");
            ExpertWeights w = experts.acquire(1, 3);
            assertNotNull(w.gate().packed());
            assertNotNull(w.up().packed());
            assertNotNull(w.down().packed());
            long once = experts.packedBytes();
            assertTrue(once > w.byteSize(), "packed copies hold float scales: " + once + " vs " + w.byteSize());
            assertSame(w, experts.acquire(1, 3), "a second use reuses the packed copy");
            assertEquals(once, experts.packedBytes());
            assertNull(plain.residentExperts().acquire(1, 3).gate().packed());
        }
    }

    @Test
    void announcedExpertsArePackedWithThePoolAndMatchTheSingleThreadedPacking() throws Exception {
        try (GgufFile f = GgufFile.open(Reference.model("tiny_mixtral_q4_0")); Parallel pool = new Parallel(2)) {
            Model packed = Model.load(f).withPackedWeights();
            ResidentExpertSource viaPool = (ResidentExpertSource) packed.residentExperts();
            viaPool.willUse(2, new int[] {5, 1}, pool);
            long both = viaPool.packedBytes();
            assertTrue(both > 0, "willUse packs the announced experts");
            ExpertWeights w = viaPool.acquire(2, 5);
            assertEquals(both, viaPool.packedBytes(), "acquire finds them packed");
            ExpertWeights alone = ((ResidentExpertSource) Model.load(f).withPackedWeights().residentExperts()).acquire(2, 5);
            float[] x = new float[w.gate().cols()];
            for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i);
            float[] a = new float[w.gate().rows()], b = new float[w.gate().rows()];
            dev.jmoe.tensor.Kernels.matVec(null, w.gate(), x, 0, a, 0);
            dev.jmoe.tensor.Kernels.matVec(null, alone.gate(), x, 0, b, 0);
            assertArrayEquals(b, a, "packing split over threads gives the same copy");
        }
    }

    @Test
    void packedAndPlainModelsGenerateTheSameTokens() throws Exception {
        try (GgufFile f = GgufFile.open(Reference.model("tiny_mixtral_q4_0")); Parallel pool = new Parallel(2)) {
            Model plain = Model.load(f);
            int[] prompt = Reference.tokens("tiny_mixtral_q4_0");
            int[] a = greedy(plain, prompt, pool), b = greedy(plain.withPackedWeights(), prompt, pool);
            assertArrayEquals(a, b);
        }
    }

    @Test
    void q4_KMatricesArePackedToo() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("jmoe-q4k", ".gguf");
        try {
            RandomModel.write(GeneratedModelsTest.shape("llama-moe"), FileType.Q4_K_M, file);
            try (GgufFile f = GgufFile.open(file); Parallel pool = new Parallel(2)) {
                Model plain = Model.load(f), packed = plain.withPackedWeights();
                assertEquals(GgmlType.Q4_K, packed.layer(0).wq().type());
                assertNotNull(packed.layer(0).wq().packed());
                ExpertWeights w = ((ResidentExpertSource) packed.residentExperts()).acquire(0, 0);
                assertEquals(GgmlType.Q4_K, w.gate().type());
                assertNotNull(w.gate().packed());
                assertNotNull(w.up().packed());
                assertNotNull(w.down().packed(), w.down().type() + " down is packed too");
                int[] prompt = {298, 5, 77, 190, 33, 250, 101, 64, 12};
                assertArrayEquals(greedy(plain, prompt, pool), greedy(packed, prompt, pool));
            }
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    private static int[] greedy(Model m, int[] prompt, Parallel pool) {
        InferenceState st = m.newState(128, pool);
        float[] logits = st.eval(prompt, 0, prompt.length, 3); // batches of 3: below the tile threshold, so packed too
        int[] out = new int[24];
        for (int i = 0; i < out.length; i++) {
            out[i] = ConformanceTest.argmax(logits);
            logits = st.next(out[i]);
        }
        return out;
    }
}
