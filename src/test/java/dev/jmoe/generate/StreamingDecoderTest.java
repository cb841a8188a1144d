package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StreamingDecoderTest {

    /** Byte-level vocabulary in which token b is byte b, plus a control token. */
    private static final Tokenizer BYTES = Tokenizer.of(TestVocabs.bpe("gpt-2", List.of("h|e"), List.of("<|im_end|>"), List.of()).build());

    @Test
    void holdsBackUnfinishedCharacters() {
        StreamingDecoder d = new StreamingDecoder(BYTES);
        assertEquals("a", d.accept('a'));
        // "€" = E2 82 AC, one byte per token.
        assertEquals("", d.accept(0xE2));
        assertTrue(d.hasPending());
        assertEquals("", d.accept(0x82));
        assertEquals("€", d.accept(0xAC));
        assertFalse(d.hasPending());
        // A multi-byte token completes the held bytes and brings more.
        assertEquals("", d.accept(0xF0));
        assertEquals("", d.accept(0x9F));
        assertEquals("", d.accept(0x98));
        assertEquals("😀", d.accept(0x80));
        assertEquals("he", d.accept(TestVocabs.bpeId(BYTES, "he")));
    }

    @Test
    void controlTokensPrintOnlyWhenAsked() {
        int end = BYTES.tokenId("<|im_end|>");
        assertEquals("", new StreamingDecoder(BYTES).accept(end));
        assertEquals("<|im_end|>", new StreamingDecoder(BYTES, true).accept(end));
    }

    @Test
    void flushReplacesAnUnfinishedCharacter() {
        StreamingDecoder d = new StreamingDecoder(BYTES);
        assertEquals("x", d.accept('x'));
        assertEquals("", d.accept(0xE2));
        assertEquals("", d.accept(0x82));
        assertEquals("\uFFFD", d.flush());
        assertFalse(d.hasPending());
        assertEquals("y", d.accept('y'));
    }

    @Test
    void brokenSequencesBecomeOneReplacementPerMaximalSubpart() {
        // Expected per the Unicode/WHATWG practice (Python's bytes.decode(errors='replace') agrees).
        assertEquals("\uFFFD\uFFFD\uFFFD", BYTES.decode(bytes(0xED, 0xA0, 0x80)), "surrogate");
        assertEquals("\uFFFDA", BYTES.decode(bytes(0xE2, 0x82, 'A')), "truncated then ASCII");
        assertEquals("\uFFFD", BYTES.decode(bytes(0xE2, 0x82)), "truncated at the end");
        assertEquals("\uFFFD\uFFFD", BYTES.decode(bytes(0xC0, 0x80)), "overlong");
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", BYTES.decode(bytes(0xF4, 0x90, 0x80, 0x80)), "above U+10FFFF");
        assertEquals("N\uFFFD\uFFFDG\uFFFD\uFFFDa\uFFFDc",
                BYTES.decode(bytes(0x4E, 0x98, 0x80, 0x47, 0xED, 0xAC, 0x61, 0xE2, 0x90, 0x63)));
    }

    private static int[] bytes(int... b) {
        return b;
    }

    @Test
    void streamingEqualsWholeDecodeOnArbitraryBytes() {
        Random rnd = new Random(7);
        for (int iter = 0; iter < 3000; iter++) {
            int n = rnd.nextInt(12);
            int[] tokens = new int[n];
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int i = 0; i < n; i++) {
                // Mostly bytes that occur in UTF-8 sequences, so that valid and broken characters both happen.
                int b = rnd.nextInt(4) == 0 ? rnd.nextInt(256) : new int[] {'a', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xED, 0xA0, 0xC0, 0xF4, 0x90}[rnd.nextInt(15)];
                tokens[i] = b;
                all.write(b);
            }
            StreamingDecoder d = new StreamingDecoder(BYTES);
            StringBuilder streamed = new StringBuilder();
            for (int t : tokens) {
                streamed.append(d.accept(t));
            }
            streamed.append(d.flush());
            String whole = BYTES.decode(tokens);
            assertEquals(whole, streamed.toString(), () -> "bytes " + java.util.HexFormat.of().formatHex(all.toByteArray()));
            byte[] raw = all.toByteArray();
            if (StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(raw), java.nio.CharBuffer.allocate(64), true).isUnderflow()) {
                // Valid UTF-8 (the strict decoder found nothing wrong): must equal the JDK's reading exactly.
                assertEquals(new String(raw, StandardCharsets.UTF_8), whole);
            }
        }
    }
}
