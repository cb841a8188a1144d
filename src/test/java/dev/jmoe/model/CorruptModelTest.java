package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.generate.ModelCheck;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.generate.TokenizerException;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.GgufImage;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #24's corrupt model files, each built here from a small real model by changing a few bytes of its metadata,
 * tensor table or data: each ends in one ModelException (or TokenizerException) naming the key or tensor, the layer
 * and the position where it applies, quickly and without a large allocation.
 */
class CorruptModelTest {
    @TempDir static Path dir;
    private static Path base;
    private static Path bundled;
    private static final Parallel POOL = new Parallel(1);

    @BeforeAll
    static void makeBase() throws IOException {
        base = dir.resolve("base.gguf");
        // F32 so that tests can write a NaN into a tensor's data directly.
        RandomModel.write(new RandomModel.Shape("qwen2moe", 2, 32, 2, 1, 16, 4, 2, 32, 32, 258, 64, 1e6f, 1e-6f, false, 7), FileType.F32, base);
        bundled = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
    }

    @AfterAll
    static void closePool() {
        POOL.close();
    }

    private static Path write(GgufImage img, String name) throws IOException {
        return img.write(dir.resolve(name + ".gguf"));
    }

    /** Loads {@code p}, expecting a ModelException within a few seconds; returns its message. */
    private static String loadFails(Path p) {
        return assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            try (GgufFile f = GgufFile.open(p)) {
                return assertThrows(ModelException.class, () -> Model.load(f)).getMessage();
            }
        });
    }

    /** Loads {@code p} and runs a few tokens, expecting a ModelException from the forward pass. */
    private static String runFails(Path p) throws IOException {
        try (GgufFile f = GgufFile.open(p)) {
            Model m = Model.load(f);
            InferenceState st = m.newState(16, POOL);
            return assertThrows(ModelException.class, () -> {
                st.eval(new int[] {1, 2, 3}, 0, 3, 3);
                st.next(4);
            }).getMessage();
        }
    }

    @Test
    void blockCountFarAboveTheFileIsRefusedBeforeAllocating() throws IOException {
        for (long n : new long[] {10_000_000L, 1L << 28, (1L << 31) - 1}) {
            GgufImage img = GgufImage.read(bundled).set("qwen2moe.block_count", GgufValue.ofU32(n));
            String m = loadFails(write(img, "blocks" + n));
            assertTrue(m.contains("block_count is " + n) && m.contains("tensors for 6 block(s)"), m);
        }
    }

    @Test
    void blockCountWithAMissingBlock() throws IOException {
        GgufImage img = GgufImage.read(base);
        img.tensors.forEach(t -> t.name = t.name.replace("blk.1.", "blk.7."));
        String m = loadFails(write(img, "gap"));
        assertTrue(m.contains("none for blk.1"), m);
    }

    @Test
    void headCountZeroIsNamedNotADivisionByZero() throws IOException {
        String m = loadFails(write(GgufImage.read(base).set("qwen2moe.attention.head_count", GgufValue.ofU32(0)), "heads0"));
        assertTrue(m.contains("qwen2moe.attention.head_count must be positive, got 0"), m);
    }

    @Test
    void nonFiniteEpsilonAndRopeBaseAreRefused() throws IOException {
        String m = loadFails(write(GgufImage.read(base).set("qwen2moe.attention.layer_norm_rms_epsilon", GgufValue.ofF32(Float.POSITIVE_INFINITY)), "eps"));
        assertTrue(m.contains("layer_norm_rms_epsilon must be a finite positive number, got Infinity"), m);
        m = loadFails(write(GgufImage.read(base).set("qwen2moe.rope.freq_base", GgufValue.ofF32(Float.POSITIVE_INFINITY)), "theta"));
        assertTrue(m.contains("rope.freq_base must be a finite positive number"), m);
        m = loadFails(write(GgufImage.read(base).set("qwen2moe.rope.freq_base", GgufValue.ofF64(Double.NaN)), "thetaNaN"));
        assertTrue(m.contains("rope.freq_base must be a finite positive number, got NaN"), m);
    }

    @Test
    void expertCountAboveTheRouterIsRefused() throws IOException {
        String m = loadFails(write(GgufImage.read(base).set("qwen2moe.expert_count", GgufValue.ofI32(Integer.MAX_VALUE)), "experts"));
        assertTrue(m.contains("expert_count is 2147483647") && m.contains("routes to 4 experts"), m);
    }

    @Test
    void keyOfTheWrongTypeIsAModelError() throws IOException {
        String m = loadFails(write(GgufImage.read(base).set("qwen2moe.block_count", GgufValue.ofString("two")), "type"));
        assertTrue(m.contains("qwen2moe.block_count"), m);
    }

    @Test
    void endOfSequenceIdOutsideTheVocabulary() throws IOException {
        Path p = write(GgufImage.read(base).set("tokenizer.ggml.eos_token_id", GgufValue.ofU32(4_000_000_000L)), "eos");
        try (GgufFile f = GgufFile.open(p)) {
            String m = assertThrows(TokenizerException.class, () -> Tokenizer.fromGguf(f)).getMessage();
            assertTrue(m.contains("tokenizer.ggml.eos_token_id is 4000000000, outside the vocabulary of 258 tokens"), m);
            ModelCheck.Report r = ModelCheck.check(f);
            assertFalse(r.runnable());
            assertTrue(r.problems().get(0).contains("eos_token_id"), r.problems().toString());
        }
    }

    @Test
    void nanInRouterWeightsStopsWithLayerAndPosition() throws IOException {
        GgufImage img = GgufImage.read(base).putFloat("blk.1.ffn_gate_inp.weight", 4 * 32 * 2, Float.NaN);
        String m = runFails(write(img, "router"));
        assertTrue(m.contains("router scores of layer 1 at position 0 are not finite (expert 2: NaN)"), m);
    }

    @Test
    void infinityInAttentionStopsWithLayerAndPosition() throws IOException {
        GgufImage img = GgufImage.read(base).putFloat("blk.0.attn_output.weight", 0, Float.POSITIVE_INFINITY);
        String m = runFails(write(img, "attn"));
        assertTrue(m.contains("the hidden state after the attention of layer 0 at position 0: value ") && m.contains(", not finite; the model's weights are corrupt"), m);
    }

    @Test
    void nanLogitsStopWithPosition() throws IOException {
        GgufImage img = GgufImage.read(base).putFloat("output.weight", 4 * 32 * 5, Float.NaN);
        String m = runFails(write(img, "logits"));
        assertTrue(m.contains("the logits from the output layer at position 2: value 5 is NaN, not finite"), m);
    }

    @Test
    void normTensorRelabelledWithAnotherTypeIsNamed() throws IOException {
        // The header now says F16: half the bytes, each pair of F32 halves read as two F16 values (and the shape
        // doubled so the byte size still fits); the loader names the tensor whose values turned non-finite or misshapen.
        GgufImage img = GgufImage.read(base);
        GgufImage.Tensor t = img.tensor("blk.0.attn_norm.weight");
        t.typeId = GgmlType.F16.id();
        t.dims = new long[] {64};
        String m = loadFails(write(img, "relabel"));
        assertTrue(m.contains("blk.0.attn_norm.weight"), m);
    }

    @Test
    void shiftedDataSectionIsCaught() throws IOException {
        GgufImage img = GgufImage.read(base);
        byte[] shifted = new byte[img.data.length];
        System.arraycopy(img.data, 0, shifted, 2, img.data.length - 2);
        img.data = shifted;
        Path p = write(img, "shifted");
        // Every F32 now straddles two of the original values: the norms turn non-finite or absurd, and the first one is named.
        try (GgufFile f = GgufFile.open(p)) {
            ModelException e = assertThrows(ModelException.class, () -> {
                Model m = Model.load(f);
                InferenceState st = m.newState(8, POOL);
                st.eval(new int[] {1, 2}, 0, 2, 2);
                st.next(3);
            });
            assertTrue(e.getMessage().contains("not finite") || e.getMessage().contains("holds"), e.getMessage());
        }
    }

    @Test
    void routingWithNoFiniteProbabilityIsRefused() {
        Routing r = new Routing(1, 4, 2);
        r.reset(1, 4, 2);
        float[] p = {Float.NaN, Float.NaN, Float.NaN, Float.NaN};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.selectTopK(0, p, 0, true));
        assertTrue(e.getMessage().contains("no expert has a finite routing probability for token 0"), e.getMessage());
    }
}
