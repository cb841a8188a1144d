package dev.jmoe.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.engine.BatchConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * 32 concurrent streaming clients with prompts of mixed lengths against one server (127.0.0.1, bounded in count and
 * time): no errors, no lost or garbled streams, and every answer exactly what the same request gets alone (greedy). The
 * run's p50/p99 time to first token and aggregate tokens/s are printed and written to target/load-test.txt.
 */
class LoadTest {
    static final int CLIENTS = 32;

    /** Prompts of 1 to ~200 tokens cut from the held-out text, chat and completions mixed. */
    static List<LoadDriver.Request> requests() throws Exception {
        String text = Files.readString(Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/test.txt"));
        String[] words = text.split("\\s+");
        List<LoadDriver.Request> out = new ArrayList<>();
        int at = 0;
        for (int i = 0; i < CLIENTS; i++) {
            int n = 1 + (i * 37) % 140; // mixed lengths, a few long ones
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < n; w++) sb.append(w == 0 ? "" : " ").append(words[(at + w) % words.length]);
            at += n;
            out.add(new LoadDriver.Request(i % 3 == 0, sb.toString(), 8 + i % 17, i % 2 == 0));
        }
        return out;
    }

    @Test
    void thirtyTwoConcurrentStreamsAreExactlyTheirSequentialRuns() throws Exception {
        List<LoadDriver.Request> requests = requests();
        try (TestServer server = new TestServer(new BatchConfig(8, 512, 0, CLIENTS, 64), null, 256, 1000, null)) {
            LoadDriver driver = new LoadDriver(server.url(), null, Duration.ofSeconds(300));
            long[] wall = new long[1];
            List<LoadDriver.Outcome> sequential = driver.run(requests, 1, wall);
            LoadDriver.Summary one = LoadDriver.Summary.of(sequential, wall[0]);
            List<LoadDriver.Outcome> concurrent = driver.run(requests, CLIENTS, wall);
            LoadDriver.Summary all = LoadDriver.Summary.of(concurrent, wall[0]);
            for (int i = 0; i < requests.size(); i++) {
                assertNull(sequential.get(i).error(), "sequential " + i);
                assertNull(concurrent.get(i).error(), "concurrent " + i + ": " + concurrent.get(i).error());
                assertEquals(sequential.get(i).text(), concurrent.get(i).text(), "request " + i + ": 32 together vs alone");
                assertEquals(sequential.get(i).completionTokens(), concurrent.get(i).completionTokens());
                assertEquals(sequential.get(i).finishReason(), concurrent.get(i).finishReason());
            }
            assertEquals(0, all.errors());
            assertTrue(server.scheduler.metrics().stepRows() > server.scheduler.metrics().steps() * 2, "steps held many rows");
            String report = String.format(Locale.ROOT, "load test (%d streaming clients, 8 slots, qwen2moe-tiny-q8_0, %d threads, %s):%n"
                            + "  concurrent: %d requests, %d errors, %d tokens in %.2f s = %.1f tokens/s, TTFT p50 %.0f ms, p99 %.0f ms%n"
                            + "  one at a time: %d tokens in %.2f s = %.1f tokens/s, TTFT p50 %.0f ms, p99 %.0f ms%n",
                    CLIENTS, 2, cpu(), all.requests(), all.errors(), all.completionTokens(), all.wallSeconds(), all.tokensPerSecond(), all.ttftP50Millis(),
                    all.ttftP99Millis(), one.completionTokens(), one.wallSeconds(), one.tokensPerSecond(), one.ttftP50Millis(), one.ttftP99Millis());
            System.out.print(report);
            Path target = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("target");
            if (Files.isDirectory(target)) Files.writeString(target.resolve("load-test.txt"), report);
        }
    }

    static String cpu() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).strip();
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }
}
