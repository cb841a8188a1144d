package dev.jmoe.gguf;

import dev.jmoe.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses a GGUF header out of a mapped file. Every read is bounds-checked against the file size first and
 * every count is checked against the bytes left before anything is allocated, so a corrupt or hostile file
 * ends in a {@link GgufFormatException} naming the field and its byte offset, never in an
 * IndexOutOfBounds, an OutOfMemoryError or a hang.
 */
final class GgufParser {
    /** "GGUF" read as a little-endian u32. */
    static final int MAGIC = 0x46554747;
    static final long DEFAULT_ALIGNMENT = 32;
    static final String ALIGNMENT_KEY = "general.alignment";
    /** Deeper nesting has no use and would let a small file exhaust the stack. */
    static final int MAX_NESTING = 16;
    private static final int INITIAL_CAPACITY = 1 << 16;
    /** Smallest key/value entry: u64 key length, empty key, u32 type, 1-byte value. */
    private static final int MIN_KV_BYTES = 8 + 4 + 1;
    /** Smallest tensor info: u64 name length, empty name, u32 n_dims, one u64 dim, u32 type, u64 offset. */
    private static final int MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    record Result(int version, long alignment, long dataOffset, Map<String, GgufValue> metadata, List<GgufTensorInfo> tensors) {}

    private final MemorySegment seg;
    private final long size;
    private final String file;
    private long pos;
    private byte[] scratch = new byte[256];

    GgufParser(MemorySegment seg, String file) {
        this.seg = seg;
        this.size = seg.byteSize();
        this.file = file;
    }

