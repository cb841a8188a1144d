package dev.jmoe.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
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
    private final AtomicBoolean unmapped = new AtomicBoolean();
    /** Null for files parsed from memory ({@link #read}). */
    private final FileGuard guard;

    private GgufFile(Path path, GgufParser.Result r, Arena arena, MemorySegment mapping, FileGuard guard) {
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
        this.guard = guard;
    }

    /**
     * Opens and validates {@code path}; throws {@link GgufFormatException} naming the field and byte offset on bad
     * input, and an IOException naming the path when it is not a non-empty regular file (a FIFO, a device, a
     * directory: checked without opening it, so nothing here blocks). While the file is open a {@link FileGuard}
     * keeps another process from truncating or rewriting it under the mapping (which would crash the JVM); if one
     * tries, the mapping is closed first and {@link #fileChange()} says what happened.
     */
    public static GgufFile open(Path path) throws IOException {
        // An empty regular file is left to the parser, which names the missing magic at byte offset 0.
        ModelFiles.checkRegularFile(path, "model file");
        FileGuard guard = FileGuard.open(path);
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(guard.stablePath(), StandardOpenOption.READ)) {
            long size = ch.size();
            if (size != guard.size()) {
                throw new IOException(path + " changed while being opened (" + guard.size() + " then " + size + " bytes)");
            }
            // A zero-length mapping is not portable; an empty segment fails parsing at the magic just the same.
            MemorySegment mapping = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            GgufParser.Result r = new GgufParser(mapping, path.toString()).parse();
            GgufFile f = new GgufFile(path, r, arena, mapping, guard);
            guard.onChange(f::unmap);
            if (guard.checkNow() != null) throw new IOException(guard.change());
            return f;
        } catch (IOException | RuntimeException | Error e) {
            guard.close();
            if (arena.scope().isAlive()) arena.close();
            throw e;
        }
    }

    /**
     * Parses GGUF bytes already in memory (tests and fuzzing: no file, no guard). {@code name} stands for the path
     * in messages; the caller keeps {@code data} alive while the result is used.
     */
    public static GgufFile read(MemorySegment data, String name) throws GgufFormatException {
        GgufParser.Result r = new GgufParser(data, name).parse();
        return new GgufFile(Path.of(name), r, null, data, null);
    }

    public Path path() { return path; }

    /**
     * The path to open this very file by (the inode that was checked and mapped, even if {@link #path()} has been
     * replaced since): {@code /proc/self/fd/N} on Linux. Readers that bypass the mapping (the expert stores) open this.
     */
    public Path stablePath() {
        if (closed.get()) throw new IllegalStateException(path + " is closed");
        return guard == null ? path : guard.stablePath();
    }

    /**
     * Null while the file is as it was opened; otherwise one sentence saying how it changed (looked at now). After a
     * change the mapping is closed: reads of tensor data throw IllegalStateException instead of crashing the JVM.
     */
    public String fileChange() {
        return guard == null ? null : guard.describeChange();
    }

    /** Why the file is only watched for changes rather than protected by a lease, or null when it is protected. */
    public String protectionNote() {
        return guard == null ? null : guard.noLeaseReason();
    }
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

    /** Closes the mapping (a handshake with every thread: later accesses throw instead of faulting). */
    private void unmap() {
        if (arena != null && unmapped.compareAndSet(false, true)) arena.close();
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            unmap();
            if (guard != null) guard.close();
        }
    }

    @Override
    public String toString() {
        return "GgufFile[" + path + ", v" + version + ", " + metadata.size() + " keys, " + tensors.size() + " tensors]";
    }
}
