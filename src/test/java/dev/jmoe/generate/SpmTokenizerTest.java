package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SpmTokenizerTest {

    /** Pieces and their scores (higher merges first); single characters score lowest. */
    private static Map<String, Float> pieces(Object... pairs) {
        Map<String, Float> m = new LinkedHashMap<>();
        for (String c : List.of("▁", "h", "e", "l", "o", "w", "r", "d", "a", "b", "c")) {
            m.put(c, -100f);
        }
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((String) pairs[i], ((Number) pairs[i + 1]).floatValue());
        }
        return m;
    }

    private static final Map<String, Float> HELLO = pieces(
            "he", -1, "ll", -2, "llo", -3, "▁he", -4, "▁hello", -5, "▁w", -6, "or", -7, "ld", -8, "▁wor", -9);

    /** &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, optionally the 256 byte tokens, then the pieces. */
    private static VocabData.Builder vocab(Map<String, Float> pieces, boolean byteTokens) {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Integer> types = new ArrayList<>(List.of(TokenType.UNKNOWN.code, TokenType.CONTROL.code, TokenType.CONTROL.code));
        List<Float> scores = new ArrayList<>(List.of(0f, 0f, 0f));
        if (byteTokens) {
            for (int b = 0; b < 256; b++) {
                tokens.add(String.format("<0x%02X>", b));
                types.add(TokenType.BYTE.code);
                scores.add(0f);
            }
        }
        pieces.forEach((p, s) -> {
            tokens.add(p);
            types.add(TokenType.NORMAL.code);
            scores.add(s);
        });
        float[] sc = new float[scores.size()];
        for (int i = 0; i < sc.length; i++) {
            sc[i] = scores.get(i);
        }
        return VocabData.builder("llama", tokens).scores(sc).tokenTypes(types.stream().mapToInt(Integer::intValue).toArray());
    }

    private static int[] ids(Tokenizer t, String... texts) {
        int[] r = new int[texts.length];
        for (int i = 0; i < texts.length; i++) {
            r[i] = t.tokenId(texts[i]);
            assertTrue(r[i] >= 0, "no token " + texts[i]);
        }
        return r;
    }

    @Test
    void mergesByScoreWithSpacePrefix() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, true).build());
        assertTrue(t.addBos());
        assertEquals(1, t.bos());
        assertEquals(2, t.eos());
        assertEquals(0, t.unk());
        // "▁hello▁world": he, ll, llo, ▁he, ▁hello, ▁w, or, ld, ▁wor in score order; "▁world" is no token.
        int[] expected = ids(t, "<s>", "▁hello", "▁wor", "ld");
        assertArrayEquals(expected, t.encode("hello world", true, false));
        assertEquals("hello world", t.decode(t.encode("hello world", true, false)));
    }

    @Test
    void higherScoreWinsOverPositionAndTiesGoLeft() {
        Tokenizer tie = Tokenizer.of(vocab(pieces("ab", -20, "bc", -20), true).addSpacePrefix(false).build());
        assertArrayEquals(ids(tie, "ab", "c"), tie.encode("abc", false, false));
        Tokenizer right = Tokenizer.of(vocab(pieces("ab", -20, "bc", -15), true).addSpacePrefix(false).build());
        assertArrayEquals(ids(right, "a", "bc"), right.encode("abc", false, false));
    }

    @Test
    void byteFallbackForCharactersOutsideTheVocabulary() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, true).build());
        String s = "hi ☃😀";
        int[] got = t.encode(s, false, false);
        assertArrayEquals(ids(t, "▁", "h", "<0x69>", "▁", "<0xE2>", "<0x98>", "<0x83>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"), got);
        assertEquals(s, t.decode(got));
        assertEquals(TokenType.BYTE, t.tokenType(got[2]));
        assertArrayEquals(new byte[] {0x69}, t.tokenBytes(got[2]));
    }

    @Test
    void unknownTokenWithoutByteTokens() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, false).build());
        assertArrayEquals(new int[] {t.tokenId("▁"), t.tokenId("h"), 0}, t.encode("hi", false, false));
        assertEquals("h", t.decode(t.encode("hi", false, false)), "the unknown token prints nothing");
    }

    @Test
    void spacesRoundTrip() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, true).build());
        for (String s : List.of("  hello", "hello  ", " a b  c ", "", "hello\nworld", "x")) {
            int[] enc = t.encode(s, true, false);
            assertEquals(s, t.decode(enc), "'" + s + "'");
        }
        assertArrayEquals(ids(t, "▁", "▁", "▁hello"), t.encode("  hello", false, false));
    }

    @Test
    void withoutSpacePrefix() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, true).addSpacePrefix(false).build());
        assertArrayEquals(ids(t, "he", "llo"), t.encode("hello", false, false));
        assertEquals("hello", t.decode(t.encode("hello", false, false)));
        assertEquals(" hello", t.decode(ids(t, "▁hello")), "nothing to strip when no prefix was added");
    }

    @Test
    void specialTokensAndTheSpaceAfterThem() {
        Tokenizer t = Tokenizer.of(vocab(HELLO, true).build());
        // Text right after a special token gets the space prefix again, as in llama.cpp.
        assertArrayEquals(ids(t, "<s>", "▁hello", "</s>"), t.encode("<s>hello</s>", false, true));
        int[] literal = t.encode("<s>hello", false, false);
        assertEquals(ids(t, "<0x3C>")[0], literal[1], "'<' spelled by its byte token when specials are not parsed");
        assertEquals("<s>hello", t.decode(literal));
        assertTrue(t.isEndOfGeneration(2));
    }
}
