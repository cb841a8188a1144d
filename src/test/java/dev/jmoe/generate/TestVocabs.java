package dev.jmoe.generate;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** Synthetic vocabularies for tokenizer tests. */
final class TestVocabs {
    private TestVocabs() {}

    /**
     * A byte-level BPE vocabulary: the 256 byte symbols (token id = byte value), then one token per merge
     * result in merge order, then {@code controls} (type control) and {@code userDefined} (type user-defined).
     * Merges are written in plain text here and converted to the byte alphabet.
     */
    static VocabData.Builder bpe(String pre, List<String> plainMerges, List<String> controls, List<String> userDefined) {
        Set<String> tokens = new LinkedHashSet<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevel.byteToChar(b)));
        }
        List<String> merges = new ArrayList<>();
        for (String m : plainMerges) {
            int sp = m.indexOf('|');
            String l = ByteLevel.encode(m.substring(0, sp)), r = ByteLevel.encode(m.substring(sp + 1));
            merges.add(l + " " + r);
            tokens.add(l + r);
        }
        List<String> all = new ArrayList<>(tokens);
        List<Integer> types = new ArrayList<>();
        all.forEach(t -> types.add(TokenType.NORMAL.code));
        for (String c : controls) {
            all.add(c);
            types.add(TokenType.CONTROL.code);
        }
        for (String u : userDefined) {
            all.add(u);
            types.add(TokenType.USER_DEFINED.code);
        }
        return VocabData.builder("gpt2", all).pre(pre).merges(merges)
                .tokenTypes(types.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Id of a token given in plain text (converted to the byte alphabet). */
    static int bpeId(Tokenizer t, String plain) {
        int id = t.tokenId(ByteLevel.encode(plain));
        if (id < 0) {
            throw new IllegalArgumentException("no token for '" + plain + "'");
        }
        return id;
    }
}
