package dev.jmoe.gguf;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.tensor.GgmlType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir Path dir;

    private static MemorySegment randomBytes(long n, long seed) {
        byte[] b = new byte[(int) n];
        new Random(seed).nextBytes(b);
        return MemorySegment.ofArray(b);
    }

    private static GgufWriter everyValueType() {
        return new GgufWriter()
                .putString("general.architecture", "test")
                .putU8("u8", 250).putI8("i8", -100)
                .putU16("u16", 65000).putI16("i16", -30000)
                .putU32("u32", 4_000_000_000L).putI32("i32", Integer.MIN_VALUE)
                .putU64("u64", -2L).putI64("i64", Long.MIN_VALUE)
                .putF32("f32", Float.MIN_VALUE).putF64("f64", -Double.MAX_VALUE)
                .putBool("t", true).putBool("f", false)
                .putString("unicode", "Ġhello ✓ 𝄞 \u0000 end")
                .putString("empty", "")
                .putStringArray("strings", List.of("a", "", "ß", "🙂"))
                .putI32Array("ints", 1, -2, 3)
                .putF32Array("floats", 0.5f, Float.NaN, Float.NEGATIVE_INFINITY)
                .put("bytes", GgufValue.ofArray(GgufValueType.UINT8, List.of((byte) 1, (byte) -1)))
                .put("i8s", GgufValue.ofArray(GgufValueType.INT8, List.of((byte) -7)))
                .put("u16s", GgufValue.ofArray(GgufValueType.UINT16, List.of((short) -1, (short) 9)))
                .put("i16s", GgufValue.ofArray(GgufValueType.INT16, List.of((short) -300)))
                .put("u32s", GgufValue.ofArray(GgufArray.ofUint32(-1, 0)))
                .put("u64s", GgufValue.ofArray(GgufValueType.UINT64, List.of(-1L, 5L)))
                .put("i64s", GgufValue.ofArray(GgufArray.ofInt64(Long.MAX_VALUE, -1)))
                .put("f64s", GgufValue.ofArray(GgufArray.ofFloat64(1e300, -0.0)))
                .put("bools", GgufValue.ofArray(GgufArray.ofBool(true, false, true)))
                .put("empty_array", GgufValue.ofArray(GgufValueType.FLOAT32, List.of()))
                .put("nested", GgufValue.ofArray(GgufArray.ofArrays(
                        GgufArray.ofInt32(1, 2),
                        GgufArray.ofStrings(List.of("x", "y")),
                        GgufArray.ofArrays(GgufArray.ofFloat32(3f)),
                        GgufArray.ofArrays())));
    }

    @Test
    void roundTripsEveryValueTypeAndTensor() throws IOException {
        GgufWriter w = everyValueType();
        MemorySegment f32 = randomBytes(4L * 3 * 5, 1);
        MemorySegment q8 = randomBytes(GgmlType.Q8_0.bytesFor(64 * 2 * 3), 2);
        MemorySegment q4k = randomBytes(GgmlType.Q4_K.bytesFor(256 * 2), 3);
        float[] heapFloats = {1f, -2f, 3.5f};
        int[] suppliedCalls = {0};
        w.addTensor("a.f32", GgmlType.F32, new long[] {3, 5}, f32);
        w.addTensor("b.q8_0", GgmlType.Q8_0, new long[] {64, 2, 3}, () -> { suppliedCalls[0]++; return q8; });
        w.addTensor("c.filled", GgmlType.F32, new long[] {7}, (GgufWriter.TensorFiller) dst -> {
            for (int i = 0; i < 7; i++) dst.set(F32, 4L * i, i * 10f);
        });
        w.addTensor("d.q4_k", GgmlType.Q4_K, new long[] {256, 1, 2, 1}, q4k);
        w.addTensor("e.heapfloats", GgmlType.F32, new long[] {3}, MemorySegment.ofArray(heapFloats));
        w.addTensor("f.empty", GgmlType.F16, new long[] {0, 4}, MemorySegment.ofArray(new byte[0]));
        assertEquals(0, suppliedCalls[0], "suppliers are called only while writing");

        Path p = dir.resolve("all.gguf");
        w.write(p);
        assertEquals(1, suppliedCalls[0]);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(3, f.version());
            assertEquals(w.metadata(), f.metadata());
            assertEquals(List.copyOf(w.metadata().keySet()), List.copyOf(f.metadata().keySet()));
            assertEquals(w.tensorInfos(), f.tensors());
            assertEquals(-1, f.tensorData(f.tensor("a.f32")).mismatch(f32));
            assertEquals(-1, f.tensorData(f.tensor("b.q8_0")).mismatch(q8));
            assertEquals(-1, f.tensorData(f.tensor("d.q4_k")).mismatch(q4k));
            MemorySegment filled = f.tensorData(f.tensor("c.filled"));
            for (int i = 0; i < 7; i++) assertEquals(i * 10f, filled.get(F32, 4L * i));
            assertEquals(-2f, f.tensorData(f.tensor("e.heapfloats")).get(F32, 4));
            assertEquals(0, f.tensorData(f.tensor("f.empty")).byteSize());
            for (GgufTensorInfo t : f.tensors()) assertEquals(0, t.offset() % 32, t.name());
            assertEquals(0, f.fileSize() % 32, "data padded to the alignment like llama.cpp");
            assertEquals("Ġhello ✓ 𝄞 \u0000 end", f.getString("unicode"));
            assertTrue(Float.isNaN(f.getFloatArray("floats")[1]));
            assertEquals("[ARRAY x4: [INT32 x2: 1, 2], [STRING x2: \"x\", \"y\"], [ARRAY x1: [FLOAT32 x1: 3.0]], [ARRAY x0]]",
                    f.require("nested").toString());
        }
    }

    @Test
    void honoursGeneralAlignment() throws IOException {
        for (long alignment : new long[] {1, 8, 64, 4096}) {
            GgufWriter w = new GgufWriter().putU32("general.alignment", alignment);
            w.addTensor("x", GgmlType.F32, new long[] {3}, randomBytes(12, 4));
            w.addTensor("y", GgmlType.F32, new long[] {5}, randomBytes(20, 5));
            Path p = dir.resolve("a" + alignment + ".gguf");
            w.write(p);
            try (GgufFile f = GgufFile.open(p)) {
                assertEquals(alignment, f.alignment());
                assertEquals(0, f.dataOffset() % alignment);
                assertEquals(GgufParser.alignUp(12, alignment), f.tensor("y").offset());
                assertEquals(-1, f.tensorData(f.tensor("y")).mismatch(randomBytes(20, 5)));
            }
        }
    }

    @Test
    void metadataOnlyFile() throws IOException {
        Path p = dir.resolve("meta.gguf");
        new GgufWriter().putString("k", "v").write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals("v", f.getString("k"));
            assertTrue(f.tensors().isEmpty());
        }
    }

    @Test
    void putReplacesInPlaceAndRemoveDeletes() {
        GgufWriter w = new GgufWriter().putU32("a", 1).putU32("b", 2).putU32("a", 3).remove("b").putU32("c", 4);
        assertEquals(List.of("a", "c"), List.copyOf(w.metadata().keySet()));
        assertEquals(3, w.metadata().get("a").asLong());
    }

    @Test
    void rejectsInvalidInput() {
        GgufWriter w = new GgufWriter();
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("blk.0.w", GgmlType.Q8_0, new long[] {32, 2}, randomBytes(67, 1)));
        assertTrue(size.getMessage().contains("blk.0.w") && size.getMessage().contains("68"), size.getMessage());
        IllegalArgumentException block = assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("q", GgmlType.Q4_0, new long[] {33}, randomBytes(18, 1)));
        assertTrue(block.getMessage().contains("'q'") && block.getMessage().contains("block size 32"), block.getMessage());
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("t", GgmlType.F32, new long[] {1, 1, 1, 1, 1}, randomBytes(4, 1)));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("t", GgmlType.F32, new long[] {}, randomBytes(4, 1)));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("t", GgmlType.F32, new long[] {-1}, randomBytes(4, 1)));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("x".repeat(64), GgmlType.F32, new long[] {1}, randomBytes(4, 1)));
        assertThrows(IllegalArgumentException.class, () -> w.addTensor("", GgmlType.F32, new long[] {1}, randomBytes(4, 1)));
        w.addTensor("t", GgmlType.F32, new long[] {1}, randomBytes(4, 1));
        IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("t", GgmlType.F32, new long[] {1}, randomBytes(4, 1)));
        assertTrue(dup.getMessage().contains("duplicate tensor name 't'"), dup.getMessage());
        assertThrows(IllegalArgumentException.class, () -> w.putU32("general.alignment", 48));
        assertThrows(IllegalArgumentException.class, () -> w.putU32("general.alignment", 0));
        assertThrows(IllegalArgumentException.class, () -> w.putI32("general.alignment", 64));
        assertThrows(IllegalArgumentException.class, () -> w.putString("", "empty key"));
        assertThrows(IllegalArgumentException.class, () -> w.putU8("k", 256));
        assertEquals(32, w.alignment());
    }

    /** A write that fails half-way leaves the existing file intact and no temporary file behind. */
    @Test
    void failedWriteKeepsExistingFile() throws IOException {
        Path p = dir.resolve("model.gguf");
        new GgufWriter().putString("general.name", "original").write(p);
        byte[] before = Files.readAllBytes(p);

        GgufWriter failing = new GgufWriter().putString("general.name", "replacement");
        failing.addTensor("ok", GgmlType.F32, new long[] {4}, randomBytes(16, 1));
        failing.addTensor("boom", GgmlType.F32, new long[] {4}, () -> { throw new UncheckedIOException(new IOException("disk on fire")); });
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> failing.write(p));
        assertEquals("disk on fire", e.getCause().getMessage());
        assertArrayEquals(before, Files.readAllBytes(p));

        GgufWriter wrongSize = new GgufWriter();
        wrongSize.addTensor("short", GgmlType.F32, new long[] {4}, () -> randomBytes(15, 1));
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class, () -> wrongSize.write(p));
        assertTrue(size.getMessage().contains("'short'") && size.getMessage().contains("15 bytes"), size.getMessage());
        assertArrayEquals(before, Files.readAllBytes(p));

        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(p), files.toList(), "no temporary files left behind");
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals("original", f.getString("general.name"));
        }
    }

    @Test
    void overwritesExistingFile() throws IOException {
        Path p = dir.resolve("m.gguf");
        new GgufWriter().putU32("v", 1).write(p);
        new GgufWriter().putU32("v", 2).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.getInt("v"));
        }
    }

    /** Re-writing a llama.cpp file reproduces its metadata and tensors; with the same layout, every byte. */
    @Test
    void rewritesReferenceModelsIdentically() throws IOException {
        for (Path model : GgufReferenceModelsTest.referenceModels()) {
            Path copy = dir.resolve(model.getFileName());
            try (GgufFile src = GgufFile.open(model)) {
                GgufWriter.copyOf(src).write(copy);
                try (GgufFile dst = GgufFile.open(copy)) {
                    assertEquals(src.metadata(), dst.metadata(), model.toString());
                    assertEquals(src.tensors(), dst.tensors(), model.toString());
                    for (GgufTensorInfo t : src.tensors()) {
                        assertEquals(-1, src.tensorData(t).mismatch(dst.tensorData(dst.tensor(t.name()))), t.name());
                    }
                }
            }
            assertEquals(-1, Files.mismatch(model, copy), model + " re-written byte for byte");
        }
    }

    @Test
    void tensorInfosPlanTheLayout() {
        GgufWriter w = new GgufWriter();
        w.addTensor("a", GgmlType.Q8_0, new long[] {32}, randomBytes(34, 1));
        w.addTensor("b", GgmlType.F16, new long[] {3}, randomBytes(6, 1));
        w.addTensor("c", GgmlType.F32, new long[] {1}, randomBytes(4, 1));
        assertEquals(List.of(0L, 64L, 96L), w.tensorInfos().stream().map(GgufTensorInfo::offset).toList());
        w.putU32("general.alignment", 128);
        assertEquals(List.of(0L, 128L, 256L), w.tensorInfos().stream().map(GgufTensorInfo::offset).toList());
    }

    @Test
    void fillerWritesStraightIntoTheFile() throws IOException {
        GgufWriter w = new GgufWriter();
        long n = 3 << 20; // several staging buffers' worth of floats
        w.addTensor("big", GgmlType.F32, new long[] {1024, n / 1024}, (GgufWriter.TensorFiller) dst -> {
            for (long i = 0; i < n; i += 4096) dst.set(F32, 4 * i, i);
        });
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(4 * n);
            for (long i = 0; i < n; i++) src.set(F32, 4 * i, -i);
            w.addTensor("copied", GgmlType.F32, new long[] {n}, src);
            Path p = dir.resolve("big.gguf");
            w.write(p);
            try (GgufFile f = GgufFile.open(p)) {
                MemorySegment big = f.tensorData(f.tensor("big"));
                assertEquals(4096f * 5, big.get(F32, 4 * 4096 * 5));
                assertEquals(0f, big.get(F32, 4 * 4097));
                assertEquals(-1, f.tensorData(f.tensor("copied")).mismatch(src));
            }
        }
    }
}
