package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jmoe serve} and {@code jmoe serve-bench} from the command line: bad flags fail with one line; a real server starts and stops. */
class ServeCliTest {
    @TempDir Path dir;

    @Test
    void badServerFlagsFailBeforeTheModelLoads() throws Exception {
        Path key = dir.resolve("key");
        Files.writeString(key, "secret\n");
        CliTest.Run both = CliTest.jmoe("serve", "--api-key", "a", "--api-key-file", key.toString());
        assertEquals(1, both.code());
        assertTrue(both.err().contains("either --api-key or --api-key-file"), both.err());
        CliTest.Run port = CliTest.jmoe("serve", "--port", "70000");
        assertTrue(port.code() == 1 && port.err().contains("--port must be between 0 and 65535"), port.err());
        CliTest.Run parallel = CliTest.jmoe("serve", "--parallel", "0");
        assertTrue(parallel.code() == 1 && parallel.err().contains("--parallel must be between 1"), parallel.err());
        CliTest.Run missing = CliTest.jmoe("serve", "--api-key-file", dir.resolve("nope").toString());
        assertTrue(missing.code() == 1 && missing.err().contains("--api-key-file not found: " + dir.resolve("nope")), missing.err());
        Path empty = dir.resolve("empty");
        Files.writeString(empty, "\n");
        CliTest.Run blank = CliTest.jmoe("serve", "--api-key-file", empty.toString());
        assertTrue(blank.code() == 1 && blank.err().contains("is empty"), blank.err());
        CliTest.Run clients = CliTest.jmoe("serve-bench", "--clients", "0");
        assertTrue(clients.code() == 1 && clients.err().contains("--clients"), clients.err());
        for (CliTest.Run r : List.of(both, port, parallel, missing, blank, clients)) {
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertTrue(r.err().startsWith("jmoe: error: "), r.err());
        }
        CliTest.Run help = CliTest.jmoe("serve", "--help");
        assertEquals(0, help.code());
        for (String heading : new String[] {"Server:", "Model:", "Expert memory:", "Prediction:", "--parallel", "--api-key-file", "--expert-memory", "--predictor"}) {
            assertTrue(help.out().contains(heading), heading + " in\n" + help.out());
        }
    }

    /** The command in a JVM of its own: it prints where it listens, answers, and stops cleanly on SIGTERM. */
    @Test
    void aRealServerStartsAnswersAndStops() throws Exception {
        Path key = dir.resolve("key");
        Files.writeString(key, "cli-key\n");
        Path model = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--add-modules",
                "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "serve", "-m", model.toString(), "--port", "0", "--parallel", "2", "-c", "128", "-t", "2", "--no-warmup", "--api-key-file", key.toString(),
                "--alias", "tiny"));
        // stderr to a file: a pipe read while the process exits can lose its last lines (the JDK drains and closes it)
        Path log = dir.resolve("serve.log");
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile()).start();
        try {
            Pattern listening = Pattern.compile("on (http://127\\.0\\.0\\.1:\\d+)");
            String base = null;
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (base == null && System.nanoTime() < deadline && p.isAlive()) {
                Matcher m = listening.matcher(Files.exists(log) ? Files.readString(log) : "");
                if (m.find()) base = m.group(1);
                else Thread.sleep(50);
            }
            assertTrue(base != null, "the server printed where it listens:\n" + Files.readString(log));
            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> models = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).header("Authorization", "Bearer cli-key").build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, models.statusCode(), models.body());
            assertTrue(models.body().contains("\"id\":\"tiny\""), models.body());
            HttpResponse<String> denied = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(401, denied.statusCode());
            p.destroy(); // SIGTERM: the shutdown hook closes the server, the scheduler and the engine
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "stopped on SIGTERM");
            String all = Files.readString(log);
            assertTrue(all.contains("jmoe serve: stopping"), "exit " + p.exitValue() + ": " + all);
            assertTrue(all.contains("2 slots, context 128 per request"), all);
        } finally {
            if (p.isAlive()) p.destroyForcibly();
        }
    }
}
