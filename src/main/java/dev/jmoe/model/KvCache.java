package dev.jmoe.model;

/**
 * F32 key/value cache: per layer, {@code capacity} positions of {@code kvDim} floats each. Position p of layer l starts
 * at {@link #offset(int) offset(p)} in {@link #keys(int)} / {@link #values(int)}: at {@code p * kvDim} in a cache of its
 * own, further on in a {@link #region} of a larger cache (sequences served together share one KV memory that way).
 */
public final class KvCache {
    private final float[][] keys;
    private final float[][] values;
    private final int capacity;
    private final int kvDim;
    private int base; // first position of this cache in the arrays (0 unless it is a region of a larger cache)

    public KvCache(int nLayer, int capacity, int kvDim) {
        if (capacity <= 0) throw new IllegalArgumentException("context size must be positive, got " + capacity);
        long bytes = 2L * nLayer * capacity * kvDim * Float.BYTES;
        if ((long) capacity * kvDim > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("context size " + capacity + " is too large for one layer's cache (" + kvDim + " floats per position)");
        }
        this.capacity = capacity;
        this.kvDim = kvDim;
        keys = new float[nLayer][];
        values = new float[nLayer][];
        try {
            for (int l = 0; l < nLayer; l++) {
                keys[l] = new float[capacity * kvDim];
                values[l] = new float[capacity * kvDim];
            }
        } catch (OutOfMemoryError e) {
            throw new IllegalArgumentException("the KV cache for context " + capacity + " needs " + (bytes >> 20)
                    + " MiB, more than the JVM heap allows; lower --ctx-size or raise -Xmx via JMOE_JAVA_OPTS");
        }
    }

    private KvCache(float[][] keys, float[][] values, int base, int capacity, int kvDim) {
        this.keys = keys;
        this.values = values;
        this.base = base;
        this.capacity = capacity;
        this.kvDim = kvDim;
    }

    /**
     * Positions [first, first + capacity) of this cache as a cache of its own, sharing the arrays: a batch's sequences
     * each take a region of one KV memory. The region's position 0 is this cache's position {@code first}.
     */
    public KvCache region(int first, int capacity) {
        if (first < 0 || capacity < 1 || (long) first + capacity > this.capacity) {
            throw new IllegalArgumentException("region [" + first + ", " + ((long) first + capacity) + ") is outside the cache's " + this.capacity + " positions");
        }
        return new KvCache(keys, values, base + first, capacity, kvDim);
    }

    /**
     * Moves this region's first {@code positions} positions to start at position {@code first} of the cache it was cut
     * from (compacting a shared KV memory); the region then lives there. Overlapping moves are fine.
     */
    public void moveTo(int first, int positions, KvCache parent) {
        if (positions < 0 || positions > capacity) throw new IllegalArgumentException("cannot move " + positions + " of " + capacity + " positions");
        int newBase = parent.base + first;
        if (first < 0 || (long) first + capacity > parent.capacity) {
            throw new IllegalArgumentException("region [" + first + ", " + ((long) first + capacity) + ") is outside the cache's " + parent.capacity + " positions");
        }
        if (parent.keys != keys) throw new IllegalArgumentException("not a region of that cache");
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(keys[l], base * kvDim, keys[l], newBase * kvDim, positions * kvDim);
            System.arraycopy(values[l], base * kvDim, values[l], newBase * kvDim, positions * kvDim);
        }
        base = newBase;
    }

    public int capacity() { return capacity; }
    public int kvDim() { return kvDim; }
    public float[] keys(int layer) { return keys[layer]; }
    public float[] values(int layer) { return values[layer]; }

    /** Where position {@code pos} of this cache starts in {@link #keys(int)} and {@link #values(int)}. */
    public int offset(int pos) { return (base + pos) * kvDim; }

    /** Bytes of the positions this cache holds. */
    public long byteSize() { return 2L * keys.length * capacity * kvDim * Float.BYTES; }

    /** Copies positions [0, n) of every layer from {@code other} (same shape). */
    public void copyFrom(KvCache other, int n) {
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(other.keys[l], other.offset(0), keys[l], offset(0), n * kvDim);
            System.arraycopy(other.values[l], other.offset(0), values[l], offset(0), n * kvDim);
        }
    }

    /** Copies position {@code pos} of every layer from {@code other}. */
    public void copyPositionFrom(KvCache other, int pos) {
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(other.keys[l], other.offset(pos), keys[l], offset(pos), kvDim);
            System.arraycopy(other.values[l], other.offset(pos), values[l], offset(pos), kvDim);
        }
    }
}
