package dev.jmoe.cli;

import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.Engine;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.generate.TextFiles;
import dev.jmoe.server.OpenAiServer;
import dev.jmoe.server.ServerSettings;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe serve}: an OpenAI-compatible HTTP server with continuous batching ({@link OpenAiServer} over a
 * {@link BatchScheduler}). Parsing and printing only; runs until interrupted (Ctrl-C, SIGTERM).
 */
@Command(name = "serve", description = {"Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models,"
        + " /health, /metrics, a chat page at /), decoding up to --parallel requests together.",
        "Point a client at http://HOST:PORT/v1 (any API key unless --api-key is given)."})
final class ServeCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @ArgGroup(validate = false, heading = "%nServer:%n") ServerOptions server = new ServerOptions();
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    /** The server's own flags (names follow llama-server's where one exists). */
    static final class ServerOptions {
        @Option(names = "--host", paramLabel = "ADDRESS", description = "address to listen on (default: ${DEFAULT-VALUE}; 0.0.0.0 exposes the server to the network)")
        String host = "127.0.0.1";

        @Option(names = "--port", paramLabel = "PORT", description = "TCP port (default: ${DEFAULT-VALUE}; 0 picks a free one)")
        int port = 8080;

        @Option(names = "--api-key", paramLabel = "KEY", description = "require 'Authorization: Bearer KEY' on /v1/* and /metrics (the command line is visible"
                + " to other users: prefer --api-key-file or JMOE_API_KEY)")
        String apiKey;

        @Option(names = "--api-key-file", paramLabel = "FILE", description = "read the API key from the first line of FILE")
        Path apiKeyFile;

        @Option(names = {"-np", "--parallel"}, paramLabel = "SLOTS", description = "requests decoded together (slots; default: ${DEFAULT-VALUE})")
        int parallel = 4;

        @Option(names = "--kv-size", paramLabel = "POSITIONS", description = "KV memory shared by the slots, in token positions (default: --parallel ×"
                + " --ctx-size); a request reserves its prompt + max_tokens when it starts")
        Integer kvSize;

        @Option(names = "--queue", paramLabel = "REQUESTS", description = "requests waiting for a slot at most; more get 503 with Retry-After (default: 4 × --parallel,"
                + " at least 16)")
        Integer queue;

        @Option(names = "--prefill-chunk", paramLabel = "TOKENS", description = "prompt tokens processed per step, shared by the prompts in progress, so"
                + " decoding requests are not stalled by a long prompt (default: ${DEFAULT-VALUE})")
        int prefillChunk = 64;

        @Option(names = "--max-tokens", paramLabel = "TOKENS", description = "largest max_tokens a request may ask for, and the default (default: the context size)")
        Integer maxTokens;

        @Option(names = "--max-request-bytes", paramLabel = "BYTES", description = "largest request body (default: ${DEFAULT-VALUE})")
        int maxRequestBytes = 1 << 20;

        @Option(names = "--alias", paramLabel = "NAME", description = "model name /v1/models reports (default: the file name)")
        String alias;
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        String key = apiKey();
        // checked before the model loads
        new ServerSettings(server.host, server.port, key, "x", server.maxRequestBytes, server.maxTokens != null ? server.maxTokens : 1, 1000);
        if (server.prefillChunk < 1) throw new IllegalArgumentException("--prefill-chunk must be at least 1, got " + server.prefillChunk);
        new BatchConfig(server.parallel, 2, 0, server.queue != null ? server.queue : 0, server.prefillChunk); // slots and queue, checked early
        if (server.kvSize != null && server.kvSize < 2) throw new IllegalArgumentException("--kv-size must be at least 2 positions, got " + server.kvSize);
        try (Engine engine = Runs.open(model, memory, prediction, 0, err)) {
            int ctx = engine.contextSize();
            int queue = server.queue != null ? server.queue : Math.max(16, 4 * server.parallel);
            BatchConfig batching = new BatchConfig(server.parallel, ctx, server.kvSize != null ? server.kvSize : 0, queue, server.prefillChunk);
            String id = server.alias != null ? server.alias : engine.info().path().getFileName().toString();
            ServerSettings settings = new ServerSettings(server.host, server.port, key, id, server.maxRequestBytes,
                    server.maxTokens != null ? server.maxTokens : ctx, 1000);
            try (BatchScheduler scheduler = engine.newScheduler(batching); OpenAiServer http = OpenAiServer.start(engine, scheduler, settings)) {
                // registered before the server says where it listens: a signal right after that line still stops it cleanly
                CountDownLatch stop = new CountDownLatch(1), stopped = new CountDownLatch(1);
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    err.println("jmoe serve: stopping");
                    err.flush();
                    stop.countDown();
                    try {
                        stopped.await(5, java.util.concurrent.TimeUnit.SECONDS); // let the server close its connections and the scheduler its slots
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }, "jmoe-serve-stop"));
                long kvBytes = 2L * engine.info().layers() * batching.kvPositions() * engine.model().hyperparams().kvDim() * Float.BYTES;
                err.printf("jmoe serve: %s on %s — OpenAI base URL %s/v1%n", id, http.url(), http.url());
                err.printf("jmoe serve: %d slots, context %d per request, KV memory %d positions (%s), queue %d%s%n", batching.slots(), ctx,
                        batching.kvPositions(), OffloadStats.bytes(kvBytes), batching.queueLimit(), key != null ? ", API key required" : "");
                err.flush();
                try {
                    stop.await();
                } finally {
                    http.close();
                    scheduler.close();
                    engine.close();
                    stopped.countDown();
                }
            }
        }
        return 0;
    }

    private String apiKey() throws IOException {
        if (server.apiKey != null && server.apiKeyFile != null) throw new IllegalArgumentException("give either --api-key or --api-key-file, not both");
        if (server.apiKeyFile != null) {
            // (the file is checked and bounded like every text file jmoe reads: a model given by mistake is refused)
            String first = TextFiles.readText(server.apiKeyFile, "--api-key-file").lines().findFirst().orElse("").strip();
            if (first.isEmpty()) throw new IllegalArgumentException("--api-key-file " + server.apiKeyFile + " is empty");
            return first;
        }
        if (server.apiKey != null) return server.apiKey;
        String env = System.getenv("JMOE_API_KEY");
        return env == null || env.isBlank() ? null : env.strip();
    }
}
