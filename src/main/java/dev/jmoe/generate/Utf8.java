package dev.jmoe.generate;

/**
 * UTF-8 to text with the Unicode "maximal subpart" replacement practice (also WHATWG's and Python's): each
 * maximal prefix of a broken sequence becomes one U+FFFD. Used for both whole and streaming decoding so the
 * two always agree; java.lang.String's decoder replaces some broken sequences differently.
 */
final class Utf8 {
    private Utf8() {}

    /**
     * Decodes {@code buf[0, length)} into {@code out}.
     *
     * @param atEnd whether no more bytes will follow; if not, an unfinished final character is left undecoded
     * @return the number of bytes consumed
     */
    static int decode(byte[] buf, int length, boolean atEnd, StringBuilder out) {
        int i = 0;
        while (i < length) {
            int b0 = buf[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            // Continuation count and the allowed range of the second byte (excludes overlongs, surrogates, > U+10FFFF).
            int need, lo = 0x80, hi = 0xBF;
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                need = 1;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                need = 2;
                if (b0 == 0xE0) lo = 0xA0;
                if (b0 == 0xED) hi = 0x9F;
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                need = 3;
                if (b0 == 0xF0) lo = 0x90;
                if (b0 == 0xF4) hi = 0x8F;
            } else {
                out.append('\uFFFD');
                i++;
                continue;
            }
            int valid = 1; // lead byte plus the continuation bytes accepted so far
            boolean broken = false;
            while (valid <= need && i + valid < length) {
                int c = buf[i + valid] & 0xFF;
                if (c < (valid == 1 ? lo : 0x80) || c > (valid == 1 ? hi : 0xBF)) {
                    broken = true;
                    break;
                }
                valid++;
            }
            if (broken) {
                out.append('\uFFFD');
                i += valid;
                continue;
            }
            if (valid <= need) {
                if (atEnd) {
                    out.append('\uFFFD');
                    i = length;
                }
                break;
            }
            int cp = b0 & (need == 1 ? 0x1F : need == 2 ? 0x0F : 0x07);
            for (int k = 1; k <= need; k++) {
                cp = (cp << 6) | (buf[i + k] & 0x3F);
            }
            out.appendCodePoint(cp);
            i += need + 1;
        }
        return i;
    }

    static String decode(byte[] buf, int length) {
        StringBuilder sb = new StringBuilder(length);
        decode(buf, length, true, sb);
        return sb.toString();
    }
}
