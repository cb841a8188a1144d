package dev.jmoe.experts.jit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Predictions only move loads earlier: {@code --policy odmoe} (just-in-time loading, eviction right after use, demand
 * loads when a prediction was wrong) and every predictor-driven prefetch give the resident run's greedy tokens and
 * logits bit for bit. The runs happen in a child JVM with C2's vector-reduction intrinsic off, whose lane-summing
 * order otherwise depends on the JIT tier a method happens to be in (see the offloading exactness test).
 */
class JitExactnessTest {
    private static final Map<String, String> RESULTS = new HashMap<>();

    static List<String> combos() {
        List<String> out = new ArrayList<>();
        for (String model : new String[] {"qwen2moe-f16", "mixtral-q8_0"}) {
            for (String p : new String[] {"none", "gate", "history", "shadow-q8_0", "shadow-q4_0"}) {
                out.add(String.join("|", model, "odmoe", p, "2", "unlimited", "ws"));
            }
            out.add(String.join("|", model, "odmoe", "shadow-q8_0", "1", "200MB/s,50us", "ws"));
            out.add(String.join("|", model, "odmoe", "shadow-q8_0", "3", "200MB/s,50us", "ws"));
            out.add(String.join("|", model, "odmoe", "gate", "2", "unlimited", "1slot"));
            out.add(String.join("|", model, "hooks", "shadow-q4_0", "3", "unlimited", "-"));
            out.add(String.join("|", model, "exact-smoe", "shadow-q8_0", "2", "unlimited", "1/3"));
            // the runs' default adaptive width: runners-up are loaded too, outputs must not change
            out.add(String.join("|", model, "odmoe", "shadow-q8_0+m0.02", "2", "200MB/s,50us", "ws"));
            out.add(String.join("|", model, "exact-smoe", "shadow-q8_0+m0.02", "2", "unlimited", "1/8"));
            out.add(String.join("|", model, "exact-smoe", "history", "3", "200MB/s,50us", "1/8"));
        }
        return out;
    }

    @BeforeAll
    static void runAllInChild() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g",
                "-XX:+UnlockDiagnosticVMOptions", "-XX:DisableIntrinsic=_VectorReductionCoerced",
                "-cp", System.getProperty("java.class.path"), JitExactnessHarness.class.getName()));
        cmd.addAll(combos());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(600, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("exactness child JVM did not finish");
        }
        for (String line : out.split("\n")) {
            if (!line.startsWith("RESULT ")) continue;
            String[] parts = line.split(" ", 3);
            RESULTS.put(parts[1], parts[2]);
        }
        if (RESULTS.isEmpty()) throw new AssertionError("exactness child JVM failed (exit " + p.exitValue() + "): " + out);
    }

    static Stream<String> cases() { return combos().stream(); }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void predictionDrivenLoadingIsBitIdenticalToResident(String combo) throws IOException {
        assertEquals("OK", RESULTS.getOrDefault(combo, "no result"), combo);
    }
}
