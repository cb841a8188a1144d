package dev.jmoe.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jmoe.engine.BatchConfig;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * OpenAI's Node.js client against the server, as a second independent client: runs tools/openai-node/check.mjs (the
 * script the README names). Skipped, saying why, when Node.js or the installed client is missing
 * ({@code cd tools/openai-node && npm ci}; {@code .ci/run} does it).
 */
class NodeClientTest {
    @Test
    void openAisNodeClientAgrees() throws Exception {
        Path dir = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("tools/openai-node");
        String node = onPath("node");
        assumeTrue(node != null, "Node.js is not installed: the npm openai client check needs it");
        assumeTrue(Files.isDirectory(dir.resolve("node_modules/openai")), "the openai npm package is not installed (cd tools/openai-node && npm ci)");
        try (TestServer server = new TestServer(new BatchConfig(2, 256, 0, 8, 64), "node-key", 256, 1000, null)) {
            ProcessBuilder pb = new ProcessBuilder(node, "check.mjs").directory(dir.toFile()).redirectErrorStream(true);
            pb.environment().put("JMOE_BASE_URL", server.url() + "/v1");
            pb.environment().put("JMOE_API_KEY", "node-key");
            Process p = pb.start();
            boolean finished = p.waitFor(300, TimeUnit.SECONDS);
            if (!finished) p.destroyForcibly();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(finished, "the check finished within 300 s:\n" + out);
            assertEquals(0, p.exitValue(), out);
            assertTrue(out.contains("openai-node check passed"), out);
        }
    }

    static String onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(d, exe);
            if (Files.isExecutable(p)) return p.toString();
        }
        return null;
    }
}
