package dev.jmoe.generate;

import java.util.Arrays;

/** Open-addressing long → long map for the BPE merge table, which is probed for every adjacent symbol pair. */
final class LongLongMap {
    private static final long EMPTY = Long.MIN_VALUE;
    private long[] keys;
    private long[] values;
    private int size;
    private int mask;

    LongLongMap(int expected) {
        int cap = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
        keys = new long[cap];
        values = new long[cap];
        Arrays.fill(keys, EMPTY);
        mask = cap - 1;
    }

    private static int slot(long key, int mask) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }

    /** Stores the value unless the key is present already; returns whether it was stored. */
    boolean putIfAbsent(long key, long value) {
        if (key == EMPTY) {
            throw new IllegalArgumentException("reserved key");
        }
        if ((size + 1) * 2 > keys.length) {
            grow();
        }
        int i = slot(key, mask);
        while (keys[i] != EMPTY) {
            if (keys[i] == key) {
                return false;
            }
            i = (i + 1) & mask;
        }
        keys[i] = key;
        values[i] = value;
        size++;
        return true;
    }

    /** The value for key, or {@code missing}. */
    long get(long key, long missing) {
        int i = slot(key, mask);
        long k;
        while ((k = keys[i]) != EMPTY) {
            if (k == key) {
                return values[i];
            }
            i = (i + 1) & mask;
        }
        return missing;
    }

    private void grow() {
        long[] ok = keys, ov = values;
        keys = new long[ok.length * 2];
        values = new long[ok.length * 2];
        Arrays.fill(keys, EMPTY);
        mask = keys.length - 1;
        size = 0;
        for (int i = 0; i < ok.length; i++) {
            if (ok[i] != EMPTY) {
                putIfAbsent(ok[i], ov[i]);
            }
        }
    }
}
