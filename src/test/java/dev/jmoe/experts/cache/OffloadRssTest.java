package dev.jmoe.experts.cache;

import dev.jmoe.testutil.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * With the direct store, a run's peak resident memory is bounded by what stays resident by design — non-expert
 * weights, the expert budget, the KV cache — plus a fixed overhead, even though the model's experts are 4× the
 * budget. Measured in a child JVM (VmHWM from /proc/self/status, file-backed and anonymous pages together) against
 * its own resident set before it opened the model; the same measurement of a fully resident run shows the expert
 * bytes, so the bound is not vacuous.
 */
class OffloadRssTest {
    /**
     * What the JVM adds while running, measured at ~45 MiB here: C2 compiler arenas and code, metaspace, thread
     * stacks, malloc arenas, the 4 MiB direct-I/O bounce buffer, class files paged in.
     */
    private static final long OVERHEAD = 64L << 20;
    /** Class files and JDK modules paged in after the baseline (file-backed, but not the model's). */
    private static final long CLASS_PAGES = 16L << 20;

    private static Map<String, long[]> measure(Path model, String store, String budget) throws Exception {
        ChildJvm.Result r = ChildJvm.run(List.of("-Xms64m", "-Xmx64m", "-XX:+AlwaysPreTouch", "-XX:+UseSerialGC"),
                RssHarness.class, budget == null ? List.of(model.toString(), store) : List.of(model.toString(), store, budget), 300);
        if (r.exit() != 0) throw new AssertionError("child failed (" + r.exit() + "): " + r.err());
        Map<String, long[]> out = new HashMap<>();
        for (String line : r.out().split("\n")) {
            String[] p = line.trim().split(" ");
            if (p.length < 2 || p[0].equals("STATS")) continue;
            long[] v = new long[p.length - 1];
            for (int i = 1; i < p.length; i++) v[i - 1] = Long.parseLong(p[i]);
            out.put(p[0], v);
        }
        out.put("STATS", new long[0]);
        System.out.println(store + " " + budget + ": " + r.out().replace('\n', ';'));
        return out;
    }

    @Test
    void directStorePeakRssStaysWithinNonExpertWeightsBudgetKvAndOverhead() throws Exception {
        Path dir = Files.createTempDirectory("jmoe-rss");
        Path model = dir.resolve("big-experts.gguf");
        try {
            // 2 layers x 8 experts of 3 x 512 x 4096 F32 = 24 MiB each: 384 MiB of experts, a few MiB of the rest
            RandomModel.write(new RandomModel.Shape("llama", 2, 512, 4, 2, 128, 8, 2, 4096, 0, 300, 256, 1e6f, 1e-5f, false, 3),
                    FileType.F32, model);
            String budget = "1/4";
            Map<String, long[]> direct = measure(model, "direct", budget);
            long nonExpert = direct.get("SIZES")[0], kv = direct.get("SIZES")[1], experts = direct.get("SIZES")[2];
            long budgetBytes = OffloadConfig.parseBudget(budget, experts);
            assertTrue(experts >= 4 * budgetBytes, "the model's experts must be at least 4x the budget");
            long grown = (direct.get("PEAK")[0] - direct.get("BASE")[0]) * 1024;
            long bound = nonExpert + budgetBytes + kv + OVERHEAD;
            assertTrue(grown <= bound, "direct store: peak RSS grew by " + (grown >> 20) + " MiB, more than non-expert "
                    + (nonExpert >> 20) + " + budget " + (budgetBytes >> 20) + " + kv " + (kv >> 20) + " + overhead " + (OVERHEAD >> 20) + " MiB");
            // and no expert came in through the file mapping (file-backed pages grow by the non-expert weights only)
            long fileGrown = (direct.get("PEAK")[2] - direct.get("BASE")[2]) * 1024;
            assertTrue(fileGrown <= nonExpert + CLASS_PAGES, "file-backed RSS grew by " + (fileGrown >> 20) + " MiB");

            // Control: the resident run touches every expert it uses through the mapping, and RSS shows it.
            Map<String, long[]> resident = measure(model, "resident", null);
            long residentGrown = (resident.get("PEAK")[0] - resident.get("BASE")[0]) * 1024;
            assertTrue(residentGrown > bound, "resident run grew by only " + (residentGrown >> 20) + " MiB: the measurement cannot tell");
        } finally {
            Files.deleteIfExists(model);
            Files.deleteIfExists(dir);
        }
    }
}
