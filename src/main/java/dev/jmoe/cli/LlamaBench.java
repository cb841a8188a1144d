package dev.jmoe.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs llama.cpp's {@code llama-bench} on a model file and reads its pp/tg tokens/s from the JSON it prints, so
 * {@code jmoe speed --llama-bench} can put both engines' figures side by side in one run (absolute speeds of a
 * shared machine drift; ratios measured together do not).
 */
final class LlamaBench {
    private static final long TIMEOUT_MINUTES = 10;

    private final Path exe;
    private final int threads, nPrompt, nGen;
    private String version = "unknown version";

    LlamaBench(Path exe, int threads, int nPrompt, int nGen) {
        if (!Files.isRegularFile(exe) || !Files.isExecutable(exe)) {
            throw new IllegalArgumentException("--llama-bench: " + exe + " is not an executable file (bench/get-llama-bench fetches one)");
        }
        this.exe = exe;
        this.threads = threads;
        this.nPrompt = nPrompt;
        this.nGen = nGen;
    }

    /** llama.cpp's build as llama-bench reports it, once a run has been made. */
    String version() { return version; }

    /** One llama-bench repetition (after its own warm-up run) on {@code model}: {pp tokens/s, tg tokens/s}. */
    double[] run(Path model) throws IOException, InterruptedException {
        List<String> cmd = List.of(exe.toString(), "-m", model.toAbsolutePath().toString(), "-t", Integer.toString(threads),
                "-p", Integer.toString(nPrompt), "-n", Integer.toString(nGen), "-r", "1", "-o", "json");
        Path err = Files.createTempFile("jmoe-llama-bench", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            byte[] stdout = p.getInputStream().readAllBytes();
            if (!p.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException("llama-bench did not finish within " + TIMEOUT_MINUTES + " minutes on " + model);
            }
            if (p.exitValue() != 0) {
                throw new IOException("llama-bench failed on " + model + " (exit " + p.exitValue() + "): " + tail(err));
            }
            return parse(new String(stdout, StandardCharsets.UTF_8), model);
        } finally {
            Files.deleteIfExists(err);
        }
    }

    /** Reads the pp and tg entries of llama-bench's JSON array. */
    double[] parse(String json, Path model) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (IOException e) {
            throw new IOException("llama-bench printed no JSON for " + model + ": " + e.getMessage());
        }
        double pp = Double.NaN, tg = Double.NaN;
        if (root != null && root.isArray()) {
            for (JsonNode test : root) {
                int prompt = test.path("n_prompt").asInt(-1), gen = test.path("n_gen").asInt(-1);
                double ts = test.path("avg_ts").asDouble(Double.NaN);
                if (prompt == nPrompt && gen == 0) pp = ts;
                if (prompt == 0 && gen == nGen) tg = ts;
                if (test.has("build_commit")) version = "llama.cpp " + test.path("build_commit").asText() + " build " + test.path("build_number").asText();
            }
        }
        if (!(pp > 0) || !(tg > 0)) {
            throw new IOException("llama-bench's JSON for " + model + " has no pp" + nPrompt + " and tg" + nGen + " figures");
        }
        return new double[]{pp, tg};
    }

    private static String tail(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        return String.join(" | ", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
    }
}