    Result parse() throws GgufFormatException {
        long magicPos = pos;
        int magic = u32("magic");
        if (magic != MAGIC) {
            throw error(magicPos, "magic", "expected \"GGUF\" (47 47 55 46) but found "
                    + String.format("%02x %02x %02x %02x", magic & 0xff, (magic >>> 8) & 0xff, (magic >>> 16) & 0xff, magic >>> 24)
                    + "; this is not a GGUF file");
        }
        long versionPos = pos;
        int version = u32("version");
        if (version != 2 && version != 3) {
            String why;
            if (version == 1) why = "GGUF version 1 (32-bit counts) is not supported; re-convert the model with a current llama.cpp";
            else if (version == Integer.reverseBytes(2) || version == Integer.reverseBytes(3)) why = "big-endian GGUF files are not supported";
            else why = "unsupported GGUF version " + Integer.toUnsignedString(version) + "; only versions 2 and 3 can be read";
            throw error(versionPos, "version", why);
        }
        long nTensorsPos = pos;
        long nTensors = u64("tensor count");
        long nKvPos = pos;
        long nKv = u64("metadata count");
        checkCount(nTensorsPos, "tensor count", nTensors, MIN_TENSOR_INFO_BYTES, "tensor infos");
        checkCount(nKvPos, "metadata count", nKv, MIN_KV_BYTES, "metadata entries");

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        Map<String, Long> valueOffsets = new HashMap<>();
        for (long i = 0; i < nKv; i++) {
            long keyPos = pos;
            String key = string("metadata[" + i + "] key");
            if (metadata.containsKey(key)) throw error(keyPos, "metadata[" + i + "] key", "duplicate metadata key '" + key + "'");
            String field = "metadata '" + key + "'";
            long typePos = pos;
            int typeId = u32(field + " value type");
            GgufValueType type = GgufValueType.fromId(typeId);
            if (type == null) throw error(typePos, field + " value type", "unknown value type id " + Integer.toUnsignedString(typeId));
            valueOffsets.put(key, pos);
            metadata.put(key, value(type, field));
        }

        long alignment = alignment(metadata.get(ALIGNMENT_KEY), valueOffsets.getOrDefault(ALIGNMENT_KEY, 0L));

        if (nTensors > Integer.MAX_VALUE - 8) {
            throw error(nTensorsPos, "tensor count", "more than " + (Integer.MAX_VALUE - 8) + " tensors are not supported");
        }
        // Grown as entries are read, not sized from the count: a corrupt count in a huge file must not allocate gigabytes.
        List<GgufTensorInfo> tensors = new ArrayList<>();
        long[] offsetFieldPos = new long[(int) Math.min(nTensors, 1024)];
        Map<String, Integer> names = new HashMap<>();
        for (int i = 0; i < nTensors; i++) {
            if (i == offsetFieldPos.length) offsetFieldPos = Arrays.copyOf(offsetFieldPos, (int) Math.min(nTensors, 2L * i));
            long namePos = pos;
            String name = string("tensor[" + i + "] name");
            if (names.putIfAbsent(name, i) != null) throw error(namePos, "tensor[" + i + "] name", "duplicate tensor name '" + name + "'");
            String field = "tensor '" + name + "'";
            long nDimsPos = pos;
            int nDims = u32(field + " n_dims");
            if (nDims <= 0 || nDims > GgufTensorInfo.MAX_DIMS) {
                throw error(nDimsPos, field + " n_dims", "has " + Integer.toUnsignedString(nDims)
                        + " dimensions; GGUF allows 1 to " + GgufTensorInfo.MAX_DIMS);
            }
            long[] dims = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                long dimPos = pos;
                dims[d] = u64(field + " dim " + d);
                if (dims[d] < 0) throw error(dimPos, field + " dim " + d, "absurd dimension " + Long.toUnsignedString(dims[d]));
            }
            long typePos = pos;
            int typeId = u32(field + " type");
            GgmlType type = GgmlType.fromId(typeId);
            if (type == null) throw error(typePos, field + " type", "unknown tensor type id " + Integer.toUnsignedString(typeId));
            offsetFieldPos[i] = pos;
            long offset = u64(field + " data offset");
            long byteSize;
            try {
                byteSize = GgufTensorInfo.byteSizeOf(name, type, dims);
            } catch (IllegalArgumentException e) {
                String why = e.getMessage().startsWith(field + " ") ? e.getMessage().substring(field.length() + 1) : e.getMessage();
                throw error(nDimsPos, field + " shape", why);
            }
            if (offset < 0) throw error(offsetFieldPos[i], field + " data offset", "absurd offset " + Long.toUnsignedString(offset));
            if (offset % alignment != 0) {
                throw error(offsetFieldPos[i], field + " data offset", "offset " + offset + " is not a multiple of the alignment " + alignment);
            }
            tensors.add(new GgufTensorInfo(name, dims, type, offset, byteSize));
        }

