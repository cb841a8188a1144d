package dev.jmoe.testutil;

import dev.jmoe.gguf.GgufArray;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.gguf.GgufValueType;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A GGUF file taken apart into its metadata entries, tensor table and data section, which the structured fuzz target
 * and the corrupt-file tests edit and write back. Unlike GgufWriter it writes whatever it holds (unknown type ids, offsets past the end,
 * mismatched shapes): producing what a writer would refuse is the point.
 */
public final class GgufImage {
    public record Kv(String key, GgufValue value) {}

    public static final class Tensor {
        public String name;
        public long[] dims;
        public int typeId;
        public long offset;

        public Tensor(String name, long[] dims, int typeId, long offset) {
            this.name = name;
            this.dims = dims;
            this.typeId = typeId;
            this.offset = offset;
        }
    }

    public int version = 3;
    public final List<Kv> kvs = new ArrayList<>();
    public final List<Tensor> tensors = new ArrayList<>();
    public long alignment = 32;
    public byte[] data;

    public static GgufImage of(GgufFile f) {
        GgufImage img = new GgufImage();
        img.version = f.version();
        img.alignment = f.alignment();
        f.metadata().forEach((k, v) -> img.kvs.add(new Kv(k, v)));
        for (GgufTensorInfo t : f.tensors()) img.tensors.add(new Tensor(t.name(), t.dims(), t.type().id(), t.offset()));
        MemorySegment m = f.mapping();
        img.data = m.asSlice(f.dataOffset()).toArray(ValueLayout.JAVA_BYTE);
        return img;
    }

    public byte[] toBytes() {
        Out o = new Out();
        o.raw("GGUF".getBytes(StandardCharsets.US_ASCII));
        o.u32(version);
        o.u64(tensors.size());
        o.u64(kvs.size());
        for (Kv kv : kvs) {
            o.str(kv.key());
            o.u32(kv.value().type().id());
            value(o, kv.value().type(), kv.value().value());
        }
        for (Tensor t : tensors) {
            o.str(t.name);
            o.u32(t.dims.length);
            for (long d : t.dims) o.u64(d);
            o.u32(t.typeId);
            o.u64(t.offset);
        }
        long a = alignment > 0 && alignment <= 1 << 16 ? alignment : 32;
        while (o.size() % a != 0) o.u8(0);
        o.raw(data);
        return o.toByteArray();
    }

    /** A copy whose lists, tensor entries and data can be edited without touching this one. */
    public GgufImage copy() {
        GgufImage c = new GgufImage();
        c.version = version;
        c.alignment = alignment;
        c.kvs.addAll(kvs);
        for (Tensor t : tensors) c.tensors.add(new Tensor(t.name, t.dims.clone(), t.typeId, t.offset));
        c.data = data.clone();
        return c;
    }

    /** Sets (or adds) a metadata entry. */
    public GgufImage set(String key, GgufValue v) {
        for (int i = 0; i < kvs.size(); i++) {
            if (kvs.get(i).key().equals(key)) {
                kvs.set(i, new Kv(key, v));
                return this;
            }
        }
        kvs.add(new Kv(key, v));
        return this;
    }

    /** The tensor entry called {@code name}. */
    public Tensor tensor(String name) {
        for (Tensor t : tensors) if (t.name.equals(name)) return t;
        throw new IllegalArgumentException("no tensor " + name);
    }

    /** Writes little-endian float {@code v} at byte {@code at} of tensor {@code name}'s data. */
    public GgufImage putFloat(String name, long at, float v) {
        int p = (int) (tensor(name).offset + at);
        java.nio.ByteBuffer.wrap(data, p, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(v);
        return this;
    }

    /** Reads a file whole. */
    public static GgufImage read(java.nio.file.Path p) throws java.io.IOException {
        try (GgufFile f = GgufFile.open(p)) {
            return of(f);
        }
    }

    public java.nio.file.Path write(java.nio.file.Path p) throws java.io.IOException {
        java.nio.file.Files.write(p, toBytes());
        return p;
    }

    private static void value(Out o, GgufValueType type, Object v) {
        switch (type) {
            case UINT8, INT8 -> o.u8(((Number) v).intValue());
            case UINT16, INT16 -> o.u16(((Number) v).intValue());
            case UINT32, INT32 -> o.u32(((Number) v).intValue());
            case UINT64, INT64 -> o.u64(((Number) v).longValue());
            case FLOAT32 -> o.u32(Float.floatToRawIntBits(((Number) v).floatValue()));
            case FLOAT64 -> o.u64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
            case BOOL -> o.u8((Boolean) v ? 1 : 0);
            case STRING -> o.str((String) v);
            case ARRAY -> {
                GgufArray arr = (GgufArray) v;
                o.u32(arr.elementType().id());
                o.u64(arr.size());
                for (Object e : arr.elements()) value(o, arr.elementType(), e);
            }
        }
    }

    private static final class Out extends ByteArrayOutputStream {
        private final ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u8(int v) { write(v); }
        void u16(int v) { b.clear(); b.putShort((short) v); write(b.array(), 0, 2); }
        void u32(long v) { b.clear(); b.putInt((int) v); write(b.array(), 0, 4); }
        void u64(long v) { b.clear(); b.putLong(v); write(b.array(), 0, 8); }
        void raw(byte[] r) { write(r, 0, r.length); }
        void str(String s) {
            byte[] r = s.getBytes(StandardCharsets.UTF_8);
            u64(r.length);
            raw(r);
        }
    }
}
