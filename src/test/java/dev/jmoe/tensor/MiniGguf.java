package dev.jmoe.tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Just enough GGUF reading for the tensor tests to find tensors in the reference models, so these
 * tests do not depend on the gguf package.
 */
final class MiniGguf {
    record Tensor(String name, GgmlType type, long[] dims, MemorySegment data) {
        long count() {
            long n = 1;
            for (long d : dims) n *= d;
            return n;
        }
    }

    final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final MemorySegment file;
    private long pos;

    MiniGguf(Path path, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        }
        if (u32() != 0x46554747) throw new IOException(path + " is not a GGUF file");
        u32(); // version
        long nTensors = u64(), nKv = u64();
        long alignment = 32;
        for (long i = 0; i < nKv; i++) {
            String key = str();
            int type = (int) u32();
            if (key.equals("general.alignment")) alignment = u32();
            else skip(type);
        }
        String[] names = new String[(int) nTensors];
        long[][] dims = new long[(int) nTensors][];
        int[] types = new int[(int) nTensors];
        long[] offs = new long[(int) nTensors];
        for (int i = 0; i < nTensors; i++) {
            names[i] = str();
            dims[i] = new long[(int) u32()];
            for (int d = 0; d < dims[i].length; d++) dims[i][d] = u64();
            types[i] = (int) u32();
            offs[i] = u64();
        }
        long base = (pos + alignment - 1) / alignment * alignment;
        for (int i = 0; i < nTensors; i++) {
            GgmlType t = GgmlType.fromId(types[i]);
            long n = 1;
            for (long d : dims[i]) n *= d;
            tensors.put(names[i], new Tensor(names[i], t, dims[i], file.asSlice(base + offs[i], t.bytesFor(n))));
        }
    }

    private long u32() {
        long v = file.get(Num.LE_INT, pos) & 0xFFFFFFFFL;
        pos += 4;
        return v;
    }

    private long u64() {
        long v = file.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), pos);
        pos += 8;
        return v;
    }

    private String str() {
        int len = (int) u64();
        byte[] b = new byte[len];
        MemorySegment.copy(file, Num.BYTE, pos, b, 0, len);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    private void skip(int type) {
        switch (type) {
            case 0, 1, 7 -> pos += 1;
            case 2, 3 -> pos += 2;
            case 4, 5, 6 -> pos += 4;
            case 10, 11, 12 -> pos += 8;
            case 8 -> str();
            case 9 -> {
                int et = (int) u32();
                long n = u64();
                for (long i = 0; i < n; i++) skip(et);
            }
            default -> throw new IllegalStateException("unknown GGUF value type " + type);
        }
    }
}
