package dev.jmoe.generate;

import dev.jmoe.gguf.ModelFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Text files given on the command line (prompts, perplexity and evaluation texts), read with one clear error for
 * each way they can be wrong: not found, a directory or a FIFO (checked without opening it: reading a FIFO blocks
 * until someone writes to it), larger than {@link #MAX_BYTES}, or not UTF-8 (the byte offset and line of the first
 * bad byte, where Java's decoder would only say "Input length = 1").
 */
public final class TextFiles {
    private TextFiles() {}

    /** Largest text file read whole: well above any prompt or evaluation text, far below a model file given by mistake. */
    public static final long MAX_BYTES = 256L << 20;

    /** The UTF-8 text of a prompt file ({@code -f}); a leading byte-order mark is dropped. */
    public static String readPromptFile(Path path) throws IOException {
        return readText(path, "prompt file");
    }

    /** The UTF-8 text of {@code path}, {@code what} naming its role in messages ("prompt file", "text file"). */
    public static String readText(Path path, String what) throws IOException {
        long size = ModelFiles.checkRegularFile(path, what);
        if (size > MAX_BYTES) {
            throw new IOException(what + " " + path + " is " + size + " bytes; jmoe reads text files of up to " + (MAX_BYTES >> 20)
                    + " MiB (is it the right file?)");
        }
        byte[] bytes = Files.readAllBytes(path);
        if (bytes.length > MAX_BYTES) throw new IOException(what + " " + path + " grew past " + (MAX_BYTES >> 20) + " MiB while being read");
        return decodeUtf8(bytes, what + " " + path);
    }

    /**
     * Strict UTF-8 decoding; {@code source} names the bytes in the message. Throws an IOException naming the byte offset,
     * line and byte value of the first malformed sequence.
     */
    public static String decodeUtf8(byte[] bytes, String source) throws IOException {
        int start = bytes.length >= 3 && (bytes[0] & 0xff) == 0xEF && (bytes[1] & 0xff) == 0xBB && (bytes[2] & 0xff) == 0xBF ? 3 : 0;
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes, start, bytes.length - start);
        CharBuffer out = CharBuffer.allocate(bytes.length - start);
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) r = dec.flush(out);
        if (r.isError()) {
            int at = in.position();
            int line = 1;
            for (int i = 0; i < at; i++) if (bytes[i] == '\n') line++;
            throw new IOException(source + " is not UTF-8 text: byte " + String.format("0x%02X", bytes[at] & 0xff) + " at byte offset "
                    + at + " (line " + line + ") does not start a valid UTF-8 sequence; convert the file to UTF-8"
                    + " (for example: iconv -f latin1 -t utf-8)");
        }
        out.flip();
        return out.toString();
    }
}
