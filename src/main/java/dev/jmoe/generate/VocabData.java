package dev.jmoe.generate;

import dev.jmoe.gguf.GgufFile;
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
            throw new IllegalArgumentException(KEY_TOKENS + " is empty");
        }
        if (scores != null && scores.length != tokens.size()) {
            throw new IllegalArgumentException(KEY_SCORES + " has " + scores.length + " entries but "
                    + KEY_TOKENS + " has " + tokens.size());
        }
        if (tokenTypes != null && tokenTypes.length != tokens.size()) {
            throw new IllegalArgumentException(KEY_TOKEN_TYPE + " has " + tokenTypes.length + " entries but "
                    + KEY_TOKENS + " has " + tokens.size());
        }
        merges = merges == null ? null : List.copyOf(merges);
    }

    /** Reads the {@code tokenizer.*} keys of a GGUF file. */
    public static VocabData fromGguf(GgufFile f) {
        if (!f.has(KEY_MODEL)) {
            throw new IllegalArgumentException(f.path() + ": no " + KEY_MODEL + " key; the file has no tokenizer");
        }
        if (!f.has(KEY_TOKENS)) {
            throw new IllegalArgumentException(f.path() + ": no " + KEY_TOKENS + " key; the file has no vocabulary");
        }
        return new VocabData(
                f.getString(KEY_MODEL),
                f.has(KEY_PRE) ? f.getString(KEY_PRE) : null,
                f.getStringArray(KEY_TOKENS),
                f.has(KEY_SCORES) ? f.getFloatArray(KEY_SCORES) : null,
                f.has(KEY_TOKEN_TYPE) ? f.getIntArray(KEY_TOKEN_TYPE) : null,
                f.has(KEY_MERGES) ? f.getStringArray(KEY_MERGES) : null,
                optInt(f, KEY_BOS), optInt(f, KEY_EOS), optInt(f, KEY_UNK),
                optInt(f, KEY_EOT), optInt(f, KEY_EOM), optInt(f, KEY_PAD),
                optBool(f, KEY_ADD_BOS), optBool(f, KEY_ADD_EOS), optBool(f, KEY_ADD_SPACE_PREFIX),
                f.has(KEY_CHAT_TEMPLATE) ? f.getString(KEY_CHAT_TEMPLATE) : null);
    }

    private static Integer optInt(GgufFile f, String key) {
        if (!f.has(key)) {
            return null;
        }
        long v = f.getLong(key);
        // Ids are unsigned 32-bit in GGUF; anything beyond int range cannot name a token.
        return v < 0 || v > Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) v;
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
