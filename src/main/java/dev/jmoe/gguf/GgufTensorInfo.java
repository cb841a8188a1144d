package dev.jmoe.gguf;

import dev.jmoe.tensor.GgmlType;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's header entry. {@code dims} are in ggml order (first = fastest-varying = row length);
 * {@code offset} is relative to the data section; {@code byteSize} is computed from type and dims.
 * The constructor checks that {@code byteSize} matches, so an info can never disagree with its own shape.
 */
public record GgufTensorInfo(String name, long[] dims, GgmlType type, long offset, long byteSize) {

    /** GGUF (like ggml) allows at most four dimensions. */
    public static final int MAX_DIMS = 4;

    public GgufTensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dims, "dims");
        Objects.requireNonNull(type, "type");
        dims = dims.clone();
        if (offset < 0) throw new IllegalArgumentException("tensor '" + name + "': negative offset " + offset);
        long expected = byteSizeOf(name, type, dims);
        if (byteSize != expected) {
            throw new IllegalArgumentException("tensor '" + name + "': byteSize " + byteSize + " but " + type + " "
                    + Arrays.toString(dims) + " takes " + expected + " bytes");
        }
    }

    /** An info whose byte size is computed from type and dims. */
    public static GgufTensorInfo of(String name, GgmlType type, long[] dims, long offset) {
        return new GgufTensorInfo(name, dims, type, offset, byteSizeOf(name, type, dims));
    }

    /**
     * Bytes taken by a tensor of this type and shape; throws IllegalArgumentException naming the tensor when
     * the shape is invalid (no dims, more than four, negative, row length not a multiple of the block size,
     * or a size beyond 2^63).
     */
    public static long byteSizeOf(String name, GgmlType type, long[] dims) {
        if (dims.length == 0 || dims.length > MAX_DIMS) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + dims.length + " dimensions; GGUF allows 1 to " + MAX_DIMS);
        }
        long count = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < 0) {
                throw new IllegalArgumentException("tensor '" + name + "' dimension " + i + " is negative (" + Long.toUnsignedString(dims[i]) + " as unsigned)");
            }
            try {
                count = Math.multiplyExact(count, dims[i]);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor '" + name + "' shape " + Arrays.toString(dims) + " has more than 2^63 elements");
            }
        }
        if (dims[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "' row length " + dims[0] + " is not a multiple of the "
                    + type + " block size " + type.blockSize());
        }
        long blocks = count / type.blockSize();
        if (blocks > Long.MAX_VALUE / type.blockBytes()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + type + " " + Arrays.toString(dims) + " takes more than 2^63 bytes");
        }
        return blocks * type.blockBytes();
    }

    /** A copy of the dimensions; use {@link #dim(int)} or {@link #nDims()} in hot paths. */
    @Override public long[] dims() { return dims.clone(); }

    public int nDims() { return dims.length; }

    public long elementCount() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    /** Dimension {@code i}, or 1 beyond the stored dimensions (as in ggml). */
    public long dim(int i) { return i < dims.length ? dims[i] : 1; }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t && name.equals(t.name) && Arrays.equals(dims, t.dims)
                && type == t.type && offset == t.offset && byteSize == t.byteSize;
    }

    @Override
    public int hashCode() { return Objects.hash(name, Arrays.hashCode(dims), type, offset); }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(dims) + " @" + offset + " (" + byteSize + " bytes)";
    }
}
