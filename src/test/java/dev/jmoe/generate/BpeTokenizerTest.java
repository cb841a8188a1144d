package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BpeTokenizerTest {

    private static final List<String> MERGES = List.of(
            " |t", "h|e", " |a", "t|h", "e|r", " t|he", "i|n", " |w", "o|r", " w|or", "l|d", " wor|ld",
            "in|g", " |s", "1|2", "12|3", "'|s", "\n|\n");

    private static Tokenizer gpt2(List<String> controls, List<String> user) {
        return Tokenizer.of(TestVocabs.bpe("gpt-2", MERGES, controls, user).build());
    }

    private static int[] ids(Tokenizer t, String... plainTokens) {
        int[] r = new int[plainTokens.length];
        for (int i = 0; i < plainTokens.length; i++) {
            r[i] = TestVocabs.bpeId(t, plainTokens[i]);
        }
        return r;
    }

    @Test
    void mergesApplyInRankOrder() {
        Tokenizer t = gpt2(List.of(), List.of());
        assertArrayEquals(ids(t, " the", " world"), t.encode(" the world", false, false));
        // "ther": rank 1 merges h+e before t+h (rank 3) can apply, so "th" never forms here.
        assertArrayEquals(ids(t, "t", "he", "r"), t.encode("ther", false, false));
        assertArrayEquals(ids(t, "th"), t.encode("th", false, false));
        // Leftmost first on equal rank: "\n\n\n" merges the first pair, leaving the last newline alone.
        assertArrayEquals(ids(t, "\n\n", "\n"), t.encode("\n\n\n", false, false));
    }

    @Test
    void bytesWithoutMergesStayByteTokensAndDecodeBack() {
        Tokenizer t = gpt2(List.of(), List.of());
        String s = "é€😀";
        int[] enc = t.encode(s, false, false);
        byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
        assertEquals(utf8.length, enc.length);
        for (int i = 0; i < utf8.length; i++) {
            assertEquals(utf8[i] & 0xFF, enc[i], "token ids of the 256 byte symbols are the byte values here");
        }
        assertEquals(s, t.decode(enc));
    }

    @Test
    void agreesWithTextbookBpeOnRandomText() {
        Tokenizer t = gpt2(List.of(), List.of());
        PreTokenizer pre = PreTokenizer.forName("gpt-2");
        Map<String, Integer> rank = new HashMap<>();
        for (int i = 0; i < MERGES.size(); i++) {
            String m = MERGES.get(i);
            int sp = m.indexOf('|');
            rank.putIfAbsent(ByteLevel.encode(m.substring(0, sp)) + " " + ByteLevel.encode(m.substring(sp + 1)), i);
        }
        Random rnd = new Random(42);
        String alphabet = "the world sing123'\n\tä";
        for (int iter = 0; iter < 300; iter++) {
            StringBuilder sb = new StringBuilder();
            int n = 1 + rnd.nextInt(40);
            for (int i = 0; i < n; i++) {
                sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
            }
            String text = sb.toString();
            List<Integer> expected = new ArrayList<>();
            for (String word : pre.split(text)) {
                for (String sym : textbookBpe(ByteLevel.encode(word), rank)) {
                    expected.add(t.tokenId(sym));
                }
            }
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), t.encode(text, false, false),
                    "text: " + text.replace("\n", "\\n"));
            assertEquals(text, t.decode(t.encode(text, false, false)));
        }
    }

    /** Repeatedly merges the adjacent pair of lowest rank, leftmost first: the definition, in O(n²). */
    private static List<String> textbookBpe(String word, Map<String, Integer> rank) {
        List<String> syms = new ArrayList<>();
        word.chars().forEach(c -> syms.add(String.valueOf((char) c)));
        while (true) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < syms.size(); i++) {
                Integer r = rank.get(syms.get(i) + " " + syms.get(i + 1));
                if (r != null && r < bestRank) {
                    best = i;
                    bestRank = r;
                }
            }
            if (best < 0) {
                return syms;
            }
            syms.set(best, syms.get(best) + syms.remove(best + 1));
        }
    }

    @Test
    void controlTokensAreParsedOnlyWhenAskedButUserDefinedAlways() {
        Tokenizer t = gpt2(List.of("<|im_start|>", "<|im_end|>", "<|im"), List.of("<tool>"));
        int start = t.tokenId("<|im_start|>"), end = t.tokenId("<|im_end|>"), tool = t.tokenId("<tool>");
        String text = "<|im_start|> the<tool><|im_end|>";
        int[] parsed = t.encode(text, false, true);
        int[] theIds = ids(t, " the");
        // The longer "<|im_start|>" wins over its prefix "<|im".
        assertArrayEquals(new int[] {start, theIds[0], tool, end}, parsed);
        int[] literal = t.encode(text, false, false);
        assertFalse(contains(literal, start) || contains(literal, end), "control tokens must not be parsed");
        assertTrue(contains(literal, tool), "user-defined tokens are always parsed");
        assertEquals(text, t.decode(literal));
        // Control tokens print nothing unless asked; user-defined tokens print their text.
        assertEquals(" the<tool>", t.decode(parsed));
        assertEquals(text, t.decode(parsed, true));
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    @Test
    void bosAndEosFollowFileFlagsThenPreTokenizerDefaults() {
        List<String> controls = List.of("<s>", "</s>");
        VocabData.Builder b = TestVocabs.bpe("gpt-2", MERGES, controls, List.of());
        int bosId = 256 + countMergeTokens(), eosId = bosId + 1;
        Tokenizer plain = Tokenizer.of(b.bos(bosId).eos(eosId).build());
        assertFalse(plain.addBos(), "gpt-2 pre-tokenizer: no BOS unless the file says so");
        assertArrayEquals(ids(plain, " the"), plain.encode(" the", true, false));

        Tokenizer llama3 = Tokenizer.of(TestVocabs.bpe("llama-bpe", MERGES, controls, List.of()).bos(bosId).eos(eosId).build());
        assertTrue(llama3.addBos(), "llama-bpe defaults to adding BOS");
        int[] enc = llama3.encode(" the", true, false);
        assertEquals(bosId, enc[0]);

        Tokenizer both = Tokenizer.of(b.bos(bosId).eos(eosId).addBos(true).addEos(true).build());
        int[] e2 = both.encode("th", true, false);
        assertEquals(bosId, e2[0]);
        assertEquals(eosId, e2[e2.length - 1]);
        assertArrayEquals(ids(both, "th"), both.encode("th", false, false), "addSpecial=false adds nothing");
        assertTrue(both.isEndOfGeneration(eosId));
        assertFalse(both.isEndOfGeneration(bosId));
    }

    private static int countMergeTokens() {
        return (int) MERGES.stream().map(m -> m.replace("|", "")).distinct().count();
    }

    @Test
    void endOfTurnTokensAreRecognisedByText() {
        Tokenizer t = gpt2(List.of("<|endoftext|>", "<|im_end|>"), List.of());
        assertTrue(t.isEndOfGeneration(t.tokenId("<|im_end|>")));
        assertTrue(t.isEndOfGeneration(t.tokenId("<|endoftext|>")));
        assertEquals(t.tokenId("<|im_end|>"), t.eot());
        assertFalse(t.isEndOfGeneration(TestVocabs.bpeId(t, " the")));
    }

    @Test
    void llama3IgnoreMergesTakesWholeWordTokens() {
        // "ab" is a token but no merge builds it: only the ignore_merges rule of llama-bpe can produce it.
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevel.byteToChar(b)));
        }
        tokens.add("ab");
        VocabData.Builder v = VocabData.builder("gpt2", tokens).merges(List.of("x y"));
        assertArrayEquals(new int[] {'a', 'b'}, Tokenizer.of(v.pre("gpt-2").build()).encode("ab", false, false));
        assertArrayEquals(new int[] {256}, Tokenizer.of(v.pre("llama-bpe").addBos(false).build()).encode("ab", false, false));
    }

    @Test
    void badInputGivesClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.of(TestVocabs.bpe("no-such-pre", MERGES, List.of(), List.of()).build()));
        assertTrue(e.getMessage().contains("no-such-pre") && e.getMessage().contains("tokenizer.ggml.pre"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.of(VocabData.builder("gpt2", List.of("a", "b")).merges(List.of("ab")).build()));
        assertTrue(e.getMessage().contains("merges[0]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.of(VocabData.builder("gpt2", List.of("a")).build()));
        assertTrue(e.getMessage().contains("merges"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.of(VocabData.builder("wordpiece", List.of("a")).build()));
        assertTrue(e.getMessage().contains("wordpiece"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Tokenizer.of(TestVocabs.bpe("gpt-2", MERGES, List.of(), List.of()).addBos(true).build()));
        assertTrue(e.getMessage().contains("bos"), e.getMessage());
        Tokenizer t = gpt2(List.of(), List.of());
        e = assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {5, t.vocabSize()}));
        assertTrue(e.getMessage().contains(String.valueOf(t.vocabSize())), e.getMessage());
    }

    @Test
    void tokenizesLongTextAndLongWordsFast() {
        Tokenizer t = gpt2(List.of(), List.of());
        Random rnd = new Random(1);
        String[] words = {" the", " world", " sing", "ing", " 123", "'s", "\n\n", " täst", " 😀", "  "};
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 35_000) {
            sb.append(words[rnd.nextInt(words.length)]);
        }
        String text = sb.toString();
        // A single pre-token of 200k bytes defeats any per-word cache: only a non-quadratic merge loop is fast.
        String word = "th".repeat(100_000);
        for (int warm = 0; warm < 3; warm++) {
            t.encode(text, false, false);
        }
        long t0 = System.nanoTime();
        int[] enc = t.encode(text, false, false);
        long textMs = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(text, t.decode(enc));
        t0 = System.nanoTime();
        int[] w = t.encode(word, false, false);
        long wordMs = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(100_000, w.length);
        // Generous bounds for a shared 2-core machine; a quadratic merge loop takes minutes on the long word.
        assertTrue(textMs < 1000, "35 KB took " + textMs + " ms");
        assertTrue(wordMs < 3000, "200 KB word took " + wordMs + " ms");
    }
}
