package dev.jmoe.fuzz;

import java.nio.charset.StandardCharsets;

/**
 * Reads a fuzz input as a sequence of small fields. Past the end every read yields zeros, so any byte string is a
 * valid program for the structured targets and the fuzzer's mutations stay meaningful.
 */
final class FuzzInput {
    private final byte[] data;
    private int pos;

    FuzzInput(byte[] data) { this.data = data; }

    boolean hasMore() { return pos < data.length; }

    int u8() { return pos < data.length ? data[pos++] & 0xff : 0; }

    int u16() { return u8() | u8() << 8; }

    int u32() { return u16() | u16() << 16; }

    long u64() { return (u32() & 0xffffffffL) | (long) u32() << 32; }

    /** A length-prefixed (u8) UTF-8 string; malformed bytes become U+FFFD. */
    String shortString() {
        int n = Math.min(u8(), data.length - pos);
        String s = new String(data, pos, Math.max(n, 0), StandardCharsets.UTF_8);
        pos += Math.max(n, 0);
        return s;
    }

    /** The next {@code n} bytes (fewer at the end). */
    byte[] bytes(int n) {
        int start = Math.min(pos, data.length);
        pos = Math.min(data.length, start + n);
        return java.util.Arrays.copyOfRange(data, start, pos);
    }

    /** The bytes up to (not including) the next {@code sep}, or to the end. */
    byte[] until(int sep) {
        int start = pos;
        while (pos < data.length && data[pos] != (byte) sep) pos++;
        byte[] out = java.util.Arrays.copyOfRange(data, start, pos);
        if (pos < data.length) pos++;
        return out;
    }

    byte[] rest() {
        byte[] out = java.util.Arrays.copyOfRange(data, Math.min(pos, data.length), data.length);
        pos = data.length;
        return out;
    }
}
