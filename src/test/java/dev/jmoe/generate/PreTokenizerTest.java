package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Expected splits are worked out by hand from each regex (leftmost alternative wins at each position). */
class PreTokenizerTest {

    private static List<String> split(String pre, String text) {
        return PreTokenizer.forName(pre).split(text);
    }

    private static final String TRICKY = "Hello world's  3.14 don't\n\n  x";

    @Test
    void gpt2() {
        assertEquals(List.of("Hello", " world", "'s", " ", " 3", ".", "14", " don", "'t", "\n\n ", " x"),
                split("gpt-2", TRICKY));
        // Contractions are case-sensitive here; a symbol run takes its leading space and following symbols.
        assertEquals(List.of("I", "'", "M", " 👋🏽!", "  ", "\t", "a"), split("gpt-2", "I'M 👋🏽!  \ta"));
        assertEquals(List.of(" 12345", " ", " x", "\n"), split("gpt-2", " 12345  x\n"));
    }

    @Test
    void olmoUsesTheGpt2Split() {
        assertEquals(split("gpt-2", TRICKY), split("olmo", TRICKY));
    }

    @Test
    void llama3() {
        assertEquals(List.of("Hello", " world", "'s", " ", " ", "3", ".", "14", " don", "'t", "\n\n", " ", " x"),
                split("llama-bpe", TRICKY));
        // Case-insensitive contractions, digits in groups of at most three, a symbol run swallows newlines.
        assertEquals(List.of("I", "'M", " 👋🏽!\n", "123", "45", "\tend"), split("llama-bpe", "I'M 👋🏽!\n12345\tend"));
    }

    @Test
    void qwen2() {
        assertEquals(List.of("Hello", ",", " 世界", "!", " ", "1", "2", "3", "\r\n", "\tend", "  "),
                split("qwen2", "Hello, 世界! 123\r\n\tend  "));
        assertEquals(List.of("I", "'M"), split("qwen2", "I'M"));
    }

    @Test
    void defaultAppliesFourRegexesInSequence() {
        // Punctuation and math symbols are cut out first, then the GPT-2 split, then digit runs, then triples.
        assertEquals(List.of("a", "+", "b", "=", "c", ",", " ", "123", "45", "!"), split("default", "a+b=c, 12345!"));
        assertEquals(split("default", "x"), split(null, "x"), "a missing pre-tokenizer name means default");
    }

    @Test
    void everyKnownPreTokenizerCoversItsInput() {
        String text = "Héllo, wörld!  It's 2024-06-01\r\n\t¿Qué? 你好世界 ١٢٣ 👋🏽 <sentinel:3> $x^2 IMGIMGAZ";
        for (String name : PreTokenizer.knownNames()) {
            List<String> pieces = split(name, text);
            assertEquals(text, String.join("", pieces), name);
            assertTrue(pieces.stream().noneMatch(String::isEmpty), name);
        }
    }

    @Test
    void unknownNameIsAnError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PreTokenizer.forName("gpt-5"));
        assertTrue(e.getMessage().contains("'gpt-5'") && e.getMessage().contains("qwen2"), e.getMessage());
    }
}
