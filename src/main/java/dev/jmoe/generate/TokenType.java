package dev.jmoe.generate;

/** Token types as stored in {@code tokenizer.ggml.token_type} (the numbering llama.cpp's converters write). */
public enum TokenType {
    UNDEFINED(0), NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

    public final int code;

    TokenType(int code) {
        this.code = code;
    }

    /** Codes outside 0..6 become {@link #UNDEFINED}, as llama.cpp does. */
    public static TokenType fromCode(int code) {
        return code >= 0 && code < values().length ? values()[code] : UNDEFINED;
    }
}