        long dataOffset = alignUp(pos, alignment);
        checkTensorBounds(tensors, offsetFieldPos, dataOffset);
        return new Result(version, alignment, dataOffset, metadata, tensors);
    }

    private long alignment(GgufValue v, long valuePos) throws GgufFormatException {
        if (v == null) return DEFAULT_ALIGNMENT;
        String field = "metadata '" + ALIGNMENT_KEY + "'";
        if (!v.type().isInteger()) throw error(valuePos, field, "must be an integer (UINT32) but has type " + v.type());
        long a = v.type() == GgufValueType.UINT64 && (Long) v.value() < 0 ? -1 : v.asLong();
        if (a <= 0 || (a & (a - 1)) != 0) throw error(valuePos, field, "alignment " + v + " is not a power of two");
        return a;
    }

    private void checkTensorBounds(List<GgufTensorInfo> tensors, long[] offsetFieldPos, long dataOffset) throws GgufFormatException {
        long available = size - dataOffset;
        for (int i = 0; i < tensors.size(); i++) {
            GgufTensorInfo t = tensors.get(i);
            if (available < t.byteSize() || t.offset() > available - t.byteSize()) {
                throw error(offsetFieldPos[i], "tensor '" + t.name() + "' data offset", "data of " + t.byteSize()
                        + " bytes at data offset " + t.offset() + " (file offset " + (dataOffset + t.offset())
                        + ") extends past the end of the file (size " + size + ", data section starts at " + dataOffset + ")");
            }
        }
        Integer[] order = new Integer[tensors.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingLong(i -> tensors.get(i).offset()));
        for (int k = 1; k < order.length; k++) {
            GgufTensorInfo prev = tensors.get(order[k - 1]);
            GgufTensorInfo cur = tensors.get(order[k]);
            if (cur.byteSize() > 0 && prev.offset() + prev.byteSize() > cur.offset()) {
                throw error(offsetFieldPos[order[k]], "tensor '" + cur.name() + "' data offset", "data at offset " + cur.offset()
                        + " overlaps tensor '" + prev.name() + "' (offset " + prev.offset() + ", " + prev.byteSize() + " bytes)");
            }
        }
    }

    static long alignUp(long v, long alignment) {
        long r = v % alignment;
        return r == 0 ? v : v + (alignment - r);
    }

    private GgufValue value(GgufValueType type, String field) throws GgufFormatException {
        return switch (type) {
            case UINT8, INT8 -> { need(1, field); yield new GgufValue(type, seg.get(ValueLayout.JAVA_BYTE, pos++)); }
            case UINT16, INT16 -> { need(2, field); short v = seg.get(I16, pos); pos += 2; yield new GgufValue(type, v); }
            case UINT32, INT32 -> new GgufValue(type, u32(field));
            case UINT64, INT64 -> new GgufValue(type, u64(field));
            case FLOAT32 -> { need(4, field); float v = seg.get(F32, pos); pos += 4; yield new GgufValue(type, v); }
            case FLOAT64 -> { need(8, field); double v = seg.get(F64, pos); pos += 8; yield new GgufValue(type, v); }
            case BOOL -> { need(1, field); yield new GgufValue(type, bool(pos++, field)); }
            case STRING -> new GgufValue(type, string(field));
            case ARRAY -> new GgufValue(type, array(field, 1));
        };
    }

    private boolean bool(long at, String field) throws GgufFormatException {
        byte b = seg.get(ValueLayout.JAVA_BYTE, at);
        if (b != 0 && b != 1) throw error(at, field, "invalid BOOL byte " + (b & 0xff) + " (must be 0 or 1)");
        return b == 1;
    }

    private GgufArray array(String field, int depth) throws GgufFormatException {
        if (depth > MAX_NESTING) throw error(pos, field, "arrays nested more than " + MAX_NESTING + " deep");
        long typePos = pos;
        int typeId = u32(field + " element type");
        GgufValueType type = GgufValueType.fromId(typeId);
        if (type == null) throw error(typePos, field + " element type", "unknown array element type id " + Integer.toUnsignedString(typeId));
        long countPos = pos;
        long count = u64(field + " element count");
        checkCount(countPos, field + " element count", count, type.minEncodedSize(), type + " elements");
        if (count > Integer.MAX_VALUE - 8) {
            throw error(countPos, field + " element count", "arrays of more than " + (Integer.MAX_VALUE - 8) + " elements are not supported");
        }
        int n = (int) count;
        Object backing = switch (type) {
            case UINT8, INT8 -> { byte[] a = new byte[n]; MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, a, 0, n); pos += n; yield a; }
            case UINT16, INT16 -> { short[] a = new short[n]; MemorySegment.copy(seg, I16, pos, a, 0, n); pos += 2L * n; yield a; }
            case UINT32, INT32 -> { int[] a = new int[n]; MemorySegment.copy(seg, I32, pos, a, 0, n); pos += 4L * n; yield a; }
            case UINT64, INT64 -> { long[] a = new long[n]; MemorySegment.copy(seg, I64, pos, a, 0, n); pos += 8L * n; yield a; }
            case FLOAT32 -> { float[] a = new float[n]; MemorySegment.copy(seg, F32, pos, a, 0, n); pos += 4L * n; yield a; }
            case FLOAT64 -> { double[] a = new double[n]; MemorySegment.copy(seg, F64, pos, a, 0, n); pos += 8L * n; yield a; }
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) a[i] = bool(pos + i, field + "[" + i + "]");
                pos += n;
                yield a;
            }
            case STRING -> {
                // Grown while reading: each String costs far more heap than its 8-byte minimum in the file,
                // so a corrupt count must not size the array up front.
                String[] a = new String[Math.min(n, INITIAL_CAPACITY)];
                for (int i = 0; i < n; i++) {
                    // Field names are built only on failure: vocabularies hold 100k+ strings.
                    if (size - pos < 8) throw truncated(pos, 8, field + "[" + i + "] length");
                    if (i == a.length) a = Arrays.copyOf(a, (int) Math.min(n, 2L * i));
                    a[i] = stringBody(field, i);
                }
                yield a;
            }
            case ARRAY -> {
                GgufArray[] a = new GgufArray[Math.min(n, INITIAL_CAPACITY)];
                for (int i = 0; i < n; i++) {
                    if (i == a.length) a = Arrays.copyOf(a, (int) Math.min(n, 2L * i));
                    a[i] = array(field + "[" + i + "]", depth + 1);
                }
                yield a;
            }
        };
        return GgufArray.wrap(type, backing);
    }

    private String string(String field) throws GgufFormatException {
        need(8, field + " length");
        return stringBody(field, -1);
    }

    /** Reads a string whose u64 length at {@code pos} is known to be in the file. */
    private String stringBody(String field, int index) throws GgufFormatException {
        long lengthPos = pos;
        long length = seg.get(I64, pos);
        pos += 8;
        long remaining = size - pos;
        if (length < 0 || length > remaining) {
            String f = (index >= 0 ? field + "[" + index + "]" : field) + " length";
            throw error(lengthPos, f, "string length " + Long.toUnsignedString(length) + " exceeds the " + remaining
                    + " bytes left in the file (size " + size + ")");
        }
        if (length > Integer.MAX_VALUE - 8) {
            String f = (index >= 0 ? field + "[" + index + "]" : field) + " length";
            throw error(lengthPos, f, "strings longer than " + (Integer.MAX_VALUE - 8) + " bytes are not supported");
        }
        int n = (int) length;
        if (n == 0) return "";
        if (scratch.length < n) scratch = new byte[Math.max(n, scratch.length * 2)];
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, scratch, 0, n);
        pos += n;
        return new String(scratch, 0, n, StandardCharsets.UTF_8);
    }

    private void checkCount(long countPos, String field, long count, int minBytesEach, String what) throws GgufFormatException {
        long remaining = size - pos;
        if (Long.compareUnsigned(count, remaining / minBytesEach) > 0) {
            throw error(countPos, field, Long.toUnsignedString(count) + " " + what + " cannot fit in the " + remaining
                    + " bytes left in the file (each takes at least " + minBytesEach + " bytes): the file is truncated or the count corrupt");
        }
    }

    private int u32(String field) throws GgufFormatException {
        need(4, field);
        int v = seg.get(I32, pos);
        pos += 4;
        return v;
    }

    private long u64(String field) throws GgufFormatException {
        need(8, field);
        long v = seg.get(I64, pos);
        pos += 8;
        return v;
    }

    private void need(long n, String field) throws GgufFormatException {
        if (size - pos < n) throw truncated(pos, n, field);
    }

    private GgufFormatException truncated(long at, long n, String field) {
        return error(at, field, "file truncated: needs " + n + " bytes but only " + (size - at) + " remain (file size " + size + ")");
    }

    private GgufFormatException error(long at, String field, String problem) {
        return new GgufFormatException(file + ": " + field + " at byte offset " + at + ": " + problem);
    }
}
