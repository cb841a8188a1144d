package dev.jmoe.experts.predict;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.FileType;
import dev.jmoe.model.KvCache;
import dev.jmoe.model.Model;
import dev.jmoe.model.RandomModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** Small random MoE models for the prediction tests, written once per JVM and kept open. */
public final class PredictTestModels {
    private PredictTestModels() {}

    private static final Map<String, Model> MODELS = new HashMap<>();
    private static final Map<String, Path> PATHS = new HashMap<>();
    private static Path dir;

    /** qwen2moe-like F16: 4 layers, 16 experts top-4 (not renormalised), shared expert. */
    public static Model qwen2moeF16() { return load("qwen2moe-f16"); }

    /** Mixtral-like Q8_0: 3 layers, 8 experts top-2, renormalised. */
    public static Model mixtralQ8() { return load("mixtral-q8_0"); }

    public static synchronized Path path(String name) {
        return PATHS.computeIfAbsent(name, n -> {
            RandomModel.Shape shape;
            FileType type;
            switch (n) {
                case "qwen2moe-f16" -> {
                    shape = new RandomModel.Shape("qwen2moe", 4, 128, 4, 2, 32, 16, 4, 64, 128, 300, 256, 1e6f, 1e-6f, false, 21);
                    type = FileType.F16;
                }
                case "mixtral-q8_0" -> {
                    shape = new RandomModel.Shape("llama", 3, 128, 4, 2, 32, 8, 2, 96, 0, 300, 256, 1e6f, 1e-5f, false, 22);
                    type = FileType.Q8_0;
                }
                default -> throw new IllegalArgumentException(n);
            }
            try {
                if (dir == null) {
                    dir = Files.createTempDirectory("jmoe-predict-test");
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

    public static synchronized Model load(String name) {
        return MODELS.computeIfAbsent(name, n -> {
            try {
                return Model.load(GgufFile.open(path(n))); // stays open for the JVM's life
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** Deterministic pseudo-text: token ids in [1, vocab). */
    public static int[] tokens(int n, long seed, int vocab) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = 1 + r.nextInt(vocab - 1);
        return t;
    }

    /** Whether two caches hold the same keys and values, bit for bit, at position p of every layer. */
    public static boolean samePosition(KvCache a, KvCache b, int p, int nLayer) {
        int d = a.kvDim();
        for (int l = 0; l < nLayer; l++) {
            for (int i = 0; i < d; i++) {
                if (Float.floatToRawIntBits(a.keys(l)[p * d + i]) != Float.floatToRawIntBits(b.keys(l)[p * d + i])) return false;
                if (Float.floatToRawIntBits(a.values(l)[p * d + i]) != Float.floatToRawIntBits(b.values(l)[p * d + i])) return false;
            }
        }
        return true;
    }
}
