package dev.jmoe.generate;

import dev.jmoe.gguf.GgufFile;
import java.util.List;
import java.util.Optional;

/**
 * Text ↔ token ids, built from a GGUF file's {@code tokenizer.ggml.*} metadata, following llama.cpp's
 * tokenizer (so that prompts get the same ids llama.cpp would give them).
 *
 * <p>Supported models: {@code gpt2} (byte-level BPE with the pre-tokenizer named by
 * {@code tokenizer.ggml.pre}) and {@code llama} (SentencePiece BPE with scores and byte fallback).
 * Tokenizers are immutable apart from an internal cache and may be shared between threads.
 */
public interface Tokenizer {
    /** Reads {@code tokenizer.ggml.model} and builds the matching tokenizer; clear error if unsupported. */
    static Tokenizer fromGguf(GgufFile file) {
        return of(VocabData.fromGguf(file));
    }

    /** Builds the tokenizer {@code data.model()} names. */
    static Tokenizer of(VocabData data) {
        return switch (data.model()) {
            case "gpt2" -> new BpeTokenizer(data);
            case "llama" -> new SpmTokenizer(data);
            default -> throw new TokenizerException("unsupported tokenizer model '" + data.model() + "' ("
                    + VocabData.KEY_MODEL + "); supported: gpt2 (byte-level BPE), llama (SentencePiece)");
        };
    }

    /** Encodes text; {@code addSpecial} adds BOS/EOS as the model's add_bos/add_eos say; {@code parseSpecial} turns special-token text (e.g. "&lt;|im_start|&gt;") into its id. */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /** Bytes of one token's text as the model would print it (control tokens print nothing unless asked). */
    byte[] tokenBytes(int token);

    /** Like {@link #tokenBytes(int)}; with {@code special} true, control and unknown tokens print their text. */
    byte[] tokenBytes(int token, boolean special);

    /**
     * Decodes ids into a string (UTF-8 assembled across tokens; invalid sequences become U+FFFD). Control
     * tokens print nothing. SentencePiece models drop the space their encoder put in front of the text.
     */
    String decode(int[] tokens);

    /** Like {@link #decode(int[])}; with {@code special} true, control tokens print their text. */
    String decode(int[] tokens, boolean special);

    int vocabSize();
    int bos();      // -1 if none
    int eos();      // -1 if none
    /** The unknown token, -1 if none. */
    int unk();
    /** The end-of-turn token (e.g. "&lt;|im_end|&gt;", "&lt;|eot_id|&gt;"), -1 if none. */
    int eot();
    boolean addBos();
    boolean addEos();
    /** End-of-generation tokens (eos, eot, im_end…). */
    boolean isEndOfGeneration(int token);
    /** All end-of-generation token ids, ascending. */
    int[] endOfGenerationTokens();
    String tokenText(int token);
    TokenType tokenType(int token);
    /** The id whose vocabulary text is exactly {@code text}, or -1. */
    int tokenId(String text);
    List<String> vocab();
    /** The Jinja chat template stored with the vocabulary ({@code tokenizer.chat_template}), if any. */
    Optional<String> chatTemplate();
}
