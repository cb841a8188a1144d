package dev.jmoe.testutil;

import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** Small random MoE models for the offloading tests, generated once per test JVM. */
public final class TestModels {
    private TestModels() {}

    private static final Map<String, Path> CACHE = new HashMap<>();
    private static Path dir;

    /** qwen2moe-like: 4 layers, 16 experts top-4 (not renormalised), shared expert. */
    public static Path qwen2moe() {
        return get("qwen2moe", new RandomModel.Shape("qwen2moe", 4, 128, 4, 2, 32, 16, 4, 64, 128, 300, 256, 1e6f, 1e-6f, false, 11), FileType.Q8_0);
    }

    /** Mixtral-like: 3 layers, 8 experts top-2, renormalised. */
    public static Path mixtral() {
        return get("mixtral", new RandomModel.Shape("llama", 3, 128, 4, 2, 32, 8, 2, 96, 0, 300, 256, 1e6f, 1e-5f, false, 12), FileType.Q4_0);
    }

    public static synchronized Path get(String name, RandomModel.Shape shape, FileType type) {
        return CACHE.computeIfAbsent(name, n -> {
            try {
                if (dir == null) {
                    dir = Files.createTempDirectory("jmoe-experts-test");
                    dir.toFile().deleteOnExit();
                }
                Path p = dir.resolve(n + ".gguf");
                RandomModel.write(shape, type, p);
                p.toFile().deleteOnExit();
                return p;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
