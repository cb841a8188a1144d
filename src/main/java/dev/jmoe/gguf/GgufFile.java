package dev.jmoe.gguf;

import dev.jmoe.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A GGUF file (version 2 or 3) opened read-only: metadata, tensor infos, and tensor data
 * memory-mapped through FFM. All offsets and sizes are {@code long}.
 */
public final class GgufFile implements AutoCloseable {

    /** Opens and validates {@code path}; throws {@link GgufFormatException} naming the field and byte offset on bad input. */
    public static GgufFile open(Path path) throws java.io.IOException { throw new UnsupportedOperationException("TODO"); }

    public Path path() { throw new UnsupportedOperationException("TODO"); }
    public int version() { throw new UnsupportedOperationException("TODO"); }
    public long alignment() { throw new UnsupportedOperationException("TODO"); }
    /** Absolute byte offset of the tensor data section. */
    public long dataOffset() { throw new UnsupportedOperationException("TODO"); }

    /** All metadata in file order. */
    public Map<String, GgufValue> metadata() { throw new UnsupportedOperationException("TODO"); }
    public Optional<GgufValue> get(String key) { throw new UnsupportedOperationException("TODO"); }
    public boolean has(String key) { throw new UnsupportedOperationException("TODO"); }

    /** Typed getters: throw GgufFormatException naming the key when it is missing or of the wrong type. */
    public String getString(String key) { throw new UnsupportedOperationException("TODO"); }
    public String getString(String key, String defaultValue) { throw new UnsupportedOperationException("TODO"); }
    /** Any integer type (u8…u64, i8…i64), widened. */
    public long getLong(String key) { throw new UnsupportedOperationException("TODO"); }
    public long getLong(String key, long defaultValue) { throw new UnsupportedOperationException("TODO"); }
    public int getInt(String key) { throw new UnsupportedOperationException("TODO"); }
    public int getInt(String key, int defaultValue) { throw new UnsupportedOperationException("TODO"); }
    /** Any numeric type, as double. */
    public double getDouble(String key) { throw new UnsupportedOperationException("TODO"); }
    public double getDouble(String key, double defaultValue) { throw new UnsupportedOperationException("TODO"); }
    public boolean getBool(String key, boolean defaultValue) { throw new UnsupportedOperationException("TODO"); }
    public List<String> getStringArray(String key) { throw new UnsupportedOperationException("TODO"); }
    /** Integer array of any integer element type. */
    public int[] getIntArray(String key) { throw new UnsupportedOperationException("TODO"); }
    public float[] getFloatArray(String key) { throw new UnsupportedOperationException("TODO"); }

    public List<GgufTensorInfo> tensors() { throw new UnsupportedOperationException("TODO"); }
    /** The tensor called {@code name}, or null. */
    public GgufTensorInfo tensor(String name) { throw new UnsupportedOperationException("TODO"); }
    /** The mapped bytes of a tensor (a slice of the file mapping). */
    public MemorySegment tensorData(GgufTensorInfo info) { throw new UnsupportedOperationException("TODO"); }

    @Override public void close() {}
}
