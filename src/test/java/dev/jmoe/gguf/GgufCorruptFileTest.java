package dev.jmoe.gguf;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.tensor.GgmlType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kind of damage must end in a GgufFormatException naming the file, the field and its byte offset:
 * never an exception from deep inside, an OutOfMemoryError or a hang.
 */
class GgufCorruptFileTest {

    private static final Pattern OFFSET = Pattern.compile("at byte offset (\\d+)");

    @TempDir Path dir;

    /** Opens {@code bytes} as a file; asserts rejection naming the file, the offset and every fragment. */
    private GgufFormatException rejected(byte[] bytes, long expectedOffset, String... fragments) throws IOException {
        Path p = dir.resolve("bad.gguf");
        Files.write(p, bytes);
        GgufFormatException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                () -> assertThrows(GgufFormatException.class, () -> GgufFile.open(p).close()));
        String m = e.getMessage();
        assertTrue(m.startsWith(p.toString() + ": "), "names the file: " + m);
        Matcher offset = OFFSET.matcher(m);
        assertTrue(offset.find(), "names the byte offset: " + m);
        if (expectedOffset >= 0) assertEquals(expectedOffset, Long.parseLong(offset.group(1)), m);
        for (String f : fragments) assertTrue(m.contains(f), "mentions '" + f + "': " + m);
        return e;
    }

    private static GgufBytes twoTensorFile() {
        GgufBytes b = twoTensorHeader();
        b.padTo(32);
        for (int i = 0; i < 8; i++) b.f32(i);
        b.padTo(32);
        for (int i = 0; i < 34; i++) b.u8(i);
        return b;
    }

    /** Magic through the last tensor info, without padding or data. */
    private static GgufBytes twoTensorHeader() {
        GgufBytes b = new GgufBytes().header(3, 2, 3)
                .kvString("general.architecture", "llama")
                .kvU32("llama.block_count", 1);
        b.key("tokenizer.ggml.tokens", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(3).str("a").str("bc").str("");
        b.tensor("w", GgmlType.F32.id(), 0, 4, 2);
        b.tensor("q", GgmlType.Q8_0.id(), 32, 32);
        return b;
    }

    @Test
    void goodFileOpens() throws IOException {
        Path p = twoTensorFile().write(dir.resolve("good.gguf"));
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.tensors().size());
            assertEquals(34, f.tensorData(f.tensor("q")).byteSize());
        }
    }

    @Test
    void wrongMagic() throws IOException {
        byte[] b = twoTensorFile().bytes();
        b[3] = 'L';
        rejected(b, 0, "magic", "not a GGUF file");
    }

    @Test
    void emptyFile() throws IOException {
        rejected(new byte[0], 0, "magic", "truncated");
    }

    @Test
    void version1IsRejected() throws IOException {
        rejected(twoTensorFile().patchU32(4, 1).bytes(), 4, "version", "version 1");
    }

    @Test
    void unknownVersion() throws IOException {
        rejected(twoTensorFile().patchU32(4, 4).bytes(), 4, "unsupported GGUF version 4");
    }

    @Test
    void bigEndianFile() throws IOException {
        rejected(twoTensorFile().patchU32(4, Integer.reverseBytes(3)).bytes(), 4, "big-endian");
    }

    /** Cutting the file anywhere, header or data, is reported at or before the cut. */
    @Test
    void truncatedAtEveryByte() throws IOException {
        byte[] full = twoTensorFile().bytes();
        int headerEnd = twoTensorHeader().mark();
        for (int cut = 0; cut < full.length; cut++) {
            GgufFormatException e = rejected(Arrays.copyOf(full, cut), -1);
            String m = e.getMessage();
            Matcher offset = OFFSET.matcher(m);
            assertTrue(offset.find());
            if (cut < headerEnd) {
                assertTrue(Long.parseLong(offset.group(1)) <= cut, "cut " + cut + ": " + m);
                assertTrue(m.contains("truncated") || m.contains("cannot fit") || m.contains("exceeds"), "cut " + cut + ": " + m);
            } else {
                assertTrue(m.contains("extends past the end of the file"), "cut " + cut + ": " + m);
            }
        }
    }

    @Test
    void tensorDataPastEndOfFile() throws IOException {
        byte[] full = twoTensorFile().bytes();
        rejected(Arrays.copyOf(full, full.length - 1), -1, "tensor 'q'", "34 bytes", "extends past the end of the file");
    }

    @Test
    void tensorOffsetNotAligned() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        int offsetAt = b.mark() + 8 + 1 + 4 + 8 + 4;
        b.tensor("x", GgmlType.F32.id(), 4, 1);
        b.padTo(32).u64(0);
        rejected(b.bytes(), offsetAt, "tensor 'x' data offset", "not a multiple of the alignment 32");
    }

    @Test
    void unknownValueType() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 2).kvString("a", "b");
        int typeAt = b.mark() + 8 + "weird".length();
        b.str("weird").u32(99).u32(0);
        rejected(b.bytes(), typeAt, "metadata 'weird'", "unknown value type id 99");
    }

    @Test
    void unknownArrayElementType() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("arr", GgufValueType.ARRAY);
        int typeAt = b.mark();
        b.u32(13).u64(0);
        rejected(b.bytes(), typeAt, "metadata 'arr'", "unknown array element type id 13");
    }

    @Test
    void unknownTensorType() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        int typeAt = b.mark() + 8 + "blk.0.attn_q.weight".length() + 4 + 8 * 2;
        b.tensor("blk.0.attn_q.weight", 99, 0, 32, 32);
        rejected(b.padTo(32).bytes(), typeAt, "tensor 'blk.0.attn_q.weight'", "unknown tensor type id 99");
    }

    @Test
    void absurdStringLength() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("general.name", GgufValueType.STRING);
        int lengthAt = b.mark();
        b.u64(1L << 60).raw(new byte[16]);
        rejected(b.bytes(), lengthAt, "metadata 'general.name' length", "string length 1152921504606846976 exceeds");
    }

    @Test
    void absurdKeyLength() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        int lengthAt = b.mark();
        b.u64(-1L).raw(new byte[16]);
        rejected(b.bytes(), lengthAt, "metadata[0] key length", "18446744073709551615");
    }

    @Test
    void absurdArrayCount() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("tokenizer.ggml.scores", GgufValueType.ARRAY).u32(GgufValueType.FLOAT32.id());
        int countAt = b.mark();
        b.u64(1L << 40).f32(1);
        rejected(b.bytes(), countAt, "tokenizer.ggml.scores' element count", "1099511627776 FLOAT32 elements cannot fit");
    }

    @Test
    void absurdStringArrayElementLength() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("tokenizer.ggml.tokens", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(3).str("ok");
        int lengthAt = b.mark();
        b.u64(1L << 50).str("x");
        rejected(b.bytes(), lengthAt, "tokenizer.ggml.tokens'[1] length", "exceeds");
    }

    @Test
    void absurdTensorCount() throws IOException {
        rejected(twoTensorFile().patchU64(8, 1L << 50).bytes(), 8, "tensor count", "1125899906842624 tensor infos cannot fit");
        rejected(twoTensorFile().patchU64(8, -1L).bytes(), 8, "tensor count", "18446744073709551615");
    }

    @Test
    void absurdMetadataCount() throws IOException {
        rejected(twoTensorFile().patchU64(16, 1L << 50).bytes(), 16, "metadata count", "cannot fit");
    }

    @Test
    void duplicateKey() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 2).kvU32("a.b", 1);
        int keyAt = b.mark();
        b.kvU32("a.b", 2);
        rejected(b.bytes(), keyAt, "metadata[1] key", "duplicate metadata key 'a.b'");
    }

    @Test
    void duplicateTensorName() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 2, 0).tensor("t", GgmlType.F32.id(), 0, 8);
        int nameAt = b.mark();
        b.tensor("t", GgmlType.F32.id(), 32, 8).padTo(32).raw(new byte[64]);
        rejected(b.bytes(), nameAt, "tensor[1] name", "duplicate tensor name 't'");
    }

    @Test
    void tooManyDimensions() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        int nDimsAt = b.mark() + 8 + 1;
        b.tensor("t", GgmlType.F32.id(), 0, 1, 1, 1, 1, 1).padTo(32).u32(0);
        rejected(b.bytes(), nDimsAt, "tensor 't' n_dims", "has 5 dimensions");
    }

    @Test
    void zeroDimensions() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        int nDimsAt = b.mark() + 8 + 1;
        b.tensor("t", GgmlType.F32.id(), 0).padTo(32);
        rejected(b.bytes(), nDimsAt, "tensor 't' n_dims", "has 0 dimensions");
    }

    @Test
    void shapeOverflowsLong() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        b.tensor("t", GgmlType.F32.id(), 0, 1L << 40, 1L << 40).padTo(32);
        rejected(b.bytes(), -1, "tensor 't' shape", "more than 2^63 elements");
    }

    @Test
    void dimensionAbove2To63() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        int dimAt = b.mark() + 8 + 1 + 4;
        b.tensor("t", GgmlType.F32.id(), 0, -2L).padTo(32);
        rejected(b.bytes(), dimAt, "tensor 't' dim 0", "18446744073709551614");
    }

    @Test
    void rowNotAMultipleOfTheBlockSize() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 1, 0);
        b.tensor("t", GgmlType.Q8_0.id(), 0, 33, 2).padTo(32).raw(new byte[128]);
        rejected(b.bytes(), -1, "tensor 't'", "row length 33 is not a multiple of the Q8_0 block size 32");
    }

    @Test
    void overlappingTensors() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 2, 0).tensor("a", GgmlType.F32.id(), 0, 16);
        int offsetAt = b.mark() + 8 + 1 + 4 + 8 + 4;
        b.tensor("b", GgmlType.F32.id(), 32, 16).padTo(32).raw(new byte[128]);
        rejected(b.bytes(), offsetAt, "tensor 'b'", "overlaps tensor 'a'");
    }

    @Test
    void invalidBool() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("tokenizer.ggml.add_bos_token", GgufValueType.BOOL);
        int at = b.mark();
        b.u8(2);
        rejected(b.bytes(), at, "add_bos_token", "invalid BOOL byte 2");
    }

    @Test
    void arraysNestedTooDeep() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("deep", GgufValueType.ARRAY);
        for (int i = 0; i < 10_000; i++) b.u32(GgufValueType.ARRAY.id()).u64(1);
        b.u32(GgufValueType.INT32.id()).u64(0);
        rejected(b.bytes(), -1, "metadata 'deep'", "nested more than");
    }

    @Test
    void alignmentNotAPowerOfTwo() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("general.alignment", GgufValueType.UINT32);
        int at = b.mark();
        b.u32(48);
        rejected(b.bytes(), at, "general.alignment", "48 is not a power of two");
        GgufBytes zero = new GgufBytes().header(3, 0, 1).kvU32("general.alignment", 0);
        rejected(zero.bytes(), at, "general.alignment", "not a power of two");
    }

    @Test
    void alignmentOfWrongType() throws IOException {
        GgufBytes b = new GgufBytes().header(3, 0, 1).kvString("general.alignment", "32");
        rejected(b.bytes(), -1, "general.alignment", "must be an integer");
    }

    @Test
    void arrayTooLargeForJava() throws IOException {
        // 2^31 one-byte elements would fit in a (sparse) file but not in a Java array: refuse clearly.
        GgufBytes b = new GgufBytes().header(3, 0, 1);
        b.key("big", GgufValueType.ARRAY).u32(GgufValueType.UINT8.id());
        int countAt = b.mark();
        b.u64(1L << 31);
        Path p = b.write(dir.resolve("bigarray.gguf"));
        try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            raf.setLength(countAt + 8 + (1L << 31));
        }
        GgufFormatException e = assertThrows(GgufFormatException.class, () -> GgufFile.open(p).close());
        assertTrue(e.getMessage().contains("byte offset " + countAt) && e.getMessage().contains("not supported"), e.getMessage());
    }

    @Test
    void missingFileIsAnIOException() {
        assertThrows(java.nio.file.NoSuchFileException.class, () -> GgufFile.open(dir.resolve("absent.gguf")));
        IOException e = assertThrows(IOException.class, () -> GgufFile.open(dir));
        assertTrue(e.getMessage().contains("directory"), e.getMessage());
    }
}
