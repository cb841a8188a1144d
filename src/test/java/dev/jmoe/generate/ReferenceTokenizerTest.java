package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.testutil.Reference;
import java.nio.file.Files;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The reference models' tokenizers must give exactly llama.cpp's ids for the reference prompt. */
class ReferenceTokenizerTest {

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_f16", "tiny_mixtral_q8_0", "tiny_mixtral_q4_0", "tiny_qwen3moe_q8_0"})
    void promptTokensMatchLlamaCpp(String model) throws Exception {
        String prompt = Files.readString(Reference.dir().resolve("prompt.txt"));
        // llama.cpp drops one trailing newline from a prompt read with -f.
        if (prompt.endsWith("\n")) {
            prompt = prompt.substring(0, prompt.length() - 1);
        }
        try (GgufFile f = GgufFile.open(Reference.model(model))) {
            Tokenizer t = Tokenizer.fromGguf(f);
            int[] expected = Reference.tokens(model);
            int[] got = t.encode(prompt, true, false);
            assertArrayEquals(expected, got);
            assertEquals(prompt, t.decode(got));
            assertEquals(model.startsWith("tiny_mixtral"), t.addBos());
            assertEquals(510, t.bos());
            assertEquals(511, t.eos());
            assertTrue(t.isEndOfGeneration(511));
            assertFalse(t.isEndOfGeneration(510));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny_mixtral_q8_0", "tiny_qwen3moe_q8_0"})
    void sampleTextRoundTrips(String model) throws Exception {
        String sample = Files.readString(Reference.dir().resolve("sample.txt"));
        try (GgufFile f = GgufFile.open(Reference.model(model))) {
            Tokenizer t = Tokenizer.fromGguf(f);
            int[] ids = t.encode(sample, false, false);
            assertEquals(sample, t.decode(ids));
            // Merges must have done real work: far fewer tokens than bytes.
            assertTrue(ids.length < sample.length() * 0.6, ids.length + " tokens for " + sample.length() + " chars");
        }
    }
}
