package dev.jmoe.model;

/**
 * F32 key/value cache: per layer, {@code capacity} positions of {@code kvDim} floats each.
 * Position p of layer l starts at {@code p * kvDim} in {@link #keys(int)} / {@link #values(int)}.
 */
public final class KvCache {
    private final float[][] keys;
    private final float[][] values;
    private final int capacity;
    private final int kvDim;

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

    public int capacity() { return capacity; }
    public int kvDim() { return kvDim; }
    public float[] keys(int layer) { return keys[layer]; }
    public float[] values(int layer) { return values[layer]; }

    /** Bytes held by the cache. */
    public long byteSize() { return 2L * keys.length * capacity * kvDim * Float.BYTES; }

    /** Copies positions [0, n) of every layer from {@code other} (same shape). */
    public void copyFrom(KvCache other, int n) {
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(other.keys[l], 0, keys[l], 0, n * kvDim);
            System.arraycopy(other.values[l], 0, values[l], 0, n * kvDim);
        }
    }

    /** Copies position {@code pos} of every layer from {@code other}. */
    public void copyPositionFrom(KvCache other, int pos) {
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(other.keys[l], pos * kvDim, keys[l], pos * kvDim, kvDim);
            System.arraycopy(other.values[l], pos * kvDim, values[l], pos * kvDim, kvDim);
        }
    }
}
