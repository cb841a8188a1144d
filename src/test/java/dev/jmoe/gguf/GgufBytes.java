package dev.jmoe.gguf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Hand-assembles GGUF bytes field by field, independently of {@link GgufWriter}, so reader tests do not
 * depend on the writer and can produce what the writer refuses to (old versions, corrupt fields).
 * {@link #mark()} returns the offset of the next field so tests can patch it afterwards.
 */
final class GgufBytes {
    private byte[] buf = new byte[256];
    private int size;

    int mark() { return size; }

    private ByteBuffer room(int n) {
        if (size + n > buf.length) buf = Arrays.copyOf(buf, Math.max(size + n, buf.length * 2));
        ByteBuffer b = ByteBuffer.wrap(buf, size, n).order(ByteOrder.LITTLE_ENDIAN);
        size += n;
        return b;
    }

    GgufBytes u8(int v) { room(1).put((byte) v); return this; }
    GgufBytes u16(int v) { room(2).putShort((short) v); return this; }
    GgufBytes u32(long v) { room(4).putInt((int) v); return this; }
    GgufBytes u64(long v) { room(8).putLong(v); return this; }
    GgufBytes f32(float v) { room(4).putFloat(v); return this; }
    GgufBytes f64(double v) { room(8).putDouble(v); return this; }
    GgufBytes raw(byte[] b) { room(b.length).put(b); return this; }

    GgufBytes str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return u64(b.length).raw(b);
    }

    /** Magic, version and both counts. */
    GgufBytes header(int version, long nTensors, long nKv) {
        return raw("GGUF".getBytes(StandardCharsets.US_ASCII)).u32(version).u64(nTensors).u64(nKv);
    }

    /** Key and value type; the caller appends the value. */
    GgufBytes key(String key, GgufValueType type) { return str(key).u32(type.id()); }

    GgufBytes kvString(String key, String value) { return key(key, GgufValueType.STRING).str(value); }
    GgufBytes kvU32(String key, long value) { return key(key, GgufValueType.UINT32).u32(value); }

    /** A tensor info entry; dims in ggml order. */
    GgufBytes tensor(String name, int typeId, long offset, long... dims) {
        str(name).u32(dims.length);
        for (long d : dims) u64(d);
        return u32(typeId).u64(offset);
    }

    GgufBytes padTo(int alignment) {
        while (size % alignment != 0) u8(0);
        return this;
    }

    GgufBytes patchU32(int at, long v) {
        ByteBuffer.wrap(buf, at, 4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v);
        return this;
    }

    GgufBytes patchU64(int at, long v) {
        ByteBuffer.wrap(buf, at, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
        return this;
    }

    byte[] bytes() { return Arrays.copyOf(buf, size); }

    Path write(Path file) throws IOException {
        Files.write(file, bytes());
        return file;
    }
}
