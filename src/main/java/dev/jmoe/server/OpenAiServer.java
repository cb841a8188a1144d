package dev.jmoe.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.Generation;
import dev.jmoe.engine.GenerationResult;
import dev.jmoe.engine.SchedulerBusyException;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.FilterChain;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.RoutingRequest;
import io.helidon.webserver.http.RoutingResponse;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * An OpenAI-compatible HTTP server over a {@link BatchScheduler}: {@code POST /v1/chat/completions} and
 * {@code /v1/completions} (streamed as server-sent events or answered whole), {@code GET /v1/models}, {@code /health},
 * {@code /metrics} (Prometheus text) and a small chat page at {@code /}. A thin shell: requests are checked and turned
 * into prompts and {@link dev.jmoe.engine.GenerationRequest}s ({@link OpenAiRequests}), the scheduler does the rest.
 *
 * <p>Each request runs on a virtual thread of Helidon SE's web server and waits for its generation's tokens; while it
 * waits it writes something harmless to the connection every {@link ServerSettings#heartbeatMillis()} (an SSE comment,
 * or leading whitespace before a JSON answer that takes long), so a client that went away is noticed within that time
 * and its generation cancelled, freeing its slot. Errors are OpenAI's shape: {@code {"error": {"message", "type",
 * "param", "code"}}}.
 */
public final class OpenAiServer implements AutoCloseable {
    /** Held here: java.util.logging keeps loggers only weakly, and a collected one forgets its level. */
    private static final Logger HELIDON_LOG = Logger.getLogger("io.helidon");

    private final Engine engine;
    private final BatchScheduler scheduler;
    private final ServerSettings settings;
    private final HttpMetrics http = new HttpMetrics();
    private final long created = System.currentTimeMillis() / 1000;
    private final byte[] page;
    private final WebServer server;

    private OpenAiServer(Engine engine, BatchScheduler scheduler, ServerSettings settings) {
        this.engine = engine;
        this.scheduler = scheduler;
        this.settings = settings;
        this.page = resource("index.html");
        // Helidon logs its start-up banner, and a warning for every client that leaves mid-answer, through java.util.logging;
        // the server counts those in /metrics and a command prints its own lines
        HELIDON_LOG.setLevel(Level.SEVERE);
        HttpRouting.Builder routing = HttpRouting.builder()
                .addFilter(this::filter)
                .get("/", this::page)
                .get("/index.html", this::page)
                .get("/health", this::health)
                .get("/metrics", this::metrics)
                .get("/v1/models", this::models)
                .post("/v1/chat/completions", (req, res) -> generate(req, res, OpenAiRequests.Kind.CHAT))
                .post("/v1/completions", (req, res) -> generate(req, res, OpenAiRequests.Kind.COMPLETION))
                .any("/v1/chat/completions", this::methodNotAllowed)
                .any("/v1/completions", this::methodNotAllowed)
                .any(this::notFound)
                .error(ApiException.class, (req, res, e) -> error(res, e))
                .error(RuntimeException.class, (req, res, e) -> error(res, new ApiException(500, "server_error", null, null,
                        "the server failed: " + describe(e), 0)));
        this.server = WebServer.builder()
                .host(settings.host())
                .port(settings.port())
                .routing(routing)
                .shutdownGracePeriod(Duration.ofMillis(500))
                .build()
                .start();
    }

    /** Starts listening; the engine and scheduler stay the caller's (close them after this server). */
    public static OpenAiServer start(Engine engine, BatchScheduler scheduler, ServerSettings settings) {
        return new OpenAiServer(engine, scheduler, settings);
    }

    /** The port the server listens on (the one picked when the settings said 0). */
    public int port() { return server.port(); }

    public String url() {
        String host = settings.host().contains(":") ? "[" + settings.host() + "]" : settings.host();
        return "http://" + host + ":" + port();
    }

    @Override
    public void close() {
        server.stop();
    }

    // ---------------------------------------------------------------- routing

