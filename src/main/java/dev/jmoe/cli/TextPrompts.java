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
        String t = dev.jmoe.generate.TextFiles.readPromptFile(file);
        return t.endsWith("\n") ? t.substring(0, t.length() - 1) : t;
    }

    /** A text file given with {@code flag}: strict UTF-8, a regular file of bounded size (dev.jmoe.generate.TextFiles). */
    static String readText(java.nio.file.Path file, String flag) throws java.io.IOException {
        return dev.jmoe.generate.TextFiles.readText(file, "text file (" + flag + ")");
    }

    static String describe(int[][] prompts) {
        return prompts.length + " prompts of " + (prompts.length == 0 ? 0 : prompts[0].length) + " tokens";
    }

    static int[] lengths(int[][] p) { return Arrays.stream(p).mapToInt(a -> a.length).toArray(); }
}
