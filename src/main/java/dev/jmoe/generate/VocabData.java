package dev.jmoe.generate;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.gguf.GgufValueType;
import java.util.List;
import java.util.Objects;

/**
 * Everything a tokenizer is built from, as plain data: what a GGUF file's {@code tokenizer.*} keys hold.
 * Optional keys are {@code null} when absent, so that {@link Tokenizer#of} can apply llama.cpp's defaults
 * (which depend on the tokenizer model and pre-tokenizer) exactly where the file is silent.
 *
 * @param model          {@code tokenizer.ggml.model}: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
 * @param pre            {@code tokenizer.ggml.pre}, the pre-tokenizer name (BPE only); null if absent
 * @param tokens         {@code tokenizer.ggml.tokens}; the index is the token id
 * @param scores         {@code tokenizer.ggml.scores} (SentencePiece merge priorities); null if absent
 * @param tokenTypes     {@code tokenizer.ggml.token_type} codes (see {@link TokenType}); null = all normal
 * @param merges         {@code tokenizer.ggml.merges}, "left right" in rank order (BPE only); null if absent
 * @param bosId          {@code tokenizer.ggml.bos_token_id}
 * @param eosId          {@code tokenizer.ggml.eos_token_id}
 * @param unkId          {@code tokenizer.ggml.unknown_token_id}
 * @param eotId          {@code tokenizer.ggml.eot_token_id}
 * @param eomId          {@code tokenizer.ggml.eom_token_id}
 * @param padId          {@code tokenizer.ggml.padding_token_id}
 * @param addBos         {@code tokenizer.ggml.add_bos_token}
 * @param addEos         {@code tokenizer.ggml.add_eos_token}
 * @param addSpacePrefix {@code tokenizer.ggml.add_space_prefix}
 * @param chatTemplate   {@code tokenizer.chat_template}
 */
