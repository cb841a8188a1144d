package dev.jmoe.testutil;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/** Access to ../shared/llamacpp-reference: the models and what llama.cpp computed for them. */
public final class Reference {
    private Reference() {}

    public static Path dir() {
        String p = System.getProperty("jmoe.reference.dir", "../shared/llamacpp-reference");
        Path dir = Path.of(p);
        Assumptions.assumeTrue(Files.isDirectory(dir.resolve("models")), "llama.cpp reference not found at " + dir);
        return dir;
    }

    public static Path model(String name) {
        return dir().resolve("models").resolve(name + ".gguf");
    }

    public static Path expected(String name, String file) {
        return dir().resolve("expected").resolve(name).resolve(file);
    }

    public static int[] tokens(String name) throws IOException {
        return Arrays.stream(Files.readString(expected(name, "tokens.txt")).trim().split("\\s+")).mapToInt(Integer::parseInt).toArray();
    }

    /** Logits rows of a logits_all.txt: [position][vocab]. */
    public static float[][] logitsAll(String name) throws IOException {
        List<float[]> rows = new ArrayList<>();
        for (String line : Files.readAllLines(expected(name, "logits_all.txt"))) {
            if (line.startsWith("#") || line.isBlank()) continue;
            String[] f = line.trim().split(" ");
            float[] row = new float[f.length - 2];
            for (int i = 2; i < f.length; i++) row[i - 2] = Float.parseFloat(f[i]);
            rows.add(row);
        }
        return rows.toArray(new float[0][]);
    }

    /** The 16 greedy token ids of greedy16.txt. */
    public static int[] greedy(String name) throws IOException {
        for (String line : Files.readAllLines(expected(name, "greedy16.txt"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
            if (line.startsWith("# gen_ids=")) {
                return Arrays.stream(line.substring("# gen_ids=".length()).trim().split(",")).mapToInt(Integer::parseInt).toArray();
            }
        }
        throw new IllegalStateException("no gen_ids in greedy16.txt of " + name);
    }

    /** prompt.txt as llama.cpp's tools read a prompt file: one trailing newline dropped. */
    public static String prompt() throws IOException {
        String p = Files.readString(dir().resolve("prompt.txt"));
        return p.endsWith("\n") ? p.substring(0, p.length() - 1) : p;
    }

    /** The final perplexity llama-perplexity printed. */
    public static double ppl(String name) throws IOException {
        for (String line : Files.readAllLines(expected(name, "ppl.txt"))) {
            int i = line.indexOf("PPL = ");
            if (i >= 0) return Double.parseDouble(line.substring(i + 6).split(" ")[0]);
        }
        throw new IllegalStateException("no PPL in ppl.txt of " + name);
    }
}