    /** The key check (every /v1 route and /metrics), the request counters, and OpenAI-shaped answers to every failure. */
    private void filter(FilterChain chain, RoutingRequest req, RoutingResponse res) {
        String path = req.path().path();
        String endpoint = HttpMetrics.endpoint(path);
        long t0 = System.nanoTime();
        try {
            if (settings.apiKey() != null && (path.startsWith("/v1/") || path.equals("/metrics")) && !authorized(req)) {
                error(res, new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                        "a valid API key is required: send it as 'Authorization: Bearer KEY'", 0));
                return;
            }
            chain.proceed();
        } catch (ApiException e) {
            if (answerable(res)) error(res, e);
        } catch (RuntimeException e) {
            // after part of an answer went out (a stream whose client left), there is nobody to tell
            if (answerable(res)) error(res, new ApiException(500, "server_error", null, null, "the server failed: " + describe(e), 0));
        } finally {
            http.count(endpoint, res.status().code(), System.nanoTime() - t0);
        }
    }

    /** Whether an error can still be the answer: nothing of another answer has gone out yet. */
    private static boolean answerable(ServerResponse res) {
        return !res.isSent() && res.bytesWritten() == 0;
    }

    private boolean authorized(ServerRequest req) {
        String header = req.headers().first(HeaderNames.AUTHORIZATION).orElse("");
        String want = "Bearer " + settings.apiKey();
        // compared in constant time, so the key cannot be guessed byte by byte from response times
        return MessageDigest.isEqual(header.getBytes(StandardCharsets.UTF_8), want.getBytes(StandardCharsets.UTF_8));
    }

    private void page(ServerRequest req, ServerResponse res) {
        res.header(HeaderNames.CONTENT_TYPE, "text/html; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        res.send(page);
    }

    private void health(ServerRequest req, ServerResponse res) {
        ObjectNode o = OpenAiRequests.JSON.createObjectNode();
        o.put("status", "ok");
        o.put("slots_idle", scheduler.config().slots() - scheduler.busySlots());
        o.put("slots_processing", scheduler.busySlots());
        o.put("queued", scheduler.queued());
        json(res, 200, o);
    }

    private void metrics(ServerRequest req, ServerResponse res) {
        res.header(HeaderNames.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
        res.send(PrometheusText.render(scheduler, http).getBytes(StandardCharsets.UTF_8));
    }

    private void models(ServerRequest req, ServerResponse res) {
        ObjectNode o = OpenAiRequests.JSON.createObjectNode();
        o.put("object", "list");
        ObjectNode m = o.putArray("data").addObject();
        m.put("id", settings.modelId());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "jmoe");
        ObjectNode meta = m.putObject("meta");
        meta.put("architecture", engine.info().architecture());
        meta.put("n_ctx", scheduler.config().maxContext());
        meta.put("n_vocab", engine.info().vocabulary());
        meta.put("slots", scheduler.config().slots());
        json(res, 200, o);
    }

    private void methodNotAllowed(ServerRequest req, ServerResponse res) {
        res.header(HeaderNames.ALLOW, "POST");
        throw new ApiException(405, "invalid_request_error", null, "method_not_allowed", req.prologue().method().text() + " " + req.path().path()
                + " is not supported; use POST", 0);
    }

    private void notFound(ServerRequest req, ServerResponse res) {
        throw new ApiException(404, "invalid_request_error", null, "not_found", "no such endpoint: " + req.prologue().method().text() + " "
                + req.path().path() + " (this server has /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics)", 0);
    }

    // ---------------------------------------------------------------- generation

    private void generate(ServerRequest req, ServerResponse res, OpenAiRequests.Kind kind) {
        JsonNode body = OpenAiRequests.parseBody(readBody(req));
        int ctx = scheduler.config().maxContext();
        OpenAiRequests.Parsed p = kind == OpenAiRequests.Kind.CHAT ? OpenAiRequests.chat(body, engine, settings, ctx)
                : OpenAiRequests.completion(body, engine, settings, ctx);
        String id = (kind == OpenAiRequests.Kind.CHAT ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long createdAt = System.currentTimeMillis() / 1000;
        BlockingQueue<Object> events = new LinkedBlockingQueue<>();
        Generation g;
        try {
            g = scheduler.submit(p.prompt(), p.generation(), p.stream() ? (token, text) -> {
                if (!text.isEmpty()) events.add(text);
            } : null);
        } catch (SchedulerBusyException e) {
            throw new ApiException(503, "server_error", null, "server_busy", e.getMessage(), 1);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(null, e.getMessage());
        }
        g.result().whenComplete((r, e) -> events.add(new End(r, e)));
        if (p.stream()) stream(res, p, g, events, id, createdAt);
        else whole(res, p, g, id, createdAt);
    }

    /** The generation's end: its result, or why the run failed under it. */
    private record End(GenerationResult result, Throwable failure) {}

    private void stream(ServerResponse res, OpenAiRequests.Parsed p, Generation g, BlockingQueue<Object> events, String id, long createdAt) {
        boolean chat = p.kind() == OpenAiRequests.Kind.CHAT;
        res.status(Status.OK_200);
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        try (OutputStream out = res.outputStream()) {
            if (chat) {
                ObjectNode first = chunk(p, id, createdAt, "chat.completion.chunk");
                ObjectNode delta = OpenAiRequests.JSON.createObjectNode();
                delta.put("role", "assistant");
                delta.put("content", "");
                choice(first, delta, null, null);
                event(out, first);
            }
            while (true) {
                Object ev = events.poll(settings.heartbeatMillis(), TimeUnit.MILLISECONDS);
                if (ev == null) {
                    out.write(": keep-alive\n\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    continue;
                }
                if (ev instanceof String text) {
                    ObjectNode c = chunk(p, id, createdAt, chat ? "chat.completion.chunk" : "text_completion");
                    if (chat) {
                        ObjectNode delta = OpenAiRequests.JSON.createObjectNode();
                        delta.put("content", text);
                        choice(c, delta, null, null);
                    } else {
                        choice(c, null, text, null);
                    }
                    event(out, c);
                    continue;
                }
                End end = (End) ev;
                if (end.failure() != null) {
                    ObjectNode err = OpenAiRequests.JSON.createObjectNode();
                    ObjectNode e = err.putObject("error");
                    e.put("message", "the generation failed: " + describe(end.failure()));
                    e.put("type", "server_error");
                    e.putNull("param");
                    e.putNull("code");
                    event(out, err);
                } else {
                    ObjectNode last = chunk(p, id, createdAt, chat ? "chat.completion.chunk" : "text_completion");
                    String reason = end.result().finishReason().openAiName();
                    if (chat) choice(last, OpenAiRequests.JSON.createObjectNode(), null, reason);
                    else choice(last, null, "", reason);
                    event(out, last);
                    if (p.includeUsage()) {
                        ObjectNode u = chunk(p, id, createdAt, chat ? "chat.completion.chunk" : "text_completion");
                        u.putArray("choices");
                        u.set("usage", usage(p, end.result()));
                        event(out, u);
                    }
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                return;
            }
        } catch (InterruptedException e) {
            g.cancel();
            Thread.currentThread().interrupt();
        } catch (IOException | RuntimeException e) {
            // the client went away (or the server is stopping): its generation stops at the next step
            g.cancel();
        }
    }

    private void whole(ServerResponse res, OpenAiRequests.Parsed p, Generation g, String id, long createdAt) {
        OutputStream out = null;
        try {
            GenerationResult r;
            while (true) {
                try {
                    r = g.result().get(settings.heartbeatMillis(), TimeUnit.MILLISECONDS);
                    break;
                } catch (TimeoutException e) {
                    // still generating: start the answer with whitespace JSON allows, which shows whether the client is there
                    if (out == null) {
                        res.status(Status.OK_200);
                        res.header(HeaderNames.CONTENT_TYPE, "application/json");
                        out = res.outputStream();
                    }
                    out.write(' ');
                    out.flush();
                }
            }
            ObjectNode o = OpenAiRequests.JSON.createObjectNode();
            boolean chat = p.kind() == OpenAiRequests.Kind.CHAT;
            o.put("id", id);
            o.put("object", chat ? "chat.completion" : "text_completion");
            o.put("created", createdAt);
            o.put("model", settings.modelId());
            o.put("system_fingerprint", "jmoe");
            String reason = r.finishReason().openAiName();
            if (chat) {
                ObjectNode msg = OpenAiRequests.JSON.createObjectNode();
                msg.put("role", "assistant");
                msg.put("content", r.text());
                choice(o, null, null, reason).set("message", msg);
            } else {
                choice(o, null, r.text(), reason);
            }
            o.set("usage", usage(p, r));
            if (out == null) {
                json(res, 200, o);
            } else {
                out.write(OpenAiRequests.JSON.writeValueAsBytes(o));
                out.close();
            }
        } catch (ExecutionException e) {
            ApiException err = new ApiException(500, "server_error", null, null, "the generation failed: " + describe(e.getCause()), 0);
            if (out == null) throw err;
            try {
                out.write(errorBody(err));
                out.close();
            } catch (IOException | RuntimeException ignored) {
                // the client is gone too
            }
        } catch (InterruptedException e) {
            g.cancel();
            Thread.currentThread().interrupt();
        } catch (IOException | UncheckedIOException e) {
            g.cancel();
        } catch (RuntimeException e) {
            g.cancel();
            if (out == null) throw e;
        }
    }

    // ---------------------------------------------------------------- JSON pieces

    private ObjectNode chunk(OpenAiRequests.Parsed p, String id, long createdAt, String object) {
        ObjectNode c = OpenAiRequests.JSON.createObjectNode();
        c.put("id", id);
        c.put("object", object);
        c.put("created", createdAt);
        c.put("model", settings.modelId());
        c.put("system_fingerprint", "jmoe");
        if (p.includeUsage()) c.putNull("usage");
        return c;
    }

    /** Adds the one choice: a chat delta, or a completion's text; with its finish reason (null while going on). */
    private static ObjectNode choice(ObjectNode parent, ObjectNode delta, String text, String finishReason) {
        ArrayNode choices = parent.putArray("choices");
        ObjectNode c = choices.addObject();
        c.put("index", 0);
        if (delta != null) c.set("delta", delta);
        if (text != null) c.put("text", text);
        c.putNull("logprobs");
        if (finishReason == null) c.putNull("finish_reason");
        else c.put("finish_reason", finishReason);
        return c;
    }

    private static ObjectNode usage(OpenAiRequests.Parsed p, GenerationResult r) {
        ObjectNode u = OpenAiRequests.JSON.createObjectNode();
        u.put("prompt_tokens", p.prompt().length);
        u.put("completion_tokens", r.tokens().length);
        u.put("total_tokens", p.prompt().length + r.tokens().length);
        return u;
    }

    private static void event(OutputStream out, ObjectNode o) throws IOException {
        out.write(("data: " + OpenAiRequests.JSON.writeValueAsString(o) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static void json(ServerResponse res, int status, ObjectNode o) {
        res.status(status);
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        try {
            res.send(OpenAiRequests.JSON.writeValueAsBytes(o));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void error(ServerResponse res, ApiException e) {
        res.status(e.status);
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        if (e.retryAfter > 0) res.header(HeaderNames.RETRY_AFTER, Integer.toString(e.retryAfter));
        res.send(errorBody(e));
    }

    private static byte[] errorBody(ApiException e) {
        ObjectNode o = OpenAiRequests.JSON.createObjectNode();
        ObjectNode err = o.putObject("error");
        err.put("message", e.getMessage());
        err.put("type", e.type);
        if (e.param == null) err.putNull("param");
        else err.put("param", e.param);
        if (e.code == null) err.putNull("code");
        else err.put("code", e.code);
        try {
            return OpenAiRequests.JSON.writeValueAsBytes(o);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** The body, at most {@link ServerSettings#maxRequestBytes()} bytes (413 past them, without reading them all). */
    private byte[] readBody(ServerRequest req) {
        int max = settings.maxRequestBytes();
        var length = req.headers().contentLength();
        if (length.isPresent() && length.getAsLong() > max) throw tooLarge(max);
        try (InputStream in = req.content().inputStream()) {
            byte[] b = in.readNBytes(max + 1);
            if (b.length > max) throw tooLarge(max);
            return b;
        } catch (IOException e) {
            throw ApiException.invalid(null, "the request body could not be read: " + e.getMessage());
        }
    }

    private static ApiException tooLarge(int max) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large", "the request body is larger than this server's limit of "
                + max + " bytes (--max-request-bytes)", 0);
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return m == null ? t.getClass().getSimpleName() : m;
    }

    private static byte[] resource(String name) {
        try (InputStream in = OpenAiServer.class.getResourceAsStream(name)) {
            if (in == null) throw new IllegalStateException("the jar lacks the resource " + name);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
