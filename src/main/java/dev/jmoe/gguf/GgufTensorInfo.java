package dev.jmoe.gguf;

import dev.jmoe.tensor.GgmlType;

/**
 * One tensor's header entry. {@code dims} are in ggml order (first = fastest-varying = row length);
 * {@code offset} is relative to the data section; {@code byteSize} is computed from type and dims.
 */
public record GgufTensorInfo(String name, long[] dims, GgmlType type, long offset, long byteSize) {
    public long elementCount() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }
    public long dim(int i) { return i < dims.length ? dims[i] : 1; }
}
