package dev.jmoe.generate;

import java.util.Arrays;
import java.util.Objects;

/**
 * Turns generated tokens into text one token at a time. A token may end in the middle of a UTF-8 character
 * (byte-level BPE and byte-fallback tokens often do), so bytes are held back until their character is
 * complete: {@link #accept} returns only whole characters. Invalid bytes become U+FFFD with the same
 * replacement rule as {@link Tokenizer#decode} (one U+FFFD per maximal invalid subsequence), so streaming a
 * sequence and decoding it at once give the same text.
 *
 * <p>Not thread-safe: one decoder per generation stream.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean special;
    private byte[] pending = new byte[16];
    private int length;

    /** Control tokens print nothing. */
    public StreamingDecoder(Tokenizer tokenizer) {
        this(tokenizer, false);
    }

    /** With {@code special} true, control tokens print their text (e.g. "&lt;|im_end|&gt;"). */
    public StreamingDecoder(Tokenizer tokenizer, boolean special) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.special = special;
    }

    /** Adds one token; returns the characters completed by it (possibly empty, possibly several). */
    public String accept(int token) {
        return acceptBytes(tokenizer.tokenBytes(token, special));
    }

    /** Adds raw bytes; returns the characters completed by them. */
    public String acceptBytes(byte[] bytes) {
        if (length + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, length + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, length, bytes.length);
        length += bytes.length;
        return drain(false);
    }

    /** Whether bytes of an unfinished character are held back. */
    public boolean hasPending() {
        return length > 0;
    }

    /** Ends the stream: an unfinished character becomes U+FFFD. The decoder is empty afterwards. */
    public String flush() {
        return drain(true);
    }

    private String drain(boolean atEnd) {
        StringBuilder out = new StringBuilder(length);
        int used = Utf8.decode(pending, length, atEnd, out);
        System.arraycopy(pending, used, pending, 0, length - used);
        length -= used;
        return out.toString();
    }
}
