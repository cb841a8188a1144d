package dev.jmoe.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.generate.ChatMessage;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The chat page at / in headless Chromium, driven over the DevTools protocol (no test dependency beyond the JDK): a
 * message typed into the page streams back the reply the server gives that conversation. Skipped, saying why, when
 * Chromium is not installed ({@code apt-get install chromium}; {@code .ci/run} installs it).
 */
class ChatPageBrowserTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path chromium() {
        String env = System.getenv("JMOE_CHROMIUM");
        for (String c : new String[] {env, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
            if (c != null && Files.isExecutable(Path.of(c))) return Path.of(c);
        }
        return null;
    }

    @Test
    void thePageStreamsTheServersReply() throws Exception {
        Path browser = chromium();
        assumeTrue(browser != null, "Chromium is not installed (apt-get install chromium, or set JMOE_CHROMIUM): the chat page test needs a browser");
        Path profile = Files.createTempDirectory("jmoe-chromium");
        Process chrome = null;
        try (TestServer server = new TestServer(new BatchConfig(2, 256, 0, 8, 64), null, 256, 1000, null)) {
            String want = server.scheduler.submit(server.engine.chatTemplate().encode(server.engine.tokenizer(), List.of(ChatMessage.user("Hello there")), true),
                    GenerationRequest.builder().maxTokens(16).temperature(0).build(), null).await().text();
            chrome = new ProcessBuilder(browser.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile, "--remote-debugging-port=0",
                    server.url() + "/").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            int port = devToolsPort(profile, chrome);
            try (Cdp page = Cdp.connect(pageSocket(port))) {
                page.waitFor("document.readyState === 'complete' && !!document.getElementById('send')", 30);
                page.eval("document.getElementById('temperature').value = '0'; document.getElementById('max-tokens').value = '16';"
                        + " document.getElementById('input').value = 'Hello there'; document.getElementById('send').click(); true");
                page.waitFor("(() => { const m = document.querySelector('.message.assistant'); return !!(m && m.dataset.finish); })()", 120);
                String text = page.eval("document.querySelector('.message.assistant').textContent").asText();
                String finish = page.eval("document.querySelector('.message.assistant').dataset.finish").asText();
                String status = page.eval("document.getElementById('status').textContent").asText();
                assertEquals(want, text, "the page shows the reply the server streams");
                assertEquals("length", finish);
                assertTrue(status.startsWith("done"), status);
                assertEquals("Hello there", page.eval("document.querySelector('.message.user').textContent").asText());
            }
        } finally {
            if (chrome != null) {
                chrome.destroy();
                if (!chrome.waitFor(10, TimeUnit.SECONDS)) chrome.destroyForcibly();
            }
            try (Stream<Path> files = Files.walk(profile)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** The port Chromium chose, from the file it writes into its profile once its DevTools server listens. */
    static int devToolsPort(Path profile, Process chrome) throws Exception {
        Path file = profile.resolve("DevToolsActivePort");
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (!chrome.isAlive()) throw new IllegalStateException("Chromium exited with " + chrome.exitValue() + " before it listened");
            if (Files.exists(file)) {
                List<String> lines = Files.readAllLines(file);
                if (!lines.isEmpty() && !lines.getFirst().isBlank()) return Integer.parseInt(lines.getFirst().strip());
            }
            Thread.sleep(50);
        }
        throw new IllegalStateException("Chromium did not start its DevTools server within 60 s");
    }

    static URI pageSocket(int port) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < deadline) {
            String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list")).build(), HttpResponse.BodyHandlers.ofString()).body();
            for (JsonNode t : JSON.readTree(body)) {
                if ("page".equals(t.path("type").asText()) && t.has("webSocketDebuggerUrl")) return URI.create(t.get("webSocketDebuggerUrl").asText());
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("Chromium opened no page");
    }

    /** A minimal DevTools-protocol client: commands by id, Runtime.evaluate. */
    static final class Cdp implements WebSocket.Listener, AutoCloseable {
        private final Map<Integer, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
        private final AtomicInteger ids = new AtomicInteger();
        private final StringBuilder partial = new StringBuilder();
        private WebSocket socket;

        static Cdp connect(URI uri) throws Exception {
            Cdp c = new Cdp();
            c.socket = HttpClient.newHttpClient().newWebSocketBuilder().buildAsync(uri, c).get(30, TimeUnit.SECONDS);
            return c;
        }

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                try {
                    JsonNode msg = JSON.readTree(partial.toString());
                    CompletableFuture<JsonNode> f = msg.has("id") ? pending.remove(msg.get("id").asInt()) : null;
                    if (f != null) f.complete(msg);
                } catch (Exception e) {
                    pending.values().forEach(f -> f.completeExceptionally(e));
                }
                partial.setLength(0);
            }
            ws.request(1);
            return null;
        }

        /** The value of a JavaScript expression in the page. */
        JsonNode eval(String expression) throws Exception {
            int id = ids.incrementAndGet();
            CompletableFuture<JsonNode> f = new CompletableFuture<>();
            pending.put(id, f);
            ObjectNode cmd = JSON.createObjectNode();
            cmd.put("id", id);
            cmd.put("method", "Runtime.evaluate");
            cmd.putObject("params").put("expression", expression).put("returnByValue", true);
            socket.sendText(cmd.toString(), true).get(10, TimeUnit.SECONDS);
            JsonNode r = f.get(30, TimeUnit.SECONDS);
            if (r.has("error") || r.path("result").has("exceptionDetails")) throw new IllegalStateException("page script failed: " + r);
            return r.path("result").path("result").path("value");
        }

        void waitFor(String condition, int seconds) throws Exception {
            long deadline = System.nanoTime() + seconds * 1_000_000_000L;
            while (System.nanoTime() < deadline) {
                if (eval(condition).asBoolean(false)) return;
                Thread.sleep(100);
            }
            throw new AssertionError("the page did not reach '" + condition + "' within " + seconds + " s");
        }

        @Override
        public void close() {
            socket.sendClose(WebSocket.NORMAL_CLOSURE, "done");
        }
    }
}
