package dev.jmoe.generate;

import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.PriorityQueue;

/**
 * SentencePiece BPE ({@code tokenizer.ggml.model = llama}), as llama.cpp runs it: spaces become '▁', the
 * text gets a leading '▁' (add_space_prefix), then adjacent symbols are merged whenever their concatenation
 * is a vocabulary token, highest token score first (leftmost first on ties). Characters that end up in no
 * token are spelled with byte tokens {@code <0xNN>} (byte fallback), or the unknown token without them.
 */
final class SpmTokenizer extends BaseTokenizer {

    static final char SPACE_MARK = '\u2581';

    private final float[] scores;
    private final boolean addSpacePrefix;
    /** Token for each byte value, -1 where the vocabulary has none. */
    private final int[] byteTokens = new int[256];

    SpmTokenizer(VocabData d) {
        // llama.cpp's SentencePiece defaults: <unk>=0, <s>=1, </s>=2; add BOS, not EOS.
        super(d, new Defaults(1, 2, 0, true, false));
        this.scores = d.scores() != null ? d.scores() : new float[d.tokens().size()];
        this.addSpacePrefix = d.addSpacePrefix() == null || d.addSpacePrefix();
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.format("<0x%02X>", b));
            if (id == null && b < 0x80) {
                id = ids.get(String.valueOf((char) b)); // llama.cpp's second choice: the byte as a 1-char token
            }
            byteTokens[b] = id == null ? -1 : id;
        }
    }

    boolean addSpacePrefix() {
        return addSpacePrefix;
    }

    private record Bigram(float score, int left, int right, int size) {}

    private static final Comparator<Bigram> ORDER =
            Comparator.comparingDouble((Bigram b) -> -b.score()).thenComparingInt(Bigram::left);

    @Override
    protected void encodeText(String text, boolean afterSpecial, IntList out) {
        String s = (addSpacePrefix && afterSpecial ? " " + text : text).replace(' ', SPACE_MARK);
        int n = s.length();
        if (n == 0) {
            return;
        }
        // Symbols are indexed by their start char; a code point may span two chars (surrogate pair).
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        int last = -1;
        for (int i = 0; i < n; ) {
            int cl = Character.charCount(s.codePointAt(i));
            len[i] = cl;
            prev[i] = last;
            next[i] = -1;
            if (last >= 0) {
                next[last] = i;
            }
            last = i;
            i += cl;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n), ORDER);
        for (int i = 0; next[i] >= 0; i = next[i]) {
            addBigram(s, i, next[i], len, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            if (len[b.left] == 0 || len[b.right] == 0 || len[b.left] + len[b.right] != b.size) {
                continue;
            }
            len[b.left] += len[b.right];
            len[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) {
                prev[next[b.right]] = b.left;
            }
            addBigram(s, prev[b.left], b.left, len, queue);
            addBigram(s, b.left, next[b.left], len, queue);
        }
        for (int i = 0; i >= 0; i = next[i]) {
            String sym = s.substring(i, i + len[i]);
            Integer id = ids.get(sym);
            if (id != null) {
                out.add(id);
            } else {
                // Only single characters can miss: every merge produced a token by construction.
                for (byte b : sym.getBytes(StandardCharsets.UTF_8)) {
                    out.add(byteToken(b & 0xFF, sym));
                }
            }
        }
    }

    private int byteToken(int b, String forText) {
        if (byteTokens[b] >= 0) {
            return byteTokens[b];
        }
        if (unk >= 0) {
            return unk;
        }
        throw new IllegalArgumentException(String.format(
                "cannot encode '%s': the vocabulary has no token for it, no byte token <0x%02X> and no unknown token",
                forText, b));
    }

    private void addBigram(String s, int left, int right, int[] len, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) {
            return;
        }
        int size = len[left] + len[right];
        Integer id = ids.get(s.substring(left, left + size));
        if (id != null) {
            queue.add(new Bigram(scores[id], left, right, size));
        }
    }

    @Override
    protected byte[] normalTokenBytes(int token) {
        return texts.get(token).replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override
    protected byte[] byteTokenBytes(int token) {
        String t = texts.get(token);
        if (t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")) {
            try {
                return new byte[] {(byte) Integer.parseInt(t.substring(3, 5), 16)};
            } catch (NumberFormatException e) {
                // not a <0xNN> spelling: fall through to the raw text
            }
        }
        return t.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    protected boolean stripsLeadingSpace() {
        return addSpacePrefix;
    }
}
