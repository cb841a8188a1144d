package dev.jmoe.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.FinishReason;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What a client can send besides well-formed requests: bad JSON, wrong types, missing fields, huge bodies, wrong paths
 * and methods, no key; a full queue; and clients that hang up mid-generation (their slots must come free).
 */
class HttpEdgeCasesTest {
    static TestServer server;
    static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    static final ObjectMapper JSON = new ObjectMapper();
    static final String KEY = "k-123";

    @BeforeAll
    static void start() throws Exception {
        // 2 slots and a queue of 1: a third waiting request is refused; heartbeats every 100 ms notice departed clients fast
        server = new TestServer(new BatchConfig(2, 256, 0, 1, 64), KEY, 256, 100, null);
        // The hang-up tests race 256 tokens against the heartbeat: the tiny model alone can finish them first on a fast
        // machine (seen in a full run). Experts over an emulated SD card (1 ms per load) make a token take milliseconds.
        slow = new TestServer(new BatchConfig(2, 256, 0, 1, 64), KEY, 256, 100,
                ExpertRuntimeConfig.builder().expertMemory("1/4").store("host").link("sdcard").build());
    }

    private static TestServer slow;

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (slow != null) slow.close();
    }

    static HttpResponse<String> send(String method, String path, String body, boolean key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url() + path)).timeout(Duration.ofSeconds(60))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json");
        if (key) b.header("Authorization", "Bearer " + KEY);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Asserts an OpenAI-shaped error with this status (and, if not null, param); returns its message. */
    static String error(HttpResponse<String> r, int status, String param) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertTrue(e != null && e.get("message").isTextual() && e.get("type").isTextual() && e.has("code") && e.has("param"), r.body());
        if (param != null) assertEquals(param, e.get("param").asText(), r.body());
        return e.get("message").asText();
    }

    @Test
    void badRequestsAreFourHundredsNamingWhatIsWrong() throws Exception {
        String chat = "/v1/chat/completions";
        assertTrue(error(send("POST", chat, "{\"messages\": [", true), 400, null).contains("not valid JSON"));
        assertTrue(error(send("POST", chat, "[1, 2]", true), 400, null).contains("JSON object"));
        assertTrue(error(send("POST", chat, "", true), 400, null).contains("no body"));
        assertTrue(error(send("POST", chat, "{}", true), 400, "messages").contains("required"));
        error(send("POST", chat, "{\"messages\": \"hi\"}", true), 400, "messages");
        error(send("POST", chat, "{\"messages\": []}", true), 400, "messages");
        error(send("POST", chat, "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", true), 400, "messages[0].role");
        error(send("POST", chat, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", true), 400, "messages[0].content");
        error(send("POST", chat, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", true), 400, "messages[0].content[0].type");
        String ok = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
        error(send("POST", chat, "{" + ok + ", \"max_tokens\": \"ten\"}", true), 400, "max_tokens");
        error(send("POST", chat, "{" + ok + ", \"max_tokens\": 2.5}", true), 400, "max_tokens");
        error(send("POST", chat, "{" + ok + ", \"max_tokens\": 0}", true), 400, "max_tokens");
        error(send("POST", chat, "{" + ok + ", \"max_tokens\": 99999999999999}", true), 400, "max_tokens");
        error(send("POST", chat, "{" + ok + ", \"stream\": \"yes\"}", true), 400, "stream");
        error(send("POST", chat, "{" + ok + ", \"temperature\": -1}", true), 400, "temperature");
        error(send("POST", chat, "{" + ok + ", \"top_p\": true}", true), 400, "top_p");
        error(send("POST", chat, "{" + ok + ", \"seed\": \"s\"}", true), 400, "seed");
        error(send("POST", chat, "{" + ok + ", \"stop\": 7}", true), 400, "stop");
        error(send("POST", chat, "{" + ok + ", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", true), 400, "stop");
        error(send("POST", chat, "{" + ok + ", \"stop\": \"" + "x".repeat(300) + "\"}", true), 400, "stop");
        error(send("POST", chat, "{" + ok + ", \"model\": 3}", true), 400, "model");
        error(send("POST", chat, "{" + ok + ", \"tools\": [{\"type\": \"function\"}]}", true), 400, "tools");
        error(send("POST", chat, "{" + ok + ", \"logprobs\": true}", true), 400, "logprobs");
        error(send("POST", chat, "{" + ok + ", \"stream_options\": 1}", true), 400, "stream_options");
        error(send("POST", chat, "{" + ok + ", \"response_format\": {\"type\": \"json_object\"}}", true), 400, "response_format");
        error(send("POST", chat, "[".repeat(5000) + "]".repeat(5000), true), 400, null); // deep nesting is refused, not a stack overflow
        // unknown fields are ignored; a request that is otherwise fine still works
        assertEquals(200, send("POST", chat, "{" + ok + ", \"max_tokens\": 2, \"some_new_field\": {\"a\": 1}}", true).statusCode());
        String completions = "/v1/completions";
        error(send("POST", completions, "{}", true), 400, "prompt");
        error(send("POST", completions, "{\"prompt\": [\"a\", \"b\"]}", true), 400, "prompt");
        error(send("POST", completions, "{\"prompt\": [1, -4]}", true), 400, "prompt");
        error(send("POST", completions, "{\"prompt\": {\"x\": 1}}", true), 400, "prompt");
        error(send("POST", completions, "{\"prompt\": \"x\", \"echo\": true}", true), 400, "echo");
        assertEquals(200, send("POST", completions, "{\"prompt\": [1, 2, 3], \"max_tokens\": 2}", true).statusCode());
    }

    @Test
    void sizePathMethodAndKey() throws Exception {
        String big = "{\"prompt\": \"" + "a".repeat(70 * 1024) + "\"}";
        assertTrue(error(send("POST", "/v1/completions", big, true), 413, null).contains("65536 bytes"));
        error(send("GET", "/v1/nothing-here", null, true), 404, null);
        HttpResponse<String> get = send("GET", "/v1/chat/completions", null, true);
        error(get, 405, null);
        assertEquals("POST", get.headers().firstValue("Allow").orElse(""));
        HttpResponse<String> noKey = send("POST", "/v1/chat/completions", "{}", false);
        error(noKey, 401, null);
        assertEquals("invalid_api_key", JSON.readTree(noKey.body()).get("error").get("code").asText());
        error(send("GET", "/v1/models", null, false), 401, null);
        error(send("GET", "/metrics", null, false), 401, null);
        HttpResponse<String> health = send("GET", "/health", null, false);
        assertEquals(200, health.statusCode());
        assertEquals("ok", JSON.readTree(health.body()).get("status").asText());
        HttpResponse<String> page = send("GET", "/", null, false);
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("/v1/chat/completions") && page.headers().firstValue("Content-Type").orElse("").startsWith("text/html"));
        HttpResponse<String> metrics = send("GET", "/metrics", null, true);
        assertEquals(200, metrics.statusCode());
        for (String name : new String[] {"jmoe_http_requests_total{endpoint=\"/v1/completions\",status=\"413\"}", "jmoe_time_to_first_token_seconds_bucket",
                "jmoe_time_per_output_token_seconds_count", "jmoe_queue_depth", "jmoe_slots_busy", "jmoe_generated_tokens_total"}) {
            assertTrue(metrics.body().contains(name), name + " in\n" + metrics.body());
        }
        assertTrue(metrics.body().contains("endpoint=\"other\""), "unknown paths share one label");
    }

    /** A streaming request over a raw socket: returns the socket after the first content event (the caller hangs up). */
    static Socket startStream(String body) throws Exception {
        return startStream(server, body);
    }

    static Socket startStream(TestServer server, String body) throws Exception {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", server.server.port()), 10_000);
        s.setSoTimeout(60_000);
        OutputStream out = s.getOutputStream();
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY + "\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + b.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(b);
        out.flush();
        return s;
    }

    static void awaitIdle() throws InterruptedException {
        awaitIdle(server);
    }

    static void awaitIdle(TestServer server) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while ((server.scheduler.busySlots() > 0 || server.scheduler.queued() > 0) && System.nanoTime() < deadline) Thread.sleep(20);
        assertEquals(0, server.scheduler.busySlots(), "every slot came free");
        assertEquals(0, server.scheduler.kvUsed(), "every KV position came free");
    }

    @Test
    void aClientThatHangsUpMidStreamFreesItsSlot() throws Exception {
        awaitIdle(slow);
        long cancelled = slow.scheduler.metrics().finished(FinishReason.CANCELLED);
        Socket s = startStream(slow, "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story\"}], \"stream\": true, \"max_tokens\": 256,"
                + " \"ignore_eos\": true, \"temperature\": 0}");
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        assertTrue(in.readLine().startsWith("HTTP/1.1 200"));
        int events = 0;
        for (String line; events < 4 && (line = in.readLine()) != null; ) if (line.startsWith("data: ")) events++;
        assertEquals(4, events);
        assertEquals(1, slow.scheduler.busySlots());
        s.close(); // gone mid-stream
        awaitIdle(slow);
        assertEquals(cancelled + 1, slow.scheduler.metrics().finished(FinishReason.CANCELLED));
    }

    @Test
    void aClientThatHangsUpBeforeAWholeAnswerFreesItsSlot() throws Exception {
        awaitIdle(slow);
        long cancelled = slow.scheduler.metrics().finished(FinishReason.CANCELLED);
        Socket s = startStream(slow, "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story\"}], \"max_tokens\": 256, \"ignore_eos\": true}");
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (slow.scheduler.busySlots() == 0 && System.nanoTime() < deadline) Thread.sleep(5);
        s.close();
        awaitIdle(slow);
        assertEquals(cancelled + 1, slow.scheduler.metrics().finished(FinishReason.CANCELLED), "cancelled, not run to its 256 tokens");
    }

    @Test
    void aFullServerSaysRetryLater() throws Exception {
        awaitIdle();
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story\"}], \"max_tokens\": 200, \"ignore_eos\": true}";
        // Eight requests at once against 2 slots and 1 queued place: the first three are taken, the rest arrive while
        // those still decode (200 tokens each) and are refused. Answers are judged only at the end: on a loaded machine
        // the order in which they come back says nothing.
        List<CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            HttpRequest req = HttpRequest.newBuilder(URI.create(server.url() + "/v1/chat/completions")).header("Authorization", "Bearer " + KEY)
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build();
            sent.add(http.sendAsync(req, HttpResponse.BodyHandlers.ofString()));
        }
        HttpResponse<String> refused = null;
        int accepted = 0;
        for (CompletableFuture<HttpResponse<String>> f : sent) {
            HttpResponse<String> r = f.get();
            if (r.statusCode() == 503) {
                if (refused == null) refused = r;
            } else {
                assertEquals(200, r.statusCode(), "an accepted request finishes: " + r.body());
                accepted++;
            }
        }
        assertTrue(refused != null, "2 slots + 1 queued, then refused");
        assertTrue(accepted >= 3, "2 slots and 1 queued place were taken before the refusal, got " + accepted);
        error(refused, 503, null);
        assertEquals("1", refused.headers().firstValue("Retry-After").orElse(""));
        awaitIdle();
    }
}