public record VocabData(
        String model,
        String pre,
        List<String> tokens,
        float[] scores,
        int[] tokenTypes,
        List<String> merges,
        Integer bosId,
        Integer eosId,
        Integer unkId,
        Integer eotId,
        Integer eomId,
        Integer padId,
        Boolean addBos,
        Boolean addEos,
        Boolean addSpacePrefix,
        String chatTemplate) {

    public static final String KEY_MODEL = "tokenizer.ggml.model";
    public static final String KEY_PRE = "tokenizer.ggml.pre";
    public static final String KEY_TOKENS = "tokenizer.ggml.tokens";
    public static final String KEY_SCORES = "tokenizer.ggml.scores";
    public static final String KEY_TOKEN_TYPE = "tokenizer.ggml.token_type";
    public static final String KEY_MERGES = "tokenizer.ggml.merges";
    public static final String KEY_BOS = "tokenizer.ggml.bos_token_id";
    public static final String KEY_EOS = "tokenizer.ggml.eos_token_id";
    public static final String KEY_UNK = "tokenizer.ggml.unknown_token_id";
    public static final String KEY_EOT = "tokenizer.ggml.eot_token_id";
    public static final String KEY_EOM = "tokenizer.ggml.eom_token_id";
    public static final String KEY_PAD = "tokenizer.ggml.padding_token_id";
    public static final String KEY_ADD_BOS = "tokenizer.ggml.add_bos_token";
    public static final String KEY_ADD_EOS = "tokenizer.ggml.add_eos_token";
    public static final String KEY_ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix";
    public static final String KEY_CHAT_TEMPLATE = "tokenizer.chat_template";

    public VocabData {
        Objects.requireNonNull(model, KEY_MODEL + " is missing");
        Objects.requireNonNull(tokens, KEY_TOKENS + " is missing");
        tokens = List.copyOf(tokens);
        if (tokens.isEmpty()) {
            throw new TokenizerException(KEY_TOKENS + " is empty");
        }
        if (scores != null && scores.length != tokens.size()) {
            throw new TokenizerException(KEY_SCORES + " has " + scores.length + " entries but "
                    + KEY_TOKENS + " has " + tokens.size());
        }
        if (tokenTypes != null && tokenTypes.length != tokens.size()) {
            throw new TokenizerException(KEY_TOKEN_TYPE + " has " + tokenTypes.length + " entries but "
                    + KEY_TOKENS + " has " + tokens.size());
        }
        merges = merges == null ? null : List.copyOf(merges);
    }

    /** Reads the {@code tokenizer.*} keys of a GGUF file. */
    public static VocabData fromGguf(GgufFile f) {
        if (!f.has(KEY_MODEL)) {
            throw new TokenizerException(f.path() + ": no " + KEY_MODEL + " key; the file has no tokenizer");
        }
        if (!f.has(KEY_TOKENS)) {
            throw new TokenizerException(f.path() + ": no " + KEY_TOKENS + " key; the file has no vocabulary");
        }
        List<String> tokens = f.getStringArray(KEY_TOKENS);
        int n = tokens.size();
        return new VocabData(
                f.getString(KEY_MODEL),
                f.has(KEY_PRE) ? f.getString(KEY_PRE) : null,
                tokens,
                f.has(KEY_SCORES) ? f.getFloatArray(KEY_SCORES) : null,
                f.has(KEY_TOKEN_TYPE) ? f.getIntArray(KEY_TOKEN_TYPE) : null,
                f.has(KEY_MERGES) ? f.getStringArray(KEY_MERGES) : null,
                optId(f, KEY_BOS, n), optId(f, KEY_EOS, n), optId(f, KEY_UNK, n),
                optId(f, KEY_EOT, n), optId(f, KEY_EOM, n), optId(f, KEY_PAD, -1),
                optBool(f, KEY_ADD_BOS), optBool(f, KEY_ADD_EOS), optBool(f, KEY_ADD_SPACE_PREFIX),
                f.has(KEY_CHAT_TEMPLATE) ? f.getString(KEY_CHAT_TEMPLATE) : null);
    }

    /**
     * A special token id, checked against the vocabulary size {@code n} (-1: not checked). llama.cpp ignores an id
     * outside the vocabulary; jmoe refuses it, because an end-of-sequence id that names no token means generation
     * never stops where the model says it should, and the file is damaged anyway. The padding id is never used to
     * generate, so it is not checked.
     */
    private static Integer optId(GgufFile f, String key, int n) {
        if (!f.has(key)) {
            return null;
        }
        GgufValue v = f.require(key);
        if (!v.type().isInteger()) {
            throw new TokenizerException(f.path() + ": " + key + " must be an integer token id, but has type " + v.type());
        }
        long id = v.type() == GgufValueType.UINT64 || v.type() == GgufValueType.UINT32 ? unsigned(v) : v.asLong();
        if (n >= 0 && (id < 0 || id >= n)) {
            throw new TokenizerException(f.path() + ": " + key + " is " + Long.toUnsignedString(id) + ", outside the vocabulary of "
                    + n + " tokens (ids 0 to " + (n - 1) + ")");
        }
        // Ids are unsigned 32-bit in GGUF; anything beyond int range cannot name a token.
        return id < 0 || id > Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) id;
    }

    private static long unsigned(GgufValue v) {
        Object raw = v.value();
        return raw instanceof Integer i ? Integer.toUnsignedLong(i) : (Long) raw;
    }

    private static Boolean optBool(GgufFile f, String key) {
        return f.has(key) ? f.getBool(key, false) : null;
    }

    public static Builder builder(String model, List<String> tokens) {
        return new Builder(model, tokens);
    }

    /** Fluent construction, mainly for synthetic vocabularies in tests. */
    public static final class Builder {
        private final String model;
        private final List<String> tokens;
        private String pre;
        private float[] scores;
        private int[] tokenTypes;
        private List<String> merges;
        private Integer bos, eos, unk, eot, eom, pad;
        private Boolean addBos, addEos, addSpacePrefix;
        private String chatTemplate;

        private Builder(String model, List<String> tokens) {
            this.model = model;
            this.tokens = tokens;
        }

        public Builder pre(String v) { pre = v; return this; }
        public Builder scores(float[] v) { scores = v; return this; }
        public Builder tokenTypes(int[] v) { tokenTypes = v; return this; }
        public Builder merges(List<String> v) { merges = v; return this; }
        public Builder bos(Integer v) { bos = v; return this; }
        public Builder eos(Integer v) { eos = v; return this; }
        public Builder unk(Integer v) { unk = v; return this; }
        public Builder eot(Integer v) { eot = v; return this; }
        public Builder eom(Integer v) { eom = v; return this; }
        public Builder pad(Integer v) { pad = v; return this; }
        public Builder addBos(Boolean v) { addBos = v; return this; }
        public Builder addEos(Boolean v) { addEos = v; return this; }
        public Builder addSpacePrefix(Boolean v) { addSpacePrefix = v; return this; }
        public Builder chatTemplate(String v) { chatTemplate = v; return this; }

        public VocabData build() {
            return new VocabData(model, pre, tokens, scores, tokenTypes, merges, bos, eos, unk, eot, eom, pad,
                    addBos, addEos, addSpacePrefix, chatTemplate);
        }
    }
}
