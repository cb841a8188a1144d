package dev.jmoe.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Streaming clients of an OpenAI-compatible server (jmoe's or llama.cpp's), for load tests and side-by-side
 * benchmarks: {@code concurrency} clients take requests from one list until it is done, each request streamed, and every
 * stream checked as it arrives (one id, JSON events, a role first for chat, a finish reason, then {@code [DONE]}).
 */
public final class LoadDriver {
    /** One request: a chat message (chat) or a raw prompt (completions), greedy, at most {@code maxTokens}. */
    public record Request(boolean chat, String prompt, int maxTokens, boolean ignoreEos) {}

    /**
     * What one request got.
     *
     * @param ttftNanos        request sent to first text
     * @param completionTokens the server's usage count (or the text events, when it sends no usage)
     * @param error            why the stream is not a complete, well-formed answer (null when it is)
     */
    public record Outcome(int index, String text, int completionTokens, String finishReason, long ttftNanos, long totalNanos, String error) {}

    /** Figures of a run: requests, errors, tokens and time; TTFT percentiles in milliseconds. */
    public record Summary(int requests, int errors, long completionTokens, double wallSeconds, double tokensPerSecond, double ttftP50Millis,
                          double ttftP99Millis) {
        public static Summary of(List<Outcome> outcomes, long wallNanos) {
            int errors = 0;
            long tokens = 0;
            List<Long> ttft = new ArrayList<>();
            for (Outcome o : outcomes) {
                if (o.error() != null) errors++;
                tokens += o.completionTokens();
                if (o.ttftNanos() >= 0) ttft.add(o.ttftNanos());
            }
            Collections.sort(ttft);
            double wall = wallNanos / 1e9;
            return new Summary(outcomes.size(), errors, tokens, wall, tokens / wall, percentile(ttft, 0.50) / 1e6, percentile(ttft, 0.99) / 1e6);
        }
    }

    /** The nearest-rank percentile of sorted values (-1 for none). */
    static double percentile(List<Long> sorted, double p) {
        if (sorted.isEmpty()) return -1;
        int rank = (int) Math.ceil(p * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }

    private final String baseUrl;
    private final String apiKey;
    private final HttpClient http;
    private final Duration timeout;

    /** @param baseUrl the server's address, e.g. {@code http://127.0.0.1:8080} (without /v1) */
    public LoadDriver(String baseUrl, String apiKey, Duration timeout) {
        this.baseUrl = baseUrl;
        this.apiKey = apiKey;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    }

    /** Runs the requests with {@code concurrency} clients; outcomes in request order, and the wall time in {@code wall[0]}. */
    public List<Outcome> run(List<Request> requests, int concurrency, long[] wall) throws InterruptedException {
        Outcome[] out = new Outcome[requests.size()];
        AtomicInteger next = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(concurrency);
        long t0 = System.nanoTime();
        for (int c = 0; c < concurrency; c++) {
            Thread.ofVirtual().name("load-client-" + c).start(() -> {
                try {
                    for (int i; (i = next.getAndIncrement()) < requests.size(); ) out[i] = one(i, requests.get(i));
                } finally {
                    done.countDown();
                }
            });
        }
        done.await();
        if (wall != null) wall[0] = System.nanoTime() - t0;
        return Arrays.asList(out);
    }

    /** One streamed request, checked event by event. */
    public Outcome one(int index, Request r) {
        ObjectNode body = OpenAiRequests.JSON.createObjectNode();
        body.put("model", "any");
        if (r.chat()) {
            ObjectNode m = body.putArray("messages").addObject();
            m.put("role", "user");
            m.put("content", r.prompt());
        } else {
            body.put("prompt", r.prompt());
        }
        body.put("max_tokens", r.maxTokens());
        body.put("temperature", 0);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (r.ignoreEos()) body.put("ignore_eos", true);
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + (r.chat() ? "/v1/chat/completions" : "/v1/completions"))).timeout(timeout)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (apiKey != null) req.header("Authorization", "Bearer " + apiKey);
        long t0 = System.nanoTime();
        long first = -1;
        StringBuilder text = new StringBuilder();
        String id = null, finish = null, error = null;
        int events = 0, usage = -1;
        boolean sawRole = false, sawDone = false;
        try {
            HttpResponse<Stream<String>> res = http.send(req.build(), HttpResponse.BodyHandlers.ofLines());
            try (Stream<String> lines = res.body()) {
                if (res.statusCode() != 200) {
                    return new Outcome(index, "", 0, null, -1, System.nanoTime() - t0, "HTTP " + res.statusCode() + ": " + String.join("\n", lines.toList()));
                }
                for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
                    String line = it.next();
                    if (!line.startsWith("data: ")) continue; // blank separators, comments (keep-alives)
                    String data = line.substring(6);
                    if (sawDone) {
                        error = "data after [DONE]";
                        break;
                    }
                    if (data.equals("[DONE]")) {
                        sawDone = true;
                        continue;
                    }
                    JsonNode ev = OpenAiRequests.JSON.readTree(data);
                    if (ev.has("error")) {
                        error = "error event: " + ev.get("error");
                        break;
                    }
                    String evId = ev.path("id").asText(null);
                    if (id == null) id = evId;
                    else if (evId != null && !evId.equals(id)) error = "two ids in one stream: " + id + ", " + evId;
                    if (ev.hasNonNull("usage")) usage = ev.get("usage").path("completion_tokens").asInt(-1);
                    JsonNode choices = ev.path("choices");
                    if (choices.isEmpty()) continue;
                    JsonNode c = choices.get(0);
                    if (finish != null && error == null) error = "an event after the finish reason";
                    String piece = r.chat() ? c.path("delta").path("content").asText("") : c.path("text").asText("");
                    if (r.chat() && c.path("delta").has("role")) {
                        if (events > 0 && error == null) error = "the role comes after text";
                        sawRole = true;
                    }
                    if (!piece.isEmpty()) {
                        if (first < 0) first = System.nanoTime() - t0;
                        text.append(piece);
                        events++;
                    }
                    if (c.hasNonNull("finish_reason")) finish = c.get("finish_reason").asText();
                }
            }
        } catch (IOException e) {
            error = "I/O: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error = "interrupted";
        } catch (RuntimeException e) {
            error = "bad stream: " + e;
        }
        if (error == null && !sawDone) error = "no [DONE]";
        if (error == null && finish == null) error = "no finish reason";
        if (error == null && r.chat() && !sawRole) error = "no role";
        return new Outcome(index, text.toString(), usage >= 0 ? usage : events, finish, first, System.nanoTime() - t0, error);
    }
}
