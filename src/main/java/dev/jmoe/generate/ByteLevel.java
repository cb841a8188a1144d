package dev.jmoe.generate;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's reversible mapping between the 256 byte values and printable characters. Byte-level BPE
 * vocabularies store every token as text in this alphabet, so that no token contains raw whitespace or
 * control bytes (a space becomes 'Ġ', a newline 'Ċ').
 */
final class ByteLevel {
    private ByteLevel() {}

    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by char; -1 for chars that stand for no byte. Highest mapped char is U+0143. */
    private static final int[] CHAR_TO_BYTE = new int[0x144];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            // Printable Latin-1 bytes keep their own code point; the rest are shifted past U+00FF in order.
            boolean printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    static char byteToChar(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a character stands for, or -1 when it is outside the byte alphabet. */
    static int charToByte(int c) {
        return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** UTF-8 bytes of {@code text} written in the byte alphabet (one char per byte). */
    static String encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(out);
    }

    /**
     * Bytes spelled by a token written in the byte alphabet. Characters outside the alphabet (possible in
     * hand-made vocabularies) are passed through as their own UTF-8 bytes rather than dropped.
     */
    static byte[] decode(String tokenText) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(tokenText.length());
        for (int i = 0; i < tokenText.length(); ) {
            int cp = tokenText.codePointAt(i);
            int b = charToByte(cp);
            if (b >= 0) {
                out.write(b);
            } else {
                out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
            }
            i += Character.charCount(cp);
        }
        return out.toByteArray();
    }
}
