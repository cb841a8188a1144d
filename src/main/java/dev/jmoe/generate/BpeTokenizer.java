package dev.jmoe.generate;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-level BPE ({@code tokenizer.ggml.model = gpt2}): text is split into words by the pre-tokenizer, each
 * word's UTF-8 bytes are written in GPT-2's byte alphabet, and adjacent symbols are merged lowest merge rank
 * first (leftmost first on ties) until no listed merge applies.
 */
final class BpeTokenizer extends BaseTokenizer {

    private static final int CACHE_LIMIT = 1 << 16;

    private final PreTokenizer pre;
    /**
     * Merge table on symbol ids: (left id &lt;&lt; 32 | right id) → (rank &lt;&lt; 32 | merged id). Symbol ids are
     * vocabulary ids, extended past the vocabulary for merge operands or results that are not tokens.
     */
    private final LongLongMap merges;
    /** Texts of the extended (non-token) symbols, indexed from vocabSize(). */
    private final List<String> extraSymbols = new ArrayList<>();
    /** Symbol id of each byte value. */
    private final int[] byteSymbols = new int[256];
    /** Natural text repeats its words, and a word always tokenizes the same way. */
    private final Map<String, int[]> wordCache = new ConcurrentHashMap<>();

    BpeTokenizer(VocabData d) {
        this(d, PreTokenizer.forName(d.pre()));
    }

    private BpeTokenizer(VocabData d, PreTokenizer pre) {
        // llama.cpp: BPE vocabularies add neither BOS nor EOS unless the pre-tokenizer or the file says so,
        // and have no default special ids (its placeholder id 11 is not carried over: absent means absent).
        super(d, new Defaults(-1, -1, -1, pre.addBosDefault(), false));
        this.pre = pre;
        if (d.merges() == null) {
            throw new TokenizerException("byte-level BPE vocabulary without " + VocabData.KEY_MERGES);
        }
        Map<String, Integer> extra = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            byteSymbols[b] = symbolId(String.valueOf(ByteLevel.byteToChar(b)), extra);
        }
        List<String> list = d.merges();
        merges = new LongLongMap(list.size());
        for (int i = 0; i < list.size(); i++) {
            String m = list.get(i);
            // The separator is the first space after the first character: a left symbol never contains a space.
            int sp = m == null || m.length() < 3 ? -1 : m.indexOf(' ', 1);
            if (sp < 0 || sp == m.length() - 1) {
                throw new TokenizerException(VocabData.KEY_MERGES + "[" + i + "] = '" + m
                        + "' is not of the form 'left right'");
            }
            String left = m.substring(0, sp), right = m.substring(sp + 1);
            long key = ((long) symbolId(left, extra) << 32) | symbolId(right, extra);
            // Duplicated merges keep their first (best) rank, as llama.cpp does.
            merges.putIfAbsent(key, ((long) i << 32) | symbolId(left + right, extra));
        }
    }

    private int symbolId(String text, Map<String, Integer> extra) {
        Integer id = ids.get(text);
        if (id != null) {
            return id;
        }
        return extra.computeIfAbsent(text, t -> {
            extraSymbols.add(t);
            return texts.size() + extraSymbols.size() - 1;
        });
    }

    String preTokenizerName() {
        return pre.name();
    }

    @Override
    protected void encodeText(String text, boolean afterSpecial, IntList out) {
        for (String word : pre.split(text)) {
            int[] tokens = wordCache.get(word);
            if (tokens == null) {
                IntList w = new IntList(word.length() + 2);
                encodeWord(word, w);
                tokens = w.toArray();
                if (wordCache.size() >= CACHE_LIMIT) {
                    wordCache.clear();
                }
                wordCache.put(word, tokens);
            }
            for (int t : tokens) {
                out.add(t);
            }
        }
    }

    /** Merges one pre-tokenized word and appends its token ids. */
    private void encodeWord(String word, IntList out) {
        if (pre.ignoreMerges()) {
            Integer whole = ids.get(ByteLevel.encode(word));
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
        int n = bytes.length;
        // Symbol i starts at byte i (symbols only grow rightwards); merged-away symbols get sym -1.
        int[] sym = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            sym[i] = byteSymbols[bytes[i] & 0xFF];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // Candidate merges as (rank << 32 | left position): lowest rank first, then leftmost, as llama.cpp.
        LongHeap queue = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            long m = merges.get(((long) sym[i] << 32) | sym[i + 1], -1);
            if (m >= 0) {
                queue.push((m & 0xFFFF_FFFF_0000_0000L) | i);
            }
        }
        while (!queue.isEmpty()) {
            long top = queue.pop();
            int left = (int) top;
            int right = left >= 0 && sym[left] >= 0 ? next[left] : -1;
            if (right < 0) {
                continue;
            }
            // Stale entry unless the pair now at this position is still the one that was queued.
            long m = merges.get(((long) sym[left] << 32) | sym[right], -1);
            if (m < 0 || (m >>> 32) != (top >>> 32)) {
                continue;
            }
            sym[left] = (int) m;
            sym[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
            }
            if (prev[left] >= 0) {
                long p = merges.get(((long) sym[prev[left]] << 32) | sym[left], -1);
                if (p >= 0) {
                    queue.push((p & 0xFFFF_FFFF_0000_0000L) | prev[left]);
                }
            }
            if (next[left] >= 0) {
                long q = merges.get(((long) sym[left] << 32) | sym[next[left]], -1);
                if (q >= 0) {
                    queue.push((q & 0xFFFF_FFFF_0000_0000L) | left);
                }
            }
        }
        for (int i = 0; i >= 0; i = next[i]) {
            int s = sym[i];
            if (s < texts.size()) {
                out.add(s);
                continue;
            }
            // A symbol that is not a token (a malformed vocabulary): fall back to its single-byte tokens.
            // llama.cpp skips bytes that have no token; the unknown token, when there is one, at least keeps
            // the loss visible.
            String text = extraSymbols.get(s - texts.size());
            for (int k = 0; k < text.length(); k++) {
                Integer b = ids.get(String.valueOf(text.charAt(k)));
                if (b != null) {
                    out.add(b);
                } else if (unk >= 0) {
                    out.add(unk);
                }
            }
        }
    }

    @Override
    protected byte[] normalTokenBytes(int token) {
        return ByteLevel.decode(texts.get(token));
    }

    @Override
    protected byte[] byteTokenBytes(int token) {
        return new byte[0];
    }

    /** Binary min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) {
                a = java.util.Arrays.copyOf(a, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) {
                    break;
                }
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long v = a[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int c = 2 * i + 1;
                if (c + 1 < size && a[c + 1] < a[c]) {
                    c++;
                }
                if (v <= a[c]) {
                    break;
                }
                a[i] = a[c];
                i = c;
            }
            a[i] = v;
            return top;
        }
    }
}
