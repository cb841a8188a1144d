package dev.jmoe.embedding;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.EngineListener;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.FinishReason;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.engine.GenerationResult;
import dev.jmoe.engine.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A program embedding jmoe as a library: it imports nothing but {@code dev.jmoe.engine} (checked by
 * {@link #thisTestImportsOnlyTheEngineApi}), opens the bundled model with an expert budget, generates, chats, and reads
 * the figures.
 */
class EmbeddingTest {
    private static final Path MODEL = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");

    @Test
    void aProgramGeneratesAndChatsThroughTheEngineApiAlone() throws Exception {
        List<String> steps = new ArrayList<>();
        EngineListener listener = new EngineListener() {
            @Override
            public void stepDone(String step) {
                steps.add(step);
            }
        };
        EngineConfig config = EngineConfig.builder(MODEL).threads(2).contextSize(512)
                .experts(ExpertRuntimeConfig.builder().expertMemory("1/3").policy("exact-smoe").store("host").build())
                .build();
        try (Engine engine = Engine.open(config, listener); Session session = engine.newSession()) {
            assertTrue(engine.info().isMixtureOfExperts());
            assertEquals(512, session.contextSize());
            assertTrue(steps.stream().anyMatch(s -> s.startsWith("loading")), steps.toString());

            StringBuilder streamed = new StringBuilder();
            GenerationResult r = session.generate("The history of the town", GenerationRequest.greedy(16), (token, text) -> streamed.append(text));
            assertEquals(streamed.toString(), r.text());
            assertTrue(r.tokens().length > 0 && r.tokens().length <= 16);
            assertNotNull(r.stats().offload(), "an expert budget reports its counters");
            assertTrue(r.stats().decodeTokensPerSecond() > 0);

            session.reset();
            GenerationResult reply = session.chat("What is the history of the town?", GenerationRequest.builder().maxTokens(12).seed(7).build(),
                    (token, text) -> { });
            assertTrue(reply.finishReason() == FinishReason.END_OF_GENERATION || reply.finishReason() == FinishReason.MAX_TOKENS);
            assertEquals(2, session.conversation().size());
            assertFalse(session.conversation().get(1).content().isEmpty() && reply.tokens().length > 1);
        }
    }

    @Test
    void thisTestImportsOnlyTheEngineApi() throws Exception {
        Path self = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("src/test/java/dev/jmoe/embedding/EmbeddingTest.java");
        for (String line : Files.readAllLines(self)) {
            if (!line.startsWith("import ")) continue;
            String what = line.substring(line.startsWith("import static ") ? 14 : 7);
            assertTrue(what.startsWith("dev.jmoe.engine.") || what.startsWith("java.") || what.startsWith("org.junit."), line);
        }
    }
}
