package dev.jmoe.cli;

import static dev.jmoe.cli.CliTest.jmoe;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** jmoe speed: figures per model, and --llama-bench side by side with a stand-in llama-bench. */
class SpeedCommandTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void makeModel() {
        model = dir.resolve("m.gguf");
        CliTest.Run r = jmoe("make-model", "--preset", "tiny-mixtral", "--type", "Q4_0", "--layers", "2", "-o", model.toString());
        assertEquals(0, r.code(), r.err());
    }

    /** A script that answers like llama-bench -o json with fixed figures, and records its arguments. */
    static Path fakeLlamaBench(String body) throws Exception {
        Path exe = Files.createTempFile(dir, "llama-bench", ".sh");
        Files.writeString(exe, "#!/bin/sh\necho \"$@\" >> " + dir.resolve("args.txt") + "\n" + body + "\n");
        Files.setPosixFilePermissions(exe, PosixFilePermissions.fromString("rwx------"));
        return exe;
    }

    /** A llama-bench that reports 50 t/s for pp8 and 25 t/s for tg4 in every round. */
    static Path steadyLlamaBench() throws Exception {
        return fakeLlamaBench("""
                cat <<'JSON'
                [ {"build_commit": "abc", "build_number": 7, "n_prompt": 8, "n_gen": 0, "avg_ts": 50.0},
                  {"build_commit": "abc", "build_number": 7, "n_prompt": 0, "n_gen": 4, "avg_ts": 25.0} ]
                JSON""");
    }

    /** {@code speed -p 8 -n 4 --warmup 0} with -r {@code rounds} and -t {@code threads} beside {@link #steadyLlamaBench}; asserts it succeeds. */
    private CliTest.Run speedAgainstSteadyLlamaBench(String rounds, String threads, Path json) throws Exception {
        Path exe = steadyLlamaBench();
        CliTest.Run r = jmoe("speed", "-m", model.toString(), "-p", "8", "-n", "4", "-r", rounds, "--warmup", "0", "-t", threads,
                "--llama-bench", exe.toString(), "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        return r;
    }

    @Test
    void ratiosAgainstLlamaBenchArePairedPerRound() throws Exception {
        Path json = dir.resolve("speed.json");
        CliTest.Run r = speedAgainstSteadyLlamaBench("3", "1", json);
        assertTrue(r.out().contains("tg vs llama.cpp") && r.out().contains("llama.cpp abc build 7"), r.out());
        JsonNode row = new ObjectMapper().readTree(json.toFile()).get(0);
        assertEquals(50.0, row.get("llama_cpp_prompt_tokens_per_s").asDouble());
        assertEquals(25.0, row.get("llama_cpp_decode_tokens_per_s").asDouble());
        assertEquals(3, row.get("llama_cpp_decode_runs").size());
        double tg = row.get("decode_tokens_per_s").asDouble();
        // every llama.cpp round is 25 t/s, so the median of the per-round ratios is the median jmoe figure / 25
        assertEquals(tg / 25.0, row.get("decode_ratio").asDouble(), 1e-9);
        assertEquals(row.get("prompt_tokens_per_s").asDouble() / 50.0, row.get("prompt_ratio").asDouble(), 1e-9);
        String args = Files.readString(dir.resolve("args.txt"));
        assertTrue(args.contains("-m " + model.toAbsolutePath() + " -t 1 -p 8 -n 4 -r 1 -o json"), args);
        assertEquals(0, row.get("warmup_rounds").asInt(), "--warmup 0 adds no warm-up rounds");
    }

    @Test
    void zeroThreadsMeansEveryCoreInTheTableAndForLlamaBench() throws Exception {
        Path json = dir.resolve("speed-t0.json");
        speedAgainstSteadyLlamaBench("1", "0", json);
        int cores = Runtime.getRuntime().availableProcessors();
        assertEquals(cores, new ObjectMapper().readTree(json.toFile()).get(0).get("threads").asInt());
        var calls = Files.readAllLines(dir.resolve("args.txt")); // every test's calls: this one's is the last
        String args = calls.get(calls.size() - 1);
        assertTrue(args.contains(" -t " + cores + " "), args);
    }

    @Test
    void warmUpGoesOnWhileTheJitCompilesForMoreThanATwentiethOfARound() {
        assertTrue(SpeedCommand.jitStillCompiling(1000, 1100, 400.0)); // 100 ms of a 400 ms round
        assertFalse(SpeedCommand.jitStillCompiling(1000, 1010, 400.0)); // 10 ms: settled
        assertFalse(SpeedCommand.jitStillCompiling(-1, -1, 400.0)); // the JVM does not count compilation time
    }

    @Test
    void aFailingLlamaBenchIsNamed() throws Exception {
        Path exe = fakeLlamaBench("echo 'error: unknown model architecture' >&2; exit 3");
        CliTest.Run r = jmoe("speed", "-m", model.toString(), "-p", "8", "-n", "4", "-r", "1", "--warmup", "0", "-t", "1", "--llama-bench", exe.toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("llama-bench failed on") && r.err().contains("exit 3") && r.err().contains("unknown model architecture"), r.err());
        Path silent = fakeLlamaBench("echo '[]'");
        r = jmoe("speed", "-m", model.toString(), "-p", "8", "-n", "4", "-r", "1", "--warmup", "0", "-t", "1", "--llama-bench", silent.toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("has no pp8 and tg4 figures"), r.err());
    }

    @Test
    void aMissingLlamaBenchIsRefusedBeforeMeasuring() {
        CliTest.Run r = jmoe("speed", "-m", model.toString(), "-r", "1", "--llama-bench", dir.resolve("nope").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("is not an executable file"), r.err());
        assertTrue(!r.err().contains("\tat "), "no stack trace: " + r.err());
    }
}
