package dev.jmoe.generate;

import dev.jmoe.gguf.GgufFile;
import java.util.List;

/** Text ↔ token ids, built from a GGUF file's {@code tokenizer.ggml.*} metadata. */
public interface Tokenizer {
    /** Reads {@code tokenizer.ggml.model} and builds the matching tokenizer; clear error if unsupported. */
    static Tokenizer fromGguf(GgufFile file) { throw new UnsupportedOperationException("TODO"); }

    /** Encodes text; {@code addSpecial} adds BOS/EOS as the model's add_bos/add_eos say; {@code parseSpecial} turns special-token text (e.g. "&lt;|im_start|&gt;") into its id. */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /** Bytes of one token's text as the model would print it (control tokens print nothing unless asked). */
    byte[] tokenBytes(int token);

    /** Decodes ids into a string (UTF-8 assembled across tokens). */
    String decode(int[] tokens);

    int vocabSize();
    int bos();      // -1 if none
    int eos();      // -1 if none
    boolean addBos();
    boolean addEos();
    /** End-of-generation tokens (eos, eot, im_end…). */
    boolean isEndOfGeneration(int token);
    String tokenText(int token);
    List<String> vocab();
}
