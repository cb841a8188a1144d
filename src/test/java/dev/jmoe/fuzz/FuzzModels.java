package dev.jmoe.fuzz;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The smallest real models the GGUF targets start from: written by {@link RandomModel} (so their tensors, metadata
 * and byte-level BPE vocabulary are what a real file holds), a few tens of kilobytes each so that the fuzzer's
 * mutations land on headers as often as on data.
 */
final class FuzzModels {
    private FuzzModels() {}

    private static Map<String, byte[]> models;

    static synchronized Map<String, byte[]> all() {
        if (models == null) {
            Map<String, byte[]> m = new LinkedHashMap<>();
            m.put("qwen2moe", write(new RandomModel.Shape("qwen2moe", 2, 32, 2, 1, 16, 4, 2, 32, 32, 258, 64, 1e6f, 1e-6f, false, 1), FileType.Q8_0));
            m.put("mixtral", write(new RandomModel.Shape("llama", 2, 32, 2, 1, 16, 4, 2, 32, 0, 258, 64, 1e4f, 1e-5f, true, 2), FileType.Q4_0));
            m.put("olmoe", write(new RandomModel.Shape("olmoe", 1, 32, 2, 2, 16, 4, 2, 32, 0, 258, 64, 1e4f, 1e-5f, true, 3), FileType.F16));
            m.put("qwen3moe", write(new RandomModel.Shape("qwen3moe", 1, 32, 2, 1, 16, 4, 1, 32, 0, 258, 64, 1e6f, 1e-6f, true, 4), FileType.Q8_0));
            m.put("qwen2-dense", write(new RandomModel.Shape("qwen2", 1, 32, 2, 1, 16, 0, 0, 32, 0, 258, 64, 1e6f, 1e-6f, true, 5), FileType.F32));
            models = m;
        }
        return models;
    }

    /** The model the structured target edits. */
    static byte[] base() {
        return all().get("qwen2moe");
    }

    private static byte[] write(RandomModel.Shape shape, FileType type) {
        try {
            Path p = Files.createTempFile("jmoe-fuzz-", ".gguf");
            try {
                RandomModel.write(shape, type, p);
                byte[] b = Files.readAllBytes(p);
                try (GgufFile f = GgufFile.open(p)) {
                    f.tensors(); // the seed itself must be a valid file
                }
                return b;
            } finally {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
