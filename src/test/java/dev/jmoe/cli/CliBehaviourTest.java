package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.Registry;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.testutil.TestModels;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The command line as a new user meets it: help everywhere, wrong names refused with the valid ones, plug-ins listed. */
class CliBehaviourTest {
    @TempDir Path dir;

    static CliTest.Run jmoe(String... args) {
        return CliTest.jmoe(args);
    }

    static List<String> commands() {
        return Main.commandLine().getSubcommands().keySet().stream().filter(c -> !c.equals("help")).sorted().toList();
    }

    @Test
    void everyCommandPrintsItsHelpWithDashHAndDashDashHelpAndExitsZero() {
        List<String> cmds = commands();
        assertTrue(cmds.size() >= 16, cmds.toString());
        for (String c : cmds) {
            for (String flag : List.of("--help", "-h")) {
                CliTest.Run r = jmoe(c, flag);
                assertEquals(0, r.code(), c + " " + flag + ": " + r.err());
                assertTrue(r.out().startsWith("Usage: jmoe " + c), c + " " + flag + ": " + r.out());
                assertFalse(r.out().contains("${"), c + ": an unfilled placeholder in the help\n" + r.out());
            }
        }
    }

    @Test
    void helpGroupsTheOptionsAndNamesPlaceholdersWithWords() {
        CliTest.Run r = jmoe("generate", "--help");
        for (String heading : List.of("Model:", "Sampling:", "Expert memory:", "Prediction:", "Output:")) {
            assertTrue(r.out().contains(heading), heading + " in\n" + r.out());
        }
        // the registries' entries, with their help text
        assertTrue(r.out().contains("exact-smoe: SMoE's caching"), r.out());
        assertTrue(r.out().contains("emmc: an edge board's eMMC"), r.out());
        assertTrue(r.out().contains("shadow: OD-MoE's emulative predictor"), r.out());
        // placeholders are words, not single letters
        for (String opt : List.of("--lookahead=LAYERS", "--alpha=ALPHA", "--history-decay=DECAY", "--shadow-margin=MARGIN", "--threads=COUNT")) {
            assertTrue(r.out().contains(opt), opt + " in\n" + r.out());
        }
        for (String c : commands()) {
            String help = jmoe(c, "--help").out();
            assertFalse(help.matches("(?s).*=<?[A-Z]>?[ ,\\]\\n].*"), c + ": a one-letter placeholder\n" + help);
        }
    }

    @Test
    void unknownPlugInNamesAreRefusedOnEveryCommandWithTheValidList() {
        String model = TestModels.qwen2moe().toString();
        String[][] commandsRunningAModel = {
                {"generate", "-p", "x", "-n", "1"}, {"chat"}, {"logits", "--tokens", "1,2"}, {"perplexity", "-f", "README.md"},
                {"fidelity", "-f", "README.md"}, {"eval", "--task", "bench/eval-continuation.jsonl"}};
        String[][] bad = {{"--policy", "foo", "exact-smoe"}, {"--eviction", "fifo", "lfu"}, {"--store", "usb", "direct"},
                {"--link", "usb", "emmc"}, {"--predictor", "oracle", "shadow"}};
        for (String[] cmd : commandsRunningAModel) {
            for (String[] b : bad) {
                String[] args = concat(cmd, new String[]{"-m", model, "-q", "--expert-memory", "1/2", b[0], b[1]});
                CliTest.Run r = jmoe(args);
                assertTrue(r.code() != 0, String.join(" ", args) + " must fail");
                assertTrue(r.err().contains(b[0]) && r.err().contains(b[2]), String.join(" ", args) + ": " + r.err());
                assertFalse(r.err().contains("\tat "), r.err());
            }
        }
        CliTest.Run r = jmoe("offload-bench", "-m", model, "-q", "--policy", "foo");
        assertTrue(r.code() != 0 && r.err().contains("--policy") && r.err().contains("lru-ondemand"), r.err());
        r = jmoe("bench", "-m", model, "-q", "--predictor", "oracle");
        assertTrue(r.code() != 0 && r.err().contains("--predictor") && r.err().contains("history"), r.err());
        r = jmoe("predict-eval", "-m", model, "-q", "-f", "README.md", "--predictor", "oracle");
        assertTrue(r.code() != 0 && r.err().contains("--predictor") && r.err().contains("gate"), r.err());
    }

