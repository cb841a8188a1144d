package dev.jmoe.cli;

import java.util.Arrays;

/** Prompts cut from a tokenized text at evenly spaced offsets, so several commands use the same ones. */
final class TextPrompts {
    private TextPrompts() {}

    /** {@code count} prompts of {@code length} tokens (BOS first when {@code bos} ≥ 0) from {@code tokens}. */
    static int[][] cut(int[] tokens, int count, int length, int bos) {
        if (count < 1 || length < 1) throw new IllegalArgumentException("prompt count and length must be at least 1");
        int body = bos >= 0 ? length - 1 : length;
        int from = tokens.length > 0 && bos >= 0 && tokens[0] == bos ? 1 : 0;
        int usable = tokens.length - from;
        if (usable < body * count) {
            throw new IllegalArgumentException("the text has " + usable + " tokens, fewer than " + count + " prompts of " + length);
        }
        int stride = usable / count;
        int[][] out = new int[count][];
        for (int i = 0; i < count; i++) {
            int[] p = new int[length];
            int o = 0;
            if (bos >= 0) p[o++] = bos;
            System.arraycopy(tokens, from + i * stride, p, o, body);
            out[i] = p;
        }
        return out;
    }

    /** The prompt of -p or -f (not both; empty when neither), a file read as strict UTF-8 with its last newline dropped as llama.cpp does. */
    static String promptText(String prompt, java.nio.file.Path file) throws java.io.IOException {
        if (prompt != null && file != null) throw new IllegalArgumentException("give either -p or -f, not both");
        if (file == null) return prompt != null ? prompt : "";
        String t = readText(file, "-f");
        return t.endsWith("\n") ? t.substring(0, t.length() - 1) : t;
    }

    /** A text file read as strict UTF-8: a missing file, a directory, a pipe or invalid bytes are named clearly. */
    static String readText(java.nio.file.Path file, String flag) throws java.io.IOException {
        if (java.nio.file.Files.isDirectory(file)) throw new IllegalArgumentException(flag + " " + file + " is a directory, not a text file");
        if (!java.nio.file.Files.exists(file)) throw new IllegalArgumentException(flag + " " + file + ": file not found");
        if (!java.nio.file.Files.isRegularFile(file)) throw new IllegalArgumentException(flag + " " + file + " is not a regular file (a pipe or a device?)");
        byte[] bytes = java.nio.file.Files.readAllBytes(file);
        var decoder = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT).onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
        try {
            return decoder.decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            int at = 0;
            var probe = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT).onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
            java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(bytes);
            java.nio.CharBuffer outBuf = java.nio.CharBuffer.allocate(bytes.length + 1);
            var res = probe.decode(in, outBuf, true);
            if (res.isError()) at = in.position();
            throw new IllegalArgumentException(flag + " " + file + " is not UTF-8 text (invalid byte at offset " + at + ")");
        }
    }

    static String describe(int[][] prompts) {
        return prompts.length + " prompts of " + (prompts.length == 0 ? 0 : prompts[0].length) + " tokens";
    }

    static int[] lengths(int[][] p) { return Arrays.stream(p).mapToInt(a -> a.length).toArray(); }
}
