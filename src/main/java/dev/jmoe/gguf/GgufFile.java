package dev.jmoe.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * A GGUF file (version 2 or 3) opened read-only: metadata, tensor infos, and tensor data
 * memory-mapped through FFM. All offsets and sizes are {@code long}.
 *
 * <p>{@link #open} validates the whole header (see {@link GgufFormatException}). The typed metadata getters
 * throw the unchecked {@link GgufException}, naming the file and the key, when a key is missing or holds an
 * incompatible type; the variants with a default return it only when the key is missing.
 *
 * <p>The mapping lives in a shared arena: tensor data may be read from any thread until {@link #close()},
 * after which every segment handed out becomes inaccessible.
 */
public final class GgufFile implements AutoCloseable {

    private final Path path;
    private final int version;
    private final long alignment;
    private final long dataOffset;
    private final Map<String, GgufValue> metadata;
    private final List<GgufTensorInfo> tensors;
    private final Map<String, GgufTensorInfo> tensorsByName;
    private final Arena arena;
    private final MemorySegment mapping;
    private final AtomicBoolean closed = new AtomicBoolean();

    private GgufFile(Path path, GgufParser.Result r, Arena arena, MemorySegment mapping) {
        this.path = path;
        this.version = r.version();
        this.alignment = r.alignment();
        this.dataOffset = r.dataOffset();
        this.metadata = Collections.unmodifiableMap(r.metadata());
        this.tensors = List.copyOf(r.tensors());
        Map<String, GgufTensorInfo> byName = new HashMap<>();
        for (GgufTensorInfo t : tensors) byName.put(t.name(), t);
        this.tensorsByName = byName;
        this.arena = arena;
        this.mapping = mapping;
    }

    /** Opens and validates {@code path}; throws {@link GgufFormatException} naming the field and byte offset on bad input. */
    public static GgufFile open(Path path) throws IOException {
        if (Files.isDirectory(path)) throw new IOException(path + " is a directory, not a GGUF file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            // A zero-length mapping is not portable; an empty segment fails parsing at the magic just the same.
            MemorySegment mapping = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            GgufParser.Result r = new GgufParser(mapping, path.toString()).parse();
            return new GgufFile(path, r, arena, mapping);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    public Path path() { return path; }
    public int version() { return version; }
    public long alignment() { return alignment; }
    /** Absolute byte offset of the tensor data section. */
    public long dataOffset() { return dataOffset; }
    public long fileSize() { return mapping.byteSize(); }

    /** All metadata in file order. */
    public Map<String, GgufValue> metadata() { return metadata; }
    public Optional<GgufValue> get(String key) { return Optional.ofNullable(metadata.get(key)); }
    public boolean has(String key) { return metadata.containsKey(key); }

    /** The value of {@code key}; throws GgufException naming the file and key when it is missing. */
    public GgufValue require(String key) {
        GgufValue v = metadata.get(key);
        if (v == null) throw new GgufException(path + ": metadata key '" + key + "' is missing");
        return v;
    }

    private <T> T convert(String key, Function<GgufValue, T> conversion) {
        GgufValue v = require(key);
        try {
            return conversion.apply(v);
        } catch (GgufException e) {
            throw new GgufException(path + ": metadata key '" + key + "': " + e.getMessage(), e);
        }
    }

    private <T> T convert(String key, T defaultValue, Function<GgufValue, T> conversion) {
        return metadata.containsKey(key) ? convert(key, conversion) : defaultValue;
    }

    /** Typed getters: throw GgufException naming the key when it is missing or of the wrong type. */
    public String getString(String key) { return convert(key, GgufValue::asString); }
    public String getString(String key, String defaultValue) { return convert(key, defaultValue, GgufValue::asString); }
    /** Any integer type (u8…u64, i8…i64), widened. */
    public long getLong(String key) { return convert(key, GgufValue::asLong); }
    public long getLong(String key, long defaultValue) { return convert(key, defaultValue, GgufValue::asLong); }
    public int getInt(String key) { return convert(key, GgufValue::asInt); }
    public int getInt(String key, int defaultValue) { return convert(key, defaultValue, GgufValue::asInt); }
    /** Any numeric type, as double. */
    public double getDouble(String key) { return convert(key, GgufValue::asDouble); }
    public double getDouble(String key, double defaultValue) { return convert(key, defaultValue, GgufValue::asDouble); }
    public boolean getBool(String key) { return convert(key, GgufValue::asBool); }
    public boolean getBool(String key, boolean defaultValue) { return convert(key, defaultValue, GgufValue::asBool); }
    public GgufArray getArray(String key) { return convert(key, GgufValue::asArray); }
    public List<String> getStringArray(String key) { return convert(key, v -> v.asArray().toStringList()); }
    /** Integer array of any integer element type. */
    public int[] getIntArray(String key) { return convert(key, v -> v.asArray().toIntArray()); }
    /** Numeric array of any element type, converted to float. */
    public float[] getFloatArray(String key) { return convert(key, v -> v.asArray().toFloatArray()); }

    public List<GgufTensorInfo> tensors() { return tensors; }
    /** The tensor called {@code name}, or null. */
    public GgufTensorInfo tensor(String name) { return tensorsByName.get(name); }

    /** The tensor called {@code name}; throws GgufException naming the file when there is none. */
    public GgufTensorInfo requireTensor(String name) {
        GgufTensorInfo t = tensorsByName.get(name);
        if (t == null) throw new GgufException(path + ": tensor '" + name + "' is missing");
        return t;
    }

    /** Absolute file offset of a tensor's first byte (for readers that bypass the mapping). */
    public long fileOffset(GgufTensorInfo info) {
        checkOwn(info);
        return dataOffset + info.offset();
    }

    /** The mapped bytes of a tensor (a slice of the file mapping). */
    public MemorySegment tensorData(GgufTensorInfo info) {
        checkOwn(info);
        if (closed.get()) throw new IllegalStateException(path + " is closed");
        return mapping.asSlice(dataOffset + info.offset(), info.byteSize());
    }

    /** The whole file, mapped read-only. */
    public MemorySegment mapping() {
        if (closed.get()) throw new IllegalStateException(path + " is closed");
        return mapping;
    }

    private void checkOwn(GgufTensorInfo info) {
        GgufTensorInfo own = tensorsByName.get(info.name());
        if (!info.equals(own)) throw new IllegalArgumentException("tensor " + info + " is not a tensor of " + path);
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) arena.close();
    }

    @Override
    public String toString() {
        return "GgufFile[" + path + ", v" + version + ", " + metadata.size() + " keys, " + tensors.size() + " tensors]";
    }
}
