package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The expert-memory flags end to end: metrics in --stats and --stats-json, unchanged tokens, one-line errors. */
class OffloadCliTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void makeModel() {
        model = dir.resolve("m.gguf");
        CliTest.Run made = CliTest.jmoe("make-model", "--preset", "tiny-qwen2moe", "--type", "Q8_0", "--layers", "2", "-o", model.toString());
        assertEquals(0, made.code(), made.err());
    }

    @Test
    void generateWithABudgetReportsOffloadMetricsAndTheSameText() throws Exception {
        CliTest.Run resident = CliTest.jmoe("generate", "-m", model.toString(), "-p", "The quick brown fox", "-n", "8", "--temp", "0", "-q", "-t", "1");
        assertEquals(0, resident.code(), resident.err());
        Path json = dir.resolve("stats.json");
        CliTest.Run off = CliTest.jmoe("generate", "-m", model.toString(), "-p", "The quick brown fox", "-n", "8", "--temp", "0", "-q", "-t", "1",
                "--expert-memory", "1/3", "--store", "host", "--link", "2GB/s,20us", "--policy", "lru-ondemand", "--stats", "--stats-json", json.toString());
        assertEquals(0, off.code(), off.err());
        assertEquals(resident.out(), off.out());
        assertTrue(off.err().contains("expert offloading: policy=lru-ondemand"), off.err());
        assertTrue(off.err().contains("misses_loaded") && off.err().contains("hit_rate"), off.err());
        JsonNode o = new ObjectMapper().readTree(json.toFile()).get("offload");
        assertEquals("host", o.get("store").asText());
        long uses = 0;
        for (String k : new String[]{"exact_hits", "substitutions", "prefetch_hits", "misses_loaded", "misses_computed"}) uses += o.get("decode").get(k).asLong();
        assertEquals(o.get("decode").get("expert_uses").asLong(), uses);
        assertTrue(uses > 0);
        assertTrue(o.get("peak_resident_expert_bytes").asLong() <= o.get("budget_bytes").asLong());
        assertTrue(o.get("decode").get("bytes_moved").asLong() > 0);
        assertTrue(o.has("ttft_ms") && o.has("decode_ms_per_token"));
    }

    @Test
    void logitsAreTheResidentOnesWithEveryStore() {
        String[] base = {"logits", "-m", model.toString(), "--tokens", "1,2,3,4,5,6", "--all", "-q", "-t", "1"};
        CliTest.Run resident = CliTest.jmoe(base);
        assertEquals(0, resident.code(), resident.err());
        for (String store : new String[]{"direct", "host", "mmap"}) {
            String[] args = java.util.Arrays.copyOf(base, base.length + 4);
            args[base.length] = "--expert-memory";
            args[base.length + 1] = "1/4";
            args[base.length + 2] = "--store";
            args[base.length + 3] = store;
            CliTest.Run r = CliTest.jmoe(args);
            assertEquals(0, r.code(), r.err());
            // The same kernels on the same bytes, whichever tier they came from. (In one JVM the kernels' lane
            // sums may differ in the last bit between JIT tiers; OffloadExactnessTest checks bit identity.)
            String[] a = resident.out().lines().filter(l -> !l.startsWith("#")).toArray(String[]::new);
            String[] b = r.out().lines().filter(l -> !l.startsWith("#")).toArray(String[]::new);
            assertEquals(a.length, b.length);
            for (int i = 0; i < a.length; i++) {
                String[] x = a[i].split(" "), y = b[i].split(" ");
                assertEquals(x.length, y.length);
                for (int j = 2; j < x.length; j++) {
                    assertEquals(Float.parseFloat(x[j]), Float.parseFloat(y[j]), 1e-4f, store + " line " + i + " logit " + (j - 2));
                }
            }
        }
    }

    @Test
    void badFlagsAreOneLineErrors() {
        String[][] cases = {
                {"--expert-memory", "lots"}, {"--expert-memory", "1/4", "--store", "ssd"}, {"--expert-memory", "1/4", "--link", "fast"},
                {"--expert-memory", "1/4", "--policy", "magic"}, {"--expert-memory", "1/4", "--alpha", "2"},
                {"--expert-memory", "1/4", "--eviction", "belady"}, {"--expert-memory", "10"}, {"--expert-memory", "1/4", "--slow-compute", "0x"}};
        String[] expect = {"--expert-memory", "--store", "--link", "--policy", "--alpha", "belady", "below one expert", "--slow-compute"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = new String[6 + cases[i].length];
            System.arraycopy(new String[]{"logits", "-m", model.toString(), "--tokens", "1,2", "-q"}, 0, args, 0, 6);
            System.arraycopy(cases[i], 0, args, 6, cases[i].length);
            CliTest.Run r = CliTest.jmoe(args);
            assertEquals(1, r.code(), String.join(" ", cases[i]));
            assertTrue(r.err().contains(expect[i]), r.err());
            assertFalse(r.err().contains("\tat "), "stack trace: " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
    }
}
