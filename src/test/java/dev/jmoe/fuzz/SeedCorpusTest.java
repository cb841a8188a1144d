package dev.jmoe.fuzz;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The committed corpus holds exactly the seeds the targets make today, for every fuzz method of every target. */
class SeedCorpusTest {
    @Test
    void committedSeedsAreCurrent() throws Exception {
        Path resources = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("src/test/resources");
        var targets = SeedCorpus.targets();
        assertTrue(targets.size() >= 3, "fuzz targets found: " + targets);
        for (Class<?> c : targets) {
            Map<String, Map<String, byte[]>> seeds = SeedCorpus.instance(c).seeds();
            assertEquals(SeedCorpus.fuzzMethods(c), seeds.keySet().stream().sorted().toList(), c.getSimpleName() + ": seeds for every fuzz method");
            for (var e : seeds.entrySet()) {
                Path d = SeedCorpus.dir(resources, c, e.getKey());
                for (var s : e.getValue().entrySet()) {
                    Path f = d.resolve("seed-" + s.getKey());
                    assertTrue(Files.exists(f), f + " is missing: run the seed writer (docs/hardening.md)");
                    assertArrayEquals(s.getValue(), Files.readAllBytes(f), f + " is stale: run the seed writer (docs/hardening.md)");
                }
            }
        }
    }
}
