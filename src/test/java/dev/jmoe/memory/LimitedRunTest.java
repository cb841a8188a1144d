package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.testutil.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Commands in a memory limit this process creates: where the machine does not allow creating one (not root, no
 * writable cgroup hierarchy, no systemd) the tests are skipped with the reason.
 */
class LimitedRunTest {
    private static final long MIB = 1L << 20;
    @TempDir Path dir;

    private static void assumeLimitsPossible() {
        String why = LimitedRun.unavailableReason();
        assumeTrue(why == null, "cannot create a memory limit on this machine: " + why);
    }

    private static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    @Test
    void aSmallCommandCompletesWellInsideItsLimit() throws Exception {
        assumeLimitsPossible();
        LimitedRun.Result r = LimitedRun.run(List.of("/bin/sh", "-c", "exit 0"), 32 * MIB, null, null, 60);
        assertEquals(0, r.exit());
        assertEquals(0, r.oomKills());
        assertEquals(32 * MIB, r.limit());
        assertTrue(r.peak() <= 32 * MIB, r.summary());
    }

    @Test
    void aCommandNeedingMoreThanTheLimitIsKilledAndTheKillIsCounted() throws Exception {
        assumeLimitsPossible();
        // a JVM that touches a 256 MiB heap up front cannot live in 64 MiB
        LimitedRun.Result r = LimitedRun.run(List.of(java(), "-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch", "-version"), 64 * MIB, null, null, 120);
        assertNotEquals(0, r.exit(), r.summary());
        assertTrue(r.oomKills() >= 1, r.summary());
        assertTrue(r.peak() <= 64 * MIB, r.summary());
    }

    @Test
    void aLimitBelowAnyProcessIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> LimitedRun.run(List.of("true"), 1024, null, null, 10));
    }

    /** bin/jmoe's two steps (plan, then run with the planned options) on the test classpath, inside the limit. */
    private List<String> jmoe(String... args) {
        String cp = System.getProperty("java.class.path");
        String base = "\"" + java() + "\" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED";
        String script = "flags=$(" + base + " -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp \"$0\" dev.jmoe.memory.PlanMain \"$@\") || exit 1; "
                // the plan prints one option per line (a value may hold spaces): split $flags at newlines only
                + "IFS='\n'; exec " + base + " -XX:+UseParallelGC $flags -cp \"$0\" dev.jmoe.cli.Main \"$@\"";
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c", script, cp));
        cmd.addAll(List.of(args));
        return cmd;
    }

    @Test
    void jmoeWithAutomaticExpertMemoryCompletesInsideASmallLimit() throws Exception {
        assumeLimitsPossible();
        Path stats = dir.resolve("stats.json"), err = dir.resolve("err.txt");
        long limit = 256 * MIB;
        LimitedRun.Result r = LimitedRun.run(jmoe("generate", "-m", TestModels.mixtral().toString(), "-p", "hello there", "-n", "8", "--ignore-eos",
                "-c", "128", "--expert-memory", "auto", "--no-warmup", "--stats-json", stats.toString()), limit, null, err, 300);
        String log = Files.readString(err);
        assertEquals(0, r.exit(), r.summary() + "\n" + log);
        assertEquals(0, r.oomKills(), r.summary());
        assertTrue(r.peak() <= limit, r.summary());
        assertTrue(log.contains("expert memory auto: "), log);
        JsonNode j = new ObjectMapper().readTree(stats.toFile());
        assertEquals(7, j.path("decode_tokens").asInt());
        assertTrue(j.path("offload").path("budget_bytes").asLong() > 0, j.toString());
        assertTrue(j.path("offload").path("budget_bytes").asLong() < limit, j.toString());
    }

    @Test
    void jmoeInsideALimitTooSmallForTheModelSaysHowMuchIsNeeded() throws Exception {
        assumeLimitsPossible();
        Path err = dir.resolve("err.txt");
        LimitedRun.Result r = LimitedRun.run(jmoe("generate", "-m", TestModels.mixtral().toString(), "-p", "hi", "-n", "2", "-c", "4096"), 128 * MIB, null,
                err, 300);
        String log = Files.readString(err);
        assertEquals(1, r.exit(), r.summary() + "\n" + log);
        assertEquals(0, r.oomKills(), "refused by the plan, not killed: " + r.summary());
        assertTrue(log.contains("needs at least"), log);
        assertTrue(log.contains("Raise the memory limit by"), log);
    }
}
