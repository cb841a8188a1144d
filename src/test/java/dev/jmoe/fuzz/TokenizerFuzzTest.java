package dev.jmoe.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jmoe.generate.BpeVocabBuilder;
import dev.jmoe.generate.StreamingDecoder;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.generate.VocabData;
import dev.jmoe.gguf.GgufFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tokenizers on text from outside: any bytes (a prompt file, a chat message) and any string Java can hold (lone
 * surrogates included). Encoding never fails, gives ids inside the vocabulary, and byte-level BPE gives back exactly
 * the text it was given; decoding any ids inside the vocabulary never fails, all at once or streamed.
 */
class TokenizerFuzzTest implements SeedCorpus.Seeded {

    private static List<Tokenizer> tokenizers;

    /** The bundled model's BPE, byte-level BPE under each pre-tokenizer, and a SentencePiece vocabulary with byte fallback. */
    static synchronized List<Tokenizer> tokenizers() {
        if (tokenizers == null) {
            List<Tokenizer> t = new ArrayList<>();
            Path bundled = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
            try {
                byte[] bytes = Files.readAllBytes(bundled);
                GgufFile f = GgufFile.read(MemorySegment.ofArray(bytes), bundled.toString());
                t.add(Tokenizer.fromGguf(f));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            BpeVocabBuilder.Vocab v = BpeVocabBuilder.build("the quick brown fox 12345 jumps; über naïve 日本語 ", 400);
            for (String pre : new String[] {"gpt-2", "llama-bpe", "qwen2", "olmo"}) {
                t.add(Tokenizer.of(VocabData.builder("gpt2", v.tokens()).pre(pre).merges(v.merges()).tokenTypes(v.tokenTypes())
                        .bos(v.bos()).eos(v.eos()).build()));
            }
            t.add(Tokenizer.of(spmVocab()));
            tokenizers = t;
        }
        return tokenizers;
    }

    /** SentencePiece: unk, BOS, EOS, the 256 byte tokens, a few pieces with scores, and a user-defined token. */
    private static VocabData spmVocab() {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Integer> types = new ArrayList<>(List.of(2, 3, 3));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types.add(6);
        }
        for (String p : new String[] {"▁", "▁t", "he", "▁the", "▁a", "in", "▁in", "er", "▁of", "▁d", "en", "日本", "▁▁"}) {
            tokens.add(p);
            types.add(1);
        }
        tokens.add("<|user|>");
        types.add(4);
        float[] scores = new float[tokens.size()];
        for (int i = 0; i < scores.length; i++) scores[i] = -i;
        return VocabData.builder("llama", tokens).scores(scores).tokenTypes(types.stream().mapToInt(Integer::intValue).toArray())
                .bos(1).eos(2).unk(0).build();
    }

    /** One target for both directions (one campaign covers them): first byte even = encode, odd = decode; then their input. */
    @FuzzTest(maxDuration = "5m")
    void tokenizer(byte[] data) {
        if (data.length == 0) return;
        byte[] rest = java.util.Arrays.copyOfRange(data, 1, data.length);
        if ((data[0] & 1) == 0) encode(rest);
        else decode(rest);
    }

