package dev.jmoe.gguf;

import dev.jmoe.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Writes GGUF version 3 files: metadata, tensor infos, aligned tensor data.
 *
 * <p>Metadata keeps insertion order; putting an existing key replaces its value in place. Tensors are laid
 * out in the order they were added, each at an offset that is a multiple of {@code general.alignment}
 * (32 unless put as a UINT32 power of two). Tensor data can be given up front, as a supplier called once
 * during {@link #write}, or as a filler that writes straight into the output file, so a multi-GiB model
 * never has to be held in memory at once.
 *
 * <p>{@link #write} writes a temporary file next to the target and moves it into place atomically: a
 * failed write leaves an existing file untouched. Invalid arguments (bad shapes, data of the wrong size,
 * duplicate names) are IllegalArgumentExceptions naming the tensor or key. Not thread-safe.
 */
public final class GgufWriter {

    /** llama.cpp stores tensor names in a fixed 64-byte field including the terminating zero. */
    public static final int MAX_TENSOR_NAME_BYTES = 63;
    /** The GGUF specification limits keys to 65535 bytes. */
    public static final int MAX_KEY_BYTES = 65535;
    private static final int STAGING_BYTES = 4 << 20;

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final Map<String, Pending> tensors = new LinkedHashMap<>();

    /** Fills a writable segment (zeroed, exactly the tensor's size) that is only valid during the call. */
    @FunctionalInterface
    public interface TensorFiller extends Consumer<MemorySegment> {}

    private record Pending(String name, GgmlType type, long[] dims, long byteSize,
                           MemorySegment data, Supplier<MemorySegment> supplier, Consumer<MemorySegment> filler) {}

    public GgufWriter() {}

    /**
     * A writer holding all metadata and tensors of {@code source}, to be edited and written elsewhere. The data
     * is read from the source's mapping during {@link #write}, so {@code source} must stay open until then.
     */
    public static GgufWriter copyOf(GgufFile source) {
        GgufWriter w = new GgufWriter();
        source.metadata().forEach(w::put);
        for (GgufTensorInfo t : source.tensors()) w.addTensor(t.name(), t.type(), t.dims(), () -> source.tensorData(t));
        return w;
    }

    /** Adds {@code key}, or replaces its value keeping its position. */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value of " + key);
        int bytes = key.getBytes(StandardCharsets.UTF_8).length;
        if (bytes == 0 || bytes > MAX_KEY_BYTES) throw new IllegalArgumentException("metadata key of " + bytes + " bytes; keys take 1 to " + MAX_KEY_BYTES);
        if (key.equals(GgufParser.ALIGNMENT_KEY)) {
            if (value.type() != GgufValueType.UINT32) {
                throw new IllegalArgumentException(GgufParser.ALIGNMENT_KEY + " must be a UINT32, got " + value.type());
            }
            long a = value.asLong();
            if (a == 0 || (a & (a - 1)) != 0) throw new IllegalArgumentException(GgufParser.ALIGNMENT_KEY + " " + a + " is not a power of two");
        }
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String v) { return put(key, GgufValue.ofString(v)); }
    public GgufWriter putU8(String key, int v) { return put(key, GgufValue.ofU8(v)); }
    public GgufWriter putI8(String key, int v) { return put(key, GgufValue.ofI8(v)); }
    public GgufWriter putU16(String key, int v) { return put(key, GgufValue.ofU16(v)); }
    public GgufWriter putI16(String key, int v) { return put(key, GgufValue.ofI16(v)); }
    public GgufWriter putU32(String key, long v) { return put(key, GgufValue.ofU32(v)); }
    public GgufWriter putI32(String key, int v) { return put(key, GgufValue.ofI32(v)); }
    /** {@code bits} is the raw 64-bit pattern (see {@link GgufValue#ofU64}). */
    public GgufWriter putU64(String key, long bits) { return put(key, GgufValue.ofU64(bits)); }
    public GgufWriter putI64(String key, long v) { return put(key, GgufValue.ofI64(v)); }
    public GgufWriter putF32(String key, float v) { return put(key, GgufValue.ofF32(v)); }
    public GgufWriter putF64(String key, double v) { return put(key, GgufValue.ofF64(v)); }
    public GgufWriter putBool(String key, boolean v) { return put(key, GgufValue.ofBool(v)); }
    public GgufWriter putArray(String key, GgufArray v) { return put(key, GgufValue.ofArray(v)); }
    public GgufWriter putStringArray(String key, List<String> v) { return put(key, GgufValue.ofStringArray(v)); }
    public GgufWriter putI32Array(String key, int... v) { return put(key, GgufValue.ofI32Array(v)); }
    public GgufWriter putF32Array(String key, float... v) { return put(key, GgufValue.ofF32Array(v)); }

    public GgufWriter remove(String key) {
        metadata.remove(key);
        return this;
    }

    /** The metadata to be written, in order (unmodifiable view). */
    public Map<String, GgufValue> metadata() { return Collections.unmodifiableMap(metadata); }

    public long alignment() {
        GgufValue a = metadata.get(GgufParser.ALIGNMENT_KEY);
        return a == null ? GgufParser.DEFAULT_ALIGNMENT : a.asLong();
    }

    /** Adds a tensor whose bytes are {@code data} (read during {@link #write}; must stay accessible until then). */
    public GgufWriter addTensor(String name, GgmlType type, long[] dims, MemorySegment data) {
        Objects.requireNonNull(data, "data of " + name);
        long size = checkTensor(name, type, dims);
        checkDataSize(name, type, dims, size, data);
        tensors.put(name, new Pending(name, type, dims.clone(), size, data, null, null));
        return this;
    }

    /**
     * Adds a tensor whose bytes {@code data} supplies when {@link #write} reaches it, so only one tensor
     * needs to exist at a time. The segment must have exactly the tensor's size.
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] dims, Supplier<MemorySegment> data) {
        Objects.requireNonNull(data, "data of " + name);
        long size = checkTensor(name, type, dims);
        tensors.put(name, new Pending(name, type, dims.clone(), size, null, data, null));
        return this;
    }

    /**
     * Adds a tensor that {@code filler} writes directly into the output file during {@link #write}: it gets
     * a zeroed, writable segment of exactly the tensor's size, valid only during the call.
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] dims, TensorFiller filler) {
        Objects.requireNonNull(filler, "filler of " + name);
        long size = checkTensor(name, type, dims);
        tensors.put(name, new Pending(name, type, dims.clone(), size, null, null, filler));
        return this;
    }

    private long checkTensor(String name, GgmlType type, long[] dims) {
        Objects.requireNonNull(name, "tensor name");
        Objects.requireNonNull(type, "type of " + name);
        Objects.requireNonNull(dims, "dims of " + name);
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes == 0 || bytes > MAX_TENSOR_NAME_BYTES) {
            throw new IllegalArgumentException("tensor name '" + name + "' has " + bytes + " bytes; names take 1 to " + MAX_TENSOR_NAME_BYTES);
        }
        if (tensors.containsKey(name)) throw new IllegalArgumentException("duplicate tensor name '" + name + "'");
        return GgufTensorInfo.byteSizeOf(name, type, dims);
    }

    private static void checkDataSize(String name, GgmlType type, long[] dims, long size, MemorySegment data) {
        if (data.byteSize() != size) {
            throw new IllegalArgumentException("tensor '" + name + "': data has " + data.byteSize() + " bytes but " + type + " "
                    + Arrays.toString(dims) + " takes " + size);
        }
    }

    /** The tensor infos {@link #write} will produce with the current alignment, offsets relative to the data section. */
    public List<GgufTensorInfo> tensorInfos() {
        long alignment = alignment();
        List<GgufTensorInfo> infos = new ArrayList<>(tensors.size());
        long offset = 0;
        for (Pending p : tensors.values()) {
            offset = GgufParser.alignUp(offset, alignment);
            infos.add(new GgufTensorInfo(p.name(), p.dims(), p.type(), offset, p.byteSize()));
            offset = Math.addExact(offset, p.byteSize());
        }
        return infos;
    }

    /** Writes the file; on failure {@code path} is left as it was. */
    public void write(Path path) throws IOException {
        Path target = path.toAbsolutePath();
        if (Files.isDirectory(target)) throw new IOException(target + " is a directory");
        List<GgufTensorInfo> infos = tensorInfos();
        byte[] header = header(infos);
        long alignment = alignment();
        long dataStart = GgufParser.alignUp(header.length, alignment);

        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(ch, ByteBuffer.wrap(header), 0);
                writeTensors(ch, infos, dataStart);
                if (!infos.isEmpty() && tensorWritten != null) tensorWritten.run();
                // Like llama.cpp, pad the header and every tensor (the last one too) to the alignment.
                long end = infos.isEmpty() ? dataStart
                        : GgufParser.alignUp(dataStart + infos.getLast().offset() + infos.getLast().byteSize(), alignment);
                if (ch.size() < end) writeFully(ch, ByteBuffer.allocate(1), end - 1);
                ch.force(true);
            }
            setPermissions(tmp, target);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException | Error e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Calls {@code listener} after each tensor's data is written (for progress display). */
    public GgufWriter onTensorWritten(Runnable listener) {
        this.tensorWritten = listener;
        return this;
    }

    private Runnable tensorWritten;

    private void writeTensors(FileChannel ch, List<GgufTensorInfo> infos, long dataStart) throws IOException {
        ByteBuffer staging = null;
        MemorySegment stage = null;
        int i = 0;
        for (Pending p : tensors.values()) {
            if (i > 0 && tensorWritten != null) tensorWritten.run();
            long pos = dataStart + infos.get(i++).offset();
            if (p.filler() != null) {
                fill(ch, p, pos);
                continue;
            }
            MemorySegment data = p.data();
            if (data == null) {
                data = p.supplier().get();
                if (data == null) throw new IllegalArgumentException("tensor '" + p.name() + "': data supplier returned null");
                checkDataSize(p.name(), p.type(), p.dims(), p.byteSize(), data);
            }
            if (staging == null) {
                staging = ByteBuffer.allocateDirect(STAGING_BYTES);
                stage = MemorySegment.ofBuffer(staging);
            }
            // Copy through a staging buffer: any segment (heap arrays of any kind, mappings beyond 2 GiB) works.
            for (long done = 0; done < p.byteSize(); ) {
                int n = (int) Math.min(STAGING_BYTES, p.byteSize() - done);
                MemorySegment.copy(data, done, stage, 0, n);
                writeFully(ch, staging.clear().limit(n), pos + done);
                done += n;
            }
        }
    }

    private static void fill(FileChannel ch, Pending p, long pos) throws IOException {
        if (p.byteSize() == 0) {
            p.filler().accept(MemorySegment.ofArray(new byte[0]));
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = ch.map(FileChannel.MapMode.READ_WRITE, pos, p.byteSize(), arena);
            p.filler().accept(region);
            region.force();
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) pos += ch.write(buf, pos);
    }

    /** The new file gets the permissions of the one it replaces, else rw-r--r-- (temp files start private). */
    private static void setPermissions(Path tmp, Path target) throws IOException {
        try {
            Set<PosixFilePermission> perms = Files.exists(target)
                    ? Files.getPosixFilePermissions(target)
                    : PosixFilePermissions.fromString("rw-r--r--");
            Files.setPosixFilePermissions(tmp, perms);
        } catch (UnsupportedOperationException notPosix) {
            // Non-POSIX file systems keep their defaults.
        }
    }

    private byte[] header(List<GgufTensorInfo> infos) {
        Encoder e = new Encoder();
        e.u32(GgufParser.MAGIC).u32(3).u64(infos.size()).u64(metadata.size());
        metadata.forEach((key, value) -> {
            e.string(key).u32(value.type().id());
            e.value(value.type(), value.value());
        });
        for (GgufTensorInfo t : infos) {
            e.string(t.name()).u32(t.nDims());
            for (int d = 0; d < t.nDims(); d++) e.u64(t.dim(d));
            e.u32(t.type().id()).u64(t.offset());
        }
        return e.toByteArray();
    }

    /** Little-endian growable byte buffer for the header. */
    private static final class Encoder {
        private ByteBuffer buf = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);

        private ByteBuffer room(long n) {
            if (buf.remaining() < n) {
                long want = Math.max((long) buf.capacity() * 2, buf.position() + n);
                if (want > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("GGUF header exceeds 2 GiB");
                ByteBuffer bigger = ByteBuffer.allocate((int) want).order(ByteOrder.LITTLE_ENDIAN);
                bigger.put(buf.flip());
                buf = bigger;
            }
            return buf;
        }

        Encoder u8(byte v) { room(1).put(v); return this; }
        Encoder u16(short v) { room(2).putShort(v); return this; }
        Encoder u32(int v) { room(4).putInt(v); return this; }
        Encoder u64(long v) { room(8).putLong(v); return this; }

        Encoder string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            room(b.length).put(b);
            return this;
        }

        void value(GgufValueType type, Object v) {
            switch (type) {
                case UINT8, INT8 -> u8((Byte) v);
                case UINT16, INT16 -> u16((Short) v);
                case UINT32, INT32 -> u32((Integer) v);
                case UINT64, INT64 -> u64((Long) v);
                case FLOAT32 -> room(4).putFloat((Float) v);
                case FLOAT64 -> room(8).putDouble((Double) v);
                case BOOL -> u8((byte) ((Boolean) v ? 1 : 0));
                case STRING -> string((String) v);
                case ARRAY -> array((GgufArray) v);
            }
        }

        void array(GgufArray a) {
            u32(a.elementType().id()).u64(a.size());
            Object backing = ((ElementList) a.elements()).backing();
            switch (backing) {
                case byte[] x -> room(x.length).put(x);
                case short[] x -> room(2L * x.length).asShortBuffer().put(x);
                case int[] x -> room(4L * x.length).asIntBuffer().put(x);
                case long[] x -> room(8L * x.length).asLongBuffer().put(x);
                case float[] x -> room(4L * x.length).asFloatBuffer().put(x);
                case double[] x -> room(8L * x.length).asDoubleBuffer().put(x);
                case boolean[] x -> { for (boolean b : x) u8((byte) (b ? 1 : 0)); }
                case String[] x -> { for (String s : x) string(s); }
                case GgufArray[] x -> { for (GgufArray n : x) array(n); }
                default -> throw new AssertionError(backing.getClass());
            }
            if (backing instanceof short[] || backing instanceof int[] || backing instanceof long[]
                    || backing instanceof float[] || backing instanceof double[]) {
                // The typed views above do not move the parent buffer's position.
                buf.position((int) (buf.position() + (long) a.size() * a.elementType().fixedSize()));
            }
        }

        byte[] toByteArray() { return Arrays.copyOf(buf.array(), buf.position()); }
    }
}
