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

    static String describe(int[][] prompts) {
        return prompts.length + " prompts of " + (prompts.length == 0 ? 0 : prompts[0].length) + " tokens";
    }

    static int[] lengths(int[][] p) { return Arrays.stream(p).mapToInt(a -> a.length).toArray(); }
}
