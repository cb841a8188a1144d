package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ByteLevelTest {

    @Test
    void mappingIsABijectionOntoPrintableChars() {
        Set<Character> seen = new HashSet<>();
        for (int b = 0; b < 256; b++) {
            char c = ByteLevel.byteToChar(b);
            assertEquals(b, ByteLevel.charToByte(c));
            seen.add(c);
            // No whitespace or control character survives: that is the point of the mapping.
            assertEquals(false, Character.isWhitespace(c) || Character.isISOControl(c), "byte " + b);
        }
        assertEquals(256, seen.size());
    }

    @Test
    void knownCharacters() {
        assertEquals('Ġ', ByteLevel.byteToChar(' '));   // U+0120
        assertEquals('Ċ', ByteLevel.byteToChar('\n'));  // U+010A
        assertEquals('Ā', ByteLevel.byteToChar(0));     // U+0100: first shifted byte
        assertEquals('a', ByteLevel.byteToChar('a'));
        assertEquals('\u0143', ByteLevel.byteToChar(0xAD)); // soft hyphen: last shifted byte
        assertEquals(-1, ByteLevel.charToByte('Ł' + 3));
    }

    @Test
    void encodeDecodeRoundTrip() {
        String s = "a b\n€😀\u0000";
        String enc = ByteLevel.encode(s);
        assertEquals(s.getBytes(StandardCharsets.UTF_8).length, enc.length());
        assertArrayEquals(s.getBytes(StandardCharsets.UTF_8), ByteLevel.decode(enc));
        assertEquals("aĠb", ByteLevel.encode("a b"));
    }
}
