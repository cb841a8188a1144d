package dev.jmoe.generate;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Learns a small byte-level BPE vocabulary (GPT-2 layout: 256 byte symbols, then one token per merge,
 * then the special tokens) from a sample text. Used to give generated test models a tokenizer that
 * really works; the trained models of tools/train bring their own, learnt from a corpus.
 */
public final class BpeVocabBuilder {
    /** tokens (byte alphabet), merges ("a b"), token types (1 normal, 3 control, 5 unused) and the BOS/EOS ids. */
    public record Vocab(List<String> tokens, List<String> merges, int[] tokenTypes, int bos, int eos) {}

    private static final Pattern WORDS = Pattern.compile(" ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+");

    private BpeVocabBuilder() {}

    /**
     * @param vocabSize total tokens including the two special ones (BOS "&lt;s&gt;", EOS "&lt;/s&gt;"), ≥ 258.
     *                  When the text runs out of pairs to merge, the rest is filled with unused placeholder tokens.
     */
    public static Vocab build(String sample, int vocabSize) {
        if (vocabSize < 258) throw new IllegalArgumentException("a byte-level BPE vocabulary needs at least 258 tokens, got " + vocabSize);
        List<String> tokens = new ArrayList<>(vocabSize);
        for (int b = 0; b < 256; b++) tokens.add(String.valueOf(ByteLevel.byteToChar(b)));

        // words as lists of symbols, with their counts
        Map<String, Integer> wordCounts = new LinkedHashMap<>();
        Matcher m = WORDS.matcher(sample);
        while (m.find()) wordCounts.merge(ByteLevel.encode(m.group()), 1, Integer::sum);
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        for (Map.Entry<String, Integer> w : wordCounts.entrySet()) {
            List<String> symbols = new ArrayList<>();
            w.getKey().codePoints().forEach(cp -> symbols.add(new String(Character.toChars(cp))));
            words.add(symbols);
            counts.add(w.getValue());
        }

        List<String> merges = new ArrayList<>();
        java.util.Set<String> known = new java.util.HashSet<>(tokens);
        while (tokens.size() < vocabSize - 2) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int i = 0; i < words.size(); i++) {
                List<String> w = words.get(i);
                for (int j = 0; j + 1 < w.size(); j++) pairs.merge(w.get(j) + " " + w.get(j + 1), counts.get(i), Integer::sum);
            }
            String best = null;
            int bestCount = 1; // a pair seen once is not worth a token
            for (Map.Entry<String, Integer> p : pairs.entrySet()) {
                if (p.getValue() > bestCount || (p.getValue() == bestCount && best != null && p.getKey().compareTo(best) < 0)) {
                    best = p.getKey();
                    bestCount = p.getValue();
                }
            }
            if (best == null) break;
            merges.add(best);
            int space = best.indexOf(' ');
            String a = best.substring(0, space), b = best.substring(space + 1), ab = a + b;
            if (known.add(ab)) tokens.add(ab); // two merges may spell the same token; it is listed once
            for (List<String> w : words) {
                for (int j = 0; j + 1 < w.size(); j++) {
                    if (w.get(j).equals(a) && w.get(j + 1).equals(b)) {
                        w.set(j, ab);
                        w.remove(j + 1);
                    }
                }
            }
        }
        int[] types = new int[vocabSize];
        java.util.Arrays.fill(types, 1);
        for (int i = 0; tokens.size() < vocabSize - 2; i++) {
            types[tokens.size()] = 5;
            tokens.add("<unused_" + i + ">");
        }
        int bos = tokens.size();
        tokens.add("<s>");
        int eos = tokens.size();
        tokens.add("</s>");
        types[bos] = 3;
        types[eos] = 3;
        return new Vocab(List.copyOf(tokens), List.copyOf(merges), types, bos, eos);
    }
}
