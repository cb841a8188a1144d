package dev.jmoe.engine;

/**
 * Hears each piece of text as it is decoded. A piece can be empty (a token that completes no character yet) and
 * never contains a stop string or text past it. To stop early, call {@link Session#cancel()} (from here or from
 * another thread).
 */
@FunctionalInterface
public interface TokenListener {
    /** Hears nothing. */
    TokenListener NONE = (token, text) -> { };

    /**
     * @param token the token id just sampled
     * @param text  the text it completes (UTF-8 sequences are assembled across tokens; stop-string prefixes held back)
     */
    void onToken(int token, String text);
}
