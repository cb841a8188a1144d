package dev.jmoe.server;

import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import java.nio.file.Path;

/** A jmoe server on 127.0.0.1 and a free port, over the bundled trained model; closes everything it opened. */
final class TestServer implements AutoCloseable {
    final Engine engine;
    final BatchScheduler scheduler;
    final OpenAiServer server;

    static Path trained() {
        return Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
    }

    TestServer(BatchConfig batching, String apiKey, int maxTokens, long heartbeatMillis, ExpertRuntimeConfig experts) throws Exception {
        Engine e = Engine.open(EngineConfig.builder(trained()).threads(2).contextSize(batching.maxContext()).warmup(false)
                .experts(experts == null ? ExpertRuntimeConfig.RESIDENT : experts).build());
        BatchScheduler s = null;
        try {
            s = e.newScheduler(batching);
            server = OpenAiServer.start(e, s, new ServerSettings("127.0.0.1", 0, apiKey, "qwen2moe-tiny", 64 * 1024, maxTokens, heartbeatMillis));
        } catch (Exception | Error ex) {
            if (s != null) s.close();
            e.close();
            throw ex;
        }
        engine = e;
        scheduler = s;
    }

    String url() { return server.url(); }

    @Override
    public void close() {
        try {
            server.close();
        } finally {
            try {
                scheduler.close();
            } finally {
                engine.close();
            }
        }
    }
}