    /** First byte: tokenizer and flags; the rest: text as UTF-8 (malformed bytes become U+FFFD) or as UTF-16 units. */
    static void encode(byte[] data) {
        if (data.length == 0) return;
        int sel = data[0] & 0xff;
        Tokenizer t = tokenizers().get(sel % tokenizers().size());
        boolean addSpecial = (sel & 0x10) != 0, parseSpecial = (sel & 0x20) != 0, utf16 = (sel & 0x40) != 0;
        String text = utf16 ? utf16(data) : new String(data, 1, data.length - 1, StandardCharsets.UTF_8);
        int[] ids = t.encode(text, addSpecial, parseSpecial);
        for (int id : ids) assertTrue(id >= 0 && id < t.vocabSize(), "id " + id + " outside the vocabulary");
        String back = t.decode(ids);
        boolean byteLevel = t.getClass().getSimpleName().startsWith("Bpe");
        if (byteLevel && !addSpecial && !parseSpecial && wellFormed(text)) {
            assertEquals(text, back, "byte-level BPE must give back the text it encoded");
        }
        StreamingDecoder d = new StreamingDecoder(t);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) streamed.append(d.accept(id));
        streamed.append(d.flush());
        if (byteLevel) assertEquals(back, streamed.toString(), "streamed decoding differs from decoding at once");
    }

    /** Any ids, folded into the vocabulary, decode at once and streamed to the same text. */
    static void decode(byte[] data) {
        if (data.length == 0) return;
        Tokenizer t = tokenizers().get((data[0] & 0xff) % tokenizers().size());
        boolean special = (data[0] & 0x80) != 0;
        int[] ids = new int[(data.length - 1) / 2];
        for (int i = 0; i < ids.length; i++) ids[i] = ((data[1 + 2 * i] & 0xff) | (data[2 + 2 * i] & 0xff) << 8) % t.vocabSize();
        String all = t.decode(ids, special);
        StreamingDecoder d = new StreamingDecoder(t, special);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) streamed.append(d.accept(id));
        streamed.append(d.flush());
        if (t.getClass().getSimpleName().startsWith("Bpe")) assertEquals(all, streamed.toString(), "streamed decoding differs");
        for (int id : ids) {
            t.tokenBytes(id, special);
            t.tokenText(id);
        }
    }

    private static String utf16(byte[] data) {
        char[] c = new char[(data.length - 1) / 2];
        for (int i = 0; i < c.length; i++) c[i] = (char) ((data[1 + 2 * i] & 0xff) | (data[2 + 2 * i] & 0xff) << 8);
        return new String(c);
    }

    private static boolean wellFormed(String s) {
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (Character.isHighSurrogate(ch)) {
                if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) return false;
                i++;
            } else if (Character.isLowSurrogate(ch)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public Map<String, Map<String, byte[]>> seeds() {
        Map<String, byte[]> enc = new LinkedHashMap<>();
        String[] texts = {"The quick brown fox jumps over the lazy dog.", "  leading spaces and\ttabs\r\nand newlines\n\n",
                "numbers 12345 3.14 1,000,000", "über naïve café 日本語 テキスト 🙂👍🏽", "<|endoftext|>hello<|endoftext|>",
                "<|user|> hi <s></s>", "'s 're 've 'll 'd n't", ""};
        int n = tokenizers().size();
        for (int i = 0; i < texts.length; i++) {
            byte[] b = texts[i].getBytes(StandardCharsets.UTF_8);
            for (int flags : new int[] {0, 0x30}) {
                byte[] s = new byte[b.length + 1];
                s[0] = (byte) ((i % n) | flags);
                System.arraycopy(b, 0, s, 1, b.length);
                enc.put("text" + i + (flags != 0 ? "-special" : ""), s);
            }
        }
        enc.put("invalid-utf8", new byte[] {0, (byte) 0xff, (byte) 0xc3, 0x28, (byte) 0xe2, (byte) 0x82, 0x41, (byte) 0xf0, (byte) 0x9f});
        enc.put("lone-surrogate", new byte[] {(byte) (0x40 | 5), 0x00, (byte) 0xd8, 0x41, 0x00, 0x00, (byte) 0xdc});
        Map<String, byte[]> dec = new LinkedHashMap<>();
        dec.put("bytes-split", new byte[] {0, (byte) 0xe6, 0, (byte) 0x97, 0, (byte) 0xa5, 0, 10, 0});
        dec.put("special", new byte[] {(byte) 0x80, 1, 0, 2, 0, 0, 0});
        dec.put("spm", new byte[] {(byte) (n - 1), 3, 0, 4, 0, 5, 1, (byte) 0xe9, 0, (byte) 0x9f, 0});
        Map<String, byte[]> all = new LinkedHashMap<>();
        enc.forEach((k, v) -> all.put("encode-" + k, prefixed(0, v)));
        dec.forEach((k, v) -> all.put("decode-" + k, prefixed(1, v)));
        return Map.of("tokenizer", all);
    }

    static byte[] prefixed(int first, byte[] rest) {
        byte[] out = new byte[rest.length + 1];
        out[0] = (byte) first;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }
}
