package dev.jmoe.gguf;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.tensor.GgmlType;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Reads hand-assembled files covering every part of the format. */
class GgufReaderTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir Path dir;

    /** One key per scalar type, arrays of every type, nested and empty arrays. */
    private static GgufBytes everyValueType(int version) {
        GgufBytes b = new GgufBytes().header(version, 0, 24);
        b.key("u8", GgufValueType.UINT8).u8(0xFE);
        b.key("i8", GgufValueType.INT8).u8(-5);
        b.key("u16", GgufValueType.UINT16).u16(0xFFFE);
        b.key("i16", GgufValueType.INT16).u16(-300);
        b.key("u32", GgufValueType.UINT32).u32(0xFFFF_FFFEL);
        b.key("i32", GgufValueType.INT32).u32(-70000);
        b.key("f32", GgufValueType.FLOAT32).f32(1.5e-5f);
        b.key("bool_t", GgufValueType.BOOL).u8(1);
        b.key("bool_f", GgufValueType.BOOL).u8(0);
        b.key("str", GgufValueType.STRING).str("héllo ✓ 🙂");
        b.key("u64", GgufValueType.UINT64).u64(-1L);
        b.key("i64", GgufValueType.INT64).u64(-(1L << 40));
        b.key("f64", GgufValueType.FLOAT64).f64(Math.PI);
        b.key("empty_str", GgufValueType.STRING).str("");
        b.key("a_u8", GgufValueType.ARRAY).u32(GgufValueType.UINT8.id()).u64(3).u8(1).u8(2).u8(255);
        b.key("a_i16", GgufValueType.ARRAY).u32(GgufValueType.INT16.id()).u64(2).u16(-1).u16(7);
        b.key("a_u32", GgufValueType.ARRAY).u32(GgufValueType.UINT32.id()).u64(2).u32(5).u32(0xFFFF_FFFFL);
        b.key("a_i32", GgufValueType.ARRAY).u32(GgufValueType.INT32.id()).u64(3).u32(-1).u32(0).u32(123456);
        b.key("a_f32", GgufValueType.ARRAY).u32(GgufValueType.FLOAT32.id()).u64(2).f32(-0.25f).f32(3e30f);
        b.key("a_f64", GgufValueType.ARRAY).u32(GgufValueType.FLOAT64.id()).u64(1).f64(-1e-300);
        b.key("a_bool", GgufValueType.ARRAY).u32(GgufValueType.BOOL.id()).u64(3).u8(1).u8(0).u8(1);
        b.key("a_str", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(3).str("a").str("").str("ç c");
        b.key("a_empty", GgufValueType.ARRAY).u32(GgufValueType.INT64.id()).u64(0);
        // [[1, 2], ["x"], []] : nested arrays each carry their own element type.
        b.key("a_nested", GgufValueType.ARRAY).u32(GgufValueType.ARRAY.id()).u64(3)
                .u32(GgufValueType.INT64.id()).u64(2).u64(1).u64(2)
                .u32(GgufValueType.STRING.id()).u64(1).str("x")
                .u32(GgufValueType.ARRAY.id()).u64(0);
        return b;
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void readsEveryValueTypeInVersions2And3(int version) throws IOException {
        try (GgufFile f = GgufFile.open(everyValueType(version).write(dir.resolve("all.gguf")))) {
            assertEquals(version, f.version());
            assertEquals(24, f.metadata().size());
            assertEquals(List.of("u8", "i8", "u16", "i16"), new ArrayList<>(f.metadata().keySet()).subList(0, 4), "file order kept");
            assertEquals(0xFE, f.getLong("u8"));
            assertEquals(-5, f.getInt("i8"));
            assertEquals(0xFFFE, f.getInt("u16"));
            assertEquals(-300, f.getInt("i16"));
            assertEquals(0xFFFF_FFFEL, f.getLong("u32"));
            assertEquals(-70000, f.getInt("i32"));
            assertEquals(1.5e-5f, (float) f.getDouble("f32"));
            assertTrue(f.getBool("bool_t"));
            assertFalse(f.getBool("bool_f", true));
            assertEquals("héllo ✓ 🙂", f.getString("str"));
            assertEquals(GgufValue.ofU64(-1L), f.require("u64"));
            assertEquals(1.8446744073709552e19, f.getDouble("u64"));
            assertEquals(-(1L << 40), f.getLong("i64"));
            assertEquals(Math.PI, f.getDouble("f64"));
            assertEquals(-(1L << 40), f.getDouble("i64"));
            assertEquals("", f.getString("empty_str"));
            assertArrayEquals(new int[] {1, 2, 255}, f.getIntArray("a_u8"));
            assertArrayEquals(new int[] {-1, 7}, f.getIntArray("a_i16"));
            assertArrayEquals(new long[] {5, 0xFFFF_FFFFL}, f.getArray("a_u32").toLongArray());
            assertArrayEquals(new int[] {-1, 0, 123456}, f.getIntArray("a_i32"));
            assertArrayEquals(new float[] {-0.25f, 3e30f}, f.getFloatArray("a_f32"));
            assertArrayEquals(new float[] {-1, 0, 123456}, f.getFloatArray("a_i32"));
            assertArrayEquals(new double[] {-1e-300}, f.getArray("a_f64").toDoubleArray());
            assertArrayEquals(new boolean[] {true, false, true}, f.getArray("a_bool").toBoolArray());
            assertEquals(List.of("a", "", "ç c"), f.getStringArray("a_str"));
            assertEquals(GgufValueType.INT64, f.getArray("a_empty").elementType());
            assertEquals(0, f.getArray("a_empty").size());

            GgufArray nested = f.getArray("a_nested");
            assertEquals(GgufValueType.ARRAY, nested.elementType());
            assertEquals(3, nested.size());
            assertEquals(GgufArray.ofInt64(1, 2), nested.get(0));
            assertEquals(GgufArray.ofStrings(List.of("x")), nested.get(1));
            assertEquals(GgufValueType.ARRAY, ((GgufArray) nested.get(2)).elementType());
            assertEquals(0, ((GgufArray) nested.get(2)).size());

            assertEquals(32, f.alignment());
            assertTrue(f.tensors().isEmpty());
        }
    }

    @Test
    void typedGettersNameTheFileAndKey() throws IOException {
        Path p = everyValueType(3).write(dir.resolve("getters.gguf"));
        try (GgufFile f = GgufFile.open(p)) {
            GgufException missing = assertThrows(GgufException.class, () -> f.getString("no.such.key"));
            assertTrue(missing.getMessage().contains("no.such.key") && missing.getMessage().contains(p.toString()), missing.getMessage());
            assertTrue(missing.getMessage().contains("missing"), missing.getMessage());

            GgufException wrong = assertThrows(GgufException.class, () -> f.getString("u32"));
            assertTrue(wrong.getMessage().contains("'u32'") && wrong.getMessage().contains("UINT32"), wrong.getMessage());
            assertThrows(GgufException.class, () -> f.getLong("str"));
            assertThrows(GgufException.class, () -> f.getDouble("str"));
            assertThrows(GgufException.class, () -> f.getBool("i8"));
            assertThrows(GgufException.class, () -> f.getStringArray("a_i32"));
            assertThrows(GgufException.class, () -> f.getIntArray("a_f32"));
            assertThrows(GgufException.class, () -> f.getFloatArray("a_str"));
            assertThrows(GgufException.class, () -> f.getIntArray("str"));

            GgufException range = assertThrows(GgufException.class, () -> f.getInt("u32"));
            assertTrue(range.getMessage().contains("'u32'") && range.getMessage().contains("4294967294"), range.getMessage());
            assertThrows(GgufException.class, () -> f.getLong("u64"), "UINT64 max does not fit a long");
            assertThrows(GgufException.class, () -> f.getIntArray("a_u32"), "0xFFFFFFFF does not fit an int");

            // Defaults apply only to missing keys; a present key of the wrong type is still an error.
            assertEquals("d", f.getString("nope", "d"));
            assertEquals(7, f.getInt("nope", 7));
            assertEquals(8L, f.getLong("nope", 8L));
            assertEquals(0.5, f.getDouble("nope", 0.5));
            assertTrue(f.getBool("nope", true));
            assertEquals(-5, f.getInt("i8", 99));
            assertThrows(GgufException.class, () -> f.getInt("str", 1));
            assertTrue(f.has("u8"));
            assertFalse(f.has("nope"));
            assertTrue(f.get("nope").isEmpty());
            assertNull(f.tensor("nope"));
            GgufException t = assertThrows(GgufException.class, () -> f.requireTensor("blk.9.x"));
            assertTrue(t.getMessage().contains("blk.9.x"), t.getMessage());
        }
    }

    @Test
    void tensorsAreAlignedToGeneralAlignment() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 2, 2).kvString("general.architecture", "test").kvU32("general.alignment", 64);
        b.tensor("a", GgmlType.F32.id(), 0, 3);                // 12 bytes, next aligned offset is 64
        b.tensor("b", GgmlType.F32.id(), 64, 2, 2);
        b.padTo(64);
        int data = b.mark();
        b.f32(1).f32(2).f32(3).padTo(64).f32(10).f32(20).f32(30).f32(40);
        try (GgufFile f = GgufFile.open(b.write(dir.resolve("aligned.gguf")))) {
            assertEquals(64, f.alignment());
            assertEquals(data, f.dataOffset());
            assertEquals(0, f.dataOffset() % 64);
            MemorySegment a = f.tensorData(f.tensor("a"));
            MemorySegment bb = f.tensorData(f.tensor("b"));
            assertEquals(12, a.byteSize());
            assertEquals(16, bb.byteSize());
            assertEquals(3f, a.get(F32, 8));
            assertEquals(10f, bb.get(F32, 0));
            assertEquals(40f, bb.get(F32, 12));
            assertEquals(data + 64, f.fileOffset(f.tensor("b")));
            assertArrayEquals(new long[] {2, 2}, f.tensor("b").dims());
            assertEquals(1, f.tensor("b").dim(3));
        }
    }

    @Test
    void defaultAlignmentIs32() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 1).kvString("k", "v");
        b.tensor("t", GgmlType.F16.id(), 0, 4);
        int headerEnd = b.mark();
        b.padTo(32).u16(0x3C00).u16(0).u16(0).u16(0xBC00);
        try (GgufFile f = GgufFile.open(b.write(dir.resolve("default.gguf")))) {
            assertEquals(32, f.alignment());
            assertEquals((headerEnd + 31) / 32 * 32, f.dataOffset());
            MemorySegment t = f.tensorData(f.tensor("t"));
            assertEquals(-1.0f, Float.float16ToFloat(t.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 6)));
        }
    }

    /** A 3 GiB tensor followed by a small one at a data offset beyond 2^31, in a sparse file. */
    @Test
    void tensorsAndOffsetsBeyond2GiB() throws IOException {
        long big = 3L << 30;
        long elements = big / 4;
        GgufBytes b = new GgufBytes().header(3, 2, 1).kvString("general.architecture", "sparse");
        b.tensor("huge", GgmlType.F32.id(), 0, elements / 1024, 1024);
        b.tensor("after", GgmlType.F32.id(), big, 8);
        b.padTo(32);
        long dataOffset = b.mark();
        Path p = b.write(dir.resolve("sparse.gguf"));
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            raf.setLength(dataOffset + big + 32);
            raf.seek(dataOffset + big - 4);
            raf.writeInt(Integer.reverseBytes(Float.floatToIntBits(42.5f)));
            raf.seek(dataOffset + big + 28);
            raf.writeInt(Integer.reverseBytes(Float.floatToIntBits(-7f)));
        }
        try (GgufFile f = GgufFile.open(p)) {
            GgufTensorInfo huge = f.tensor("huge");
            assertEquals(big, huge.byteSize());
            assertEquals(elements, huge.elementCount());
            MemorySegment h = f.tensorData(huge);
            assertEquals(big, h.byteSize());
            assertEquals(42.5f, h.get(F32, big - 4));
            assertEquals(0f, h.get(F32, big - 8));
            GgufTensorInfo after = f.tensor("after");
            assertEquals(big, after.offset());
            assertEquals(dataOffset + big, f.fileOffset(after));
            assertEquals(-7f, f.tensorData(after).get(F32, 28));
        }
    }

    @Test
    void largeVocabularyLoadsQuickly() throws IOException {
        int n = 150_000;
        GgufBytes b = new GgufBytes().header(3, 0, 3);
        b.key("tokenizer.ggml.tokens", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(n);
        for (int i = 0; i < n; i++) b.str("tok_" + i + "_ĠĊ");
        b.key("tokenizer.ggml.scores", GgufValueType.ARRAY).u32(GgufValueType.FLOAT32.id()).u64(n);
        for (int i = 0; i < n; i++) b.f32(-i);
        b.key("tokenizer.ggml.token_type", GgufValueType.ARRAY).u32(GgufValueType.INT32.id()).u64(n);
        for (int i = 0; i < n; i++) b.u32(i % 6);
        Path p = b.write(dir.resolve("vocab.gguf"));
        GgufFile.open(p).close(); // warm-up: class loading and JIT are not what this measures
        long t0 = System.nanoTime();
        try (GgufFile f = GgufFile.open(p)) {
            List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
            float[] scores = f.getFloatArray("tokenizer.ggml.scores");
            int[] types = f.getIntArray("tokenizer.ggml.token_type");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(n, tokens.size());
            assertEquals("tok_149999_ĠĊ", tokens.get(n - 1));
            assertEquals(-149999f, scores[n - 1]);
            assertEquals(149999 % 6, types[n - 1]);
            assertTrue(ms < 1000, "150k-token vocabulary took " + ms + " ms");
        }
    }

    @Test
    void closedFileRefusesData() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        b.tensor("t", GgmlType.F32.id(), 0, 1);
        b.padTo(32).f32(5f);
        GgufFile f = GgufFile.open(b.write(dir.resolve("closed.gguf")));
        MemorySegment before = f.tensorData(f.tensor("t"));
        assertEquals(5f, before.get(F32, 0));
        f.close();
        f.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> f.tensorData(f.tensor("t")));
        assertThrows(IllegalStateException.class, () -> before.get(F32, 0));
    }

    @Test
    void foreignTensorInfoIsRejected() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        b.tensor("t", GgmlType.F32.id(), 0, 1);
        b.padTo(32).f32(5f);
        try (GgufFile f = GgufFile.open(b.write(dir.resolve("own.gguf")))) {
            GgufTensorInfo other = GgufTensorInfo.of("t", GgmlType.F32, new long[] {1}, 32);
            assertThrows(IllegalArgumentException.class, () -> f.tensorData(other));
        }
    }

    @Test
    void valuesPrintReadably() {
        assertEquals("\"llama\"", GgufValue.ofString("llama").toString());
        assertEquals("4294967295", GgufValue.ofU32(0xFFFF_FFFFL).toString());
        assertEquals("18446744073709551615", GgufValue.ofU64(-1).toString());
        assertEquals("255", GgufValue.ofU8(255).toString());
        assertEquals("-3", GgufValue.ofI8(-3).toString());
        assertEquals("true", GgufValue.ofBool(true).toString());
        assertEquals("\"a\\nb\\\"\"", GgufValue.ofString("a\nb\"").toString());
        String ints = GgufValue.ofI32Array(new int[] {1, 2, 3, 4, 5, 6, 7, 8}).toString();
        assertEquals("[INT32 x8: 1, 2, 3, 4, 5, ...]", ints);
        assertEquals("[STRING x2: \"x\", \"y\"]", GgufValue.ofStringArray(List.of("x", "y")).toString());
        assertEquals("[ARRAY x1: [FLOAT32 x1: 0.5]]", GgufValue.ofArray(GgufArray.ofArrays(GgufArray.ofFloat32(0.5f))).toString());
        String longString = GgufValue.ofString("x".repeat(1000)).toString();
        assertTrue(longString.length() < 100 && longString.contains("1000 chars"), longString);
    }

    @Test
    void valuesValidateTheirJavaType() {
        assertThrows(IllegalArgumentException.class, () -> new GgufValue(GgufValueType.UINT32, 5L));
        assertThrows(IllegalArgumentException.class, () -> new GgufValue(GgufValueType.STRING, 5));
        assertThrows(IllegalArgumentException.class, () -> GgufValue.ofU8(256));
        assertThrows(IllegalArgumentException.class, () -> GgufValue.ofU32(-1));
        assertThrows(IllegalArgumentException.class, () -> GgufValue.ofArray(GgufValueType.FLOAT32, List.of(1f, 2.0)));
        assertThrows(IllegalArgumentException.class, () -> GgufValue.ofStringArray(java.util.Arrays.asList("a", null)));
        GgufValue v = GgufValue.ofArray(GgufValueType.UINT16, List.of((short) -1, (short) 2));
        assertArrayEquals(new int[] {65535, 2}, v.asArray().toIntArray());
        assertEquals(GgufValue.ofArray(GgufValueType.INT32, List.of(1, 2)), GgufValue.ofI32Array(1, 2));
    }
}
