package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.testutil.TestModels;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** bin/jmoe's plan mode: the heap from the same plan the run makes, or a clear refusal. */
class PlanMainTest {
    private static final long MIB = 1L << 20;
    private static final Path HOME = Path.of("/nonexistent-jmoe-home");

    @Test
    void anOffloadingPlanGivesTheHeapItCountedAndHandsOverItsFigures() throws Exception {
        String model = TestModels.mixtral().toString();
        List<String> o = PlanMain.options(new String[]{"generate", "-m", model, "-c", "128", "--expert-memory", "auto", "-p", "hi"}, 400 * MIB,
                "cgroup v2 /t limit 400.0 MiB", HOME);
        MemoryPlan p;
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            p = MemoryPlanner.plan(ModelFootprint.of(Model.load(f)), new MemoryPlanner.Request(MemoryPlanner.Ask.AUTO, 0, 128, false), 400 * MIB, "x", -1);
        }
        assertTrue(o.contains("-Xmx" + (p.heapBytes() >> 20) + "m"), o.toString());
        assertTrue(o.contains("-Xmn16m"), o.toString());
        assertTrue(o.contains("-D" + SystemMemory.AVAILABLE_PROPERTY + "=" + 400 * MIB), o.toString());
        assertTrue(o.contains("-D" + SystemMemory.SOURCE_PROPERTY + "=cgroup v2 /t limit 400.0 MiB"), o.toString());
        assertTrue(o.contains("-D" + ModelMemory.HEAP_PROPERTY + "=" + p.heapBytes()), o.toString());
    }

    /**
     * A fraction given to --expert-memory is a fraction of the same bytes in the plan as in the run: every expert in the
     * form its slots hold it (packed copies, larger than the file's bytes), so the planned heap holds the slots the run
     * makes. It was a fraction of the file's bytes in the plan, and bin/jmoe gave a heap the run's packed slots did not
     * fit (Qwen3-like Q4_K_M, --expert-memory 25%: "no room for 55 packed expert slots").
     */
    @Test
    void aFractionOfExpertMemoryMeansTheSameBytesToThePlanAndToTheRun() throws Exception {
        Path path = TestModels.mixtral();
        long slotForm, fileBytes;
        ModelFootprint fp;
        try (GgufFile f = GgufFile.open(path)) {
            Model m = Model.load(f);
            fp = ModelFootprint.of(m);
            slotForm = dev.jmoe.experts.cache.SlotFormat.of(m.withPackedWeights(), dev.jmoe.experts.store.ExpertLayout.of(m)).totalBytes();
            fileBytes = fp.expertBytes();
        }
        assertTrue(slotForm > fileBytes, slotForm + " vs " + fileBytes);
        assertEquals(slotForm, fp.budgetBase(false));
        assertEquals(fileBytes, fp.budgetBase(true));
        String model = path.toString();
        List<String> o = PlanMain.options(new String[]{"generate", "-m", model, "-c", "128", "--expert-memory", "50%", "-p", "hi"}, 4096 * MIB, "s", HOME);
        MemoryPlan p = MemoryPlanner.plan(fp, new MemoryPlanner.Request(MemoryPlanner.Ask.GIVEN, slotForm / 2, 128, false), 4096 * MIB, "x", -1);
        assertTrue(o.contains("-Xmx" + (p.heapBytes() >> 20) + "m"), o + " against " + p.explanation());
        assertEquals(slotForm / 2, p.expertBudget());
        List<String> plain = PlanMain.options(new String[]{"generate", "-m", model, "-c", "128", "--no-pack", "--expert-memory", "50%", "-p", "hi"}, 4096 * MIB, "s", HOME);
        MemoryPlan q = MemoryPlanner.plan(fp, new MemoryPlanner.Request(MemoryPlanner.Ask.GIVEN, fileBytes / 2, 128, true), 4096 * MIB, "x", -1);
        assertTrue(plain.contains("-Xmx" + (q.heapBytes() >> 20) + "m"), plain + " against " + q.explanation());
    }

    @Test
    void theFlagSpellingsAreRead() {
        String model = TestModels.mixtral().toString();
        List<String> a = PlanMain.options(new String[]{"perplexity", "--model=" + model, "--ctx-size=4096", "--expert-memory=auto"}, 400 * MIB, "s", HOME);
        List<String> b = PlanMain.options(new String[]{"perplexity", "-m", model, "-c", "4096", "--expert-memory", "auto"}, 400 * MIB, "s", HOME);
        assertEquals(b, a);
        assertTrue(a.stream().anyMatch(x -> x.startsWith("-Xmx")), a.toString());
    }

    @Test
    void theServersHeapHoldsTheKvMemoryOfEverySlot() throws Exception {
        String model = TestModels.mixtral().toString();
        List<String> o = PlanMain.options(new String[]{"serve", "-m", model, "-c", "128", "--parallel", "8", "--expert-memory", "auto"}, 400 * MIB, "s", HOME);
        List<String> kv = PlanMain.options(new String[]{"serve", "-m", model, "--kv-size", "1024", "--expert-memory=auto"}, 400 * MIB, "s", HOME);
        MemoryPlan p;
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            p = MemoryPlanner.plan(ModelFootprint.of(Model.load(f)), new MemoryPlanner.Request(MemoryPlanner.Ask.AUTO, 0, 8 * 128, false), 400 * MIB, "x", -1);
        }
        assertTrue(o.contains("-Xmx" + (p.heapBytes() >> 20) + "m"), o.toString());
        assertEquals(o.stream().filter(x -> x.startsWith("-Xmx")).toList(), kv.stream().filter(x -> x.startsWith("-Xmx")).toList());
        // serve without a budget gets a planned heap too (not three quarters of RAM, which the run's plan would count whole)
        List<String> resident = PlanMain.options(new String[]{"serve", "-m", model}, 4096 * MIB, "s", HOME);
        assertTrue(resident.stream().anyMatch(x -> x.startsWith("-Xmx")), resident.toString());
    }

    @Test
    void aLimitTooSmallIsRefusedBeforeTheRunStarts() {
        String model = TestModels.mixtral().toString();
        MemoryPlanner.TooSmall e = assertThrows(MemoryPlanner.TooSmall.class,
                () -> PlanMain.options(new String[]{"generate", "-m", model, "-c", "4096"}, 120 * MIB, "cgroup v1 /b limit 120.0 MiB", HOME));
        assertTrue(e.getMessage().contains("needs at least"), e.getMessage());
        assertTrue(e.getMessage().contains("cgroup v1 /b limit 120.0 MiB"), e.getMessage());
    }

    @Test
    void aCommandThatCannotOffloadIsNotRefusedButKeepsTheDefaultHeap() {
        String model = TestModels.mixtral().toString();
        List<String> o = PlanMain.options(new String[]{"speed", "-m", model}, 120 * MIB, "s", HOME);
        assertTrue(o.contains("-XX:MaxRAMPercentage=75"), o.toString());
    }

    @Test
    void commandsWithoutAModelKeepTheDefaultShareOfWhatIsAvailable() {
        List<String> o = PlanMain.options(new String[]{"inspect", "x.gguf"}, 1024 * MIB, "s", HOME);
        assertTrue(o.contains("-XX:MaxRAM=" + 1024 * MIB), o.toString());
        assertTrue(o.contains("-XX:MaxRAMPercentage=75"), o.toString());
        assertTrue(PlanMain.options(new String[]{}, 1024 * MIB, "s", HOME).contains("-XX:MaxRAMPercentage=75"));
        assertTrue(PlanMain.options(new String[]{"--version"}, Long.MAX_VALUE, "s", HOME).equals(List.of("-XX:MaxRAMPercentage=75")));
        // an unreadable model is left to the real run to report
        List<String> bad = PlanMain.options(new String[]{"generate", "-m", "/nonexistent/m.gguf"}, 1024 * MIB, "s", HOME);
        assertTrue(bad.contains("-XX:MaxRAMPercentage=75"), bad.toString());
    }
}