    @Test
    void runtimeFlagsWithoutABudgetWarnAndEveryModelCommandTakesThem() {
        String model = TestModels.qwen2moe().toString();
        CliTest.Run r = jmoe("generate", "-m", model, "-q", "-p", "x", "-n", "2", "--temp", "0", "--policy", "smoe", "--link", "emmc");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("jmoe: warning: --link, --policy have no effect without --expert-memory"), r.err());
        // logits takes OD-MoE with a shadow like every other command, and stays exact
        CliTest.Run resident = jmoe("logits", "-m", model, "-q", "--tokens", "1,2,3,4");
        CliTest.Run odmoe = jmoe("logits", "-m", model, "-q", "--tokens", "1,2,3,4", "--policy", "odmoe", "--predictor", "shadow", "--shadow", "q4_0");
        assertEquals(0, odmoe.code(), odmoe.err());
        assertEquals(resident.out(), odmoe.out());
    }

    /** A toy eviction policy: one class. */
    static final class HighestKeyFirst implements EvictionPolicy {
        @Override public String name() { return "toy-highest"; }
        @Override public void onAccess(int key) {}

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            for (int i = 1; i < count; i++) best = Math.max(best, candidates[i]);
            return best;
        }
    }

    @Test
    void aToyPolicyIsOneClassAndOneRegistrationAndThenReplayListsAndAcceptsIt() throws Exception {
        Path model = TestModels.qwen2moe();
        Path trace = dir.resolve("t.jsonl");
        CliTest.Run g = jmoe("generate", "-m", model.toString(), "-q", "-p", "a b c d", "-n", "6", "--temp", "0", "--trace", trace.toString());
        assertEquals(0, g.code(), g.err());
        assertFalse(jmoe("replay", "--help").out().contains("toy-highest"));
        try (Registry.Registration reg = EvictionPolicies.register("toy-highest", "evicts the highest key (a test plug-in)", c -> new HighestKeyFirst())) {
            CliTest.Run help = jmoe("replay", "--help");
            assertTrue(help.out().contains("toy-highest: evicts the highest key"), help.out());
            CliTest.Run r = jmoe("replay", "--trace", trace.toString(), "-m", model.toString(), "--eviction", "lru,toy-highest", "--expert-memory", "1/4");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().lines().anyMatch(l -> l.contains("toy-highest")), r.out());
            // and live: a run with --eviction takes it too
            CliTest.Run live = jmoe("generate", "-m", model.toString(), "-q", "-p", "a b", "-n", "3", "--temp", "0", "--expert-memory", "1/4",
                    "--eviction", "toy-highest");
            assertEquals(0, live.code(), live.err());
        }
        CliTest.Run gone = jmoe("replay", "--trace", trace.toString(), "-m", model.toString(), "--eviction", "toy-highest");
        assertTrue(gone.code() != 0 && gone.err().contains("choose one of"), gone.err());
    }

    @Test
    void inspectTakesDashMAndChatHasItsCommands() {
        String model = TestModels.qwen2moe().toString();
        CliTest.Run r = jmoe("inspect", "-m", model, "--no-tensors");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("architecture: qwen2moe"), r.out());
        assertTrue(ChatCommand.HELP.contains("/clear") && ChatCommand.HELP.contains("/help") && ChatCommand.HELP.contains("/exit"));
    }

    @Test
    void measuringCommandsNameRepetitionsAndBudgetsAlike() {
        for (String c : List.of("bench", "offload-bench", "predict-bench", "speed", "cluster-bench", "serve-bench")) {
            String help = jmoe(c, "--help").out();
            assertTrue(help.contains("--repetitions"), c + "\n" + help);
        }
        for (String c : List.of("bench", "offload-bench", "predict-bench", "replay")) {
            String help = jmoe(c, "--help").out();
            assertTrue(help.contains("--expert-memory"), c + "\n" + help);
            assertFalse(help.contains("--budgets"), c + "\n" + help);
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void wrongFlagsAndValuesGetOneErrorLineNamingThemAndAPointerToHelp() {
        String[][] cases = {
                {"generate", "--threads", "abc"}, {"speed", "-r", "x"}, {"generate", "--bogus"}, {"inspect", "-m"},
                {"generate", "--temp", "warm"}};
        String[] named = {"--threads", "--repetitions", "--bogus", "-m", "--temp"};
        for (int i = 0; i < cases.length; i++) {
            CliTest.Run r = jmoe(cases[i]);
            String what = String.join(" ", cases[i]) + ":\n" + r.err();
            assertEquals(2, r.code(), what);
            assertTrue(r.err().startsWith("jmoe: error: "), what);
            assertTrue(r.err().lines().findFirst().orElse("").contains(named[i]), what);
            assertTrue(r.err().contains("Try 'jmoe " + cases[i][0] + " --help'"), what);
            assertFalse(r.err().contains("Usage:"), what);
        }
        // a misspelt option is answered with the option it resembles
        CliTest.Run r = jmoe("generate", "--thread", "2");
        assertTrue(r.err().contains("--threads"), r.err());
    }

    @Test
    void theHelpCommandWorksToo() {
        CommandLine cl = Main.commandLine();
        assertTrue(cl.getSubcommands().containsKey("help"));
        CliTest.Run r = jmoe("help", "generate");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Usage: jmoe generate"), r.out());
    }

    @Test
    void aSettingRefusedWhileAClassIsSetUpIsToldAsTheRefusalNotAsAnInitializerError() {
        IllegalArgumentException refusal = new IllegalArgumentException("-Djmoe.parallel.chunksPerThread=0: the setting must be an integer >= 1");
        assertEquals(refusal.getMessage(), Main.describe(new ExceptionInInitializerError(refusal)));
        assertEquals("ExceptionInInitializerError: static setup", Main.describe(new ExceptionInInitializerError("static setup")));
    }
}
