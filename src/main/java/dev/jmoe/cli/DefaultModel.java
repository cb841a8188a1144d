package dev.jmoe.cli;

import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model used when no -m is given: the bundled trained fine-grained MoE model (models/), or — in a
 * checkout without it — a small random model generated once into target/.
 */
final class DefaultModel {
    static final String BUNDLED = "models/qwen2moe-tiny-q8_0.gguf";

    private DefaultModel() {}

    static Path home() {
        String h = System.getProperty("jmoe.home");
        return Path.of(h != null ? h : ".").toAbsolutePath().normalize();
    }

    static Path path(boolean quiet) throws IOException {
        Path bundled = home().resolve(BUNDLED);
        if (Files.isRegularFile(bundled)) return bundled;
        Path generated = home().resolve("target/default-random-model.gguf");
        if (!Files.isRegularFile(generated)) {
            if (!quiet) System.err.println("jmoe: no bundled model at " + bundled + "; generating a random one at " + generated);
            Files.createDirectories(generated.getParent());
            RandomModel.write(new RandomModel.Shape("qwen2moe", 4, 256, 8, 4, 32, 16, 4, 128, 256, 512, 4096, 1e6f, 1e-6f, false, 7),
                    FileType.Q8_0, generated);
        }
        return generated;
    }
}
