package dev.jmoe.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.cli.Main;
import dev.jmoe.testutil.TestModels;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** The cluster flags fail with one clear line before anything runs; the simulator's schedule behaves as documented. */
class ClusterFlagsTest {
    static String[] run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err));
        return new String[]{String.valueOf(code), out.toString(), err.toString()};
    }

    @Test
    void badClusterFlagsAreOneClearError() {
        String model = TestModels.mixtral().toString();
        String[] r = run("generate", "-m", model, "-p", "hi", "--shadow-node", "127.0.0.1:9");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("jmoe: error: --shadow-node") && r[2].contains("need --workers"), r[2]);
        r = run("generate", "-m", model, "-p", "hi", "--workers", "127.0.0.1");
        assertTrue(r[2].contains("jmoe: error: --workers '127.0.0.1' is not HOST:PORT"), r[2]);
        r = run("generate", "-m", model, "-p", "hi", "--workers", "127.0.0.1:1,127.0.0.1:2", "--group-size", "3");
        assertTrue(r[2].contains("--group-size must be between 1 and the 2 workers"), r[2]);
        // nobody listens on port 1: the worker is named, no stack trace
        r = run("generate", "-m", model, "-p", "hi", "-n", "2", "--workers", "127.0.0.1:1", "-q");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("jmoe: error: worker 127.0.0.1:1 cannot be reached"), r[2]);
        assertTrue(!r[2].contains("\tat "), r[2]);
        r = run("worker", "--listen", "127.0.0.1:99999", "-m", model);
        assertTrue(r[2].contains("port is outside"), r[2]);
        r = run("generate", "-m", model, "-p", "hi", "--workers", "127.0.0.1:1", "--mini-batch", "1");
        assertTrue(r[2].contains("jmoe: error: --mini-batch must be 0 (off) or between 2 and"), r[2]);
        r = run("generate", "-m", model, "-p", "hi", "--workers", "127.0.0.1:1", "--shadow-to-workers");
        assertTrue(r[2].contains("jmoe: error: --shadow-to-workers needs --shadow-node"), r[2]);
        r = run("generate", "-m", model, "-p", "hi", "--mini-batch", "8");
        assertTrue(r[2].contains("need --workers"), r[2]);
        r = run("cluster-bench", "-m", model, "--netns", "fast");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("jmoe: error: --netns 'fast' is not RATE[,DELAY]"), r[2]);
    }

    @Test
    void moreGroupsHideMoreLoadingUntilComputeBounds() {
        double previous = 0;
        for (int workers : new int[]{2, 4, 8, 16}) {
            int groups = workers / 2;
            ClusterSimulator s = new ClusterSimulator(16, 2, workers, 2, 1e-3, 0.5e-3, 40e6, 4e9, 1e-5, 1.25e8, 1e-4, 4096, Math.max(2, groups), 1.0);
            double tps = s.run(64).tokensPerSecond();
            assertTrue(tps > previous, workers + " workers: " + tps + " tok/s should beat " + previous);
            // a layer can never take less than the main node's part plus one expert (the k run in parallel on k workers)
            assertTrue(tps < 1 / (16 * (1e-3 + 0.5e-3)), "bounded by compute: " + tps);
            previous = tps;
        }
        // no prediction at all: every load waits, slower than with perfect recall
        ClusterSimulator perfect = new ClusterSimulator(16, 2, 8, 2, 1e-3, 0.5e-3, 40e6, 4e9, 1e-5, 1.25e8, 1e-4, 4096, 4, 1.0);
        ClusterSimulator blind = new ClusterSimulator(16, 2, 8, 2, 1e-3, 0.5e-3, 40e6, 4e9, 1e-5, 1.25e8, 1e-4, 4096, 4, 0.0);
        assertTrue(blind.run(32).tokensPerSecond() < perfect.run(32).tokensPerSecond());
        assertEquals(1.0, blind.run(32).stallShare(), 1e-9);
    }
}
