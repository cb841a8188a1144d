package dev.jmoe.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.generate.ChatMessage;
import dev.jmoe.generate.Sampler;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class EngineTest {
    /** The bundled trained model: real text, a chat template, end-of-text tokens. */
    static Path trained() {
        return Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
    }

    static EngineConfig.Builder config(Path model) {
        return EngineConfig.builder(model).threads(2).contextSize(256).warmup(false);
    }

    @Test
    void greedyGenerationIsTheForwardPassDrivenByHand() throws Exception {
        int[] want;
        String prompt = "The history of the town";
        try (GgufFile f = GgufFile.open(trained()); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f).withPackedWeights();
            InferenceState st = m.newState(256, pool);
            int[] ids = dev.jmoe.generate.Tokenizer.fromGguf(f).encode(prompt, true, false);
            float[] logits = st.eval(ids, 0, ids.length, 256);
            want = new int[12];
            for (int i = 0; i < want.length; i++) {
                want[i] = Sampler.argmax(logits);
                logits = st.next(want[i]);
            }
        }
        try (Engine engine = Engine.open(config(trained()).build()); Session s = engine.newSession()) {
            StringBuilder streamed = new StringBuilder();
            GenerationResult r = s.generate(prompt, GenerationRequest.builder().maxTokens(12).temperature(0).ignoreEos(true).build(),
                    (token, text) -> streamed.append(text));
            assertArrayEquals(want, r.tokens());
            assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
            assertEquals(engine.detokenize(want), r.text());
            assertEquals(r.text(), streamed.toString(), "the listener hears exactly the result's text");
            assertEquals(engine.tokenize(prompt).length, r.stats().promptTokens());
            assertEquals(11, r.stats().decodeTokens(), "the last token is sampled, not fed");
            assertEquals(engine.tokenize(prompt).length + 11, s.position());
        }
    }

    @Test
    void twoEnginesWithDifferentActivationRoundingDoNotInterfere() throws Exception {
        Path q4 = TestModels.mixtral(); // Q4_0: packed integer kernels, 8-bit rounding changes the logits
        int[] tokens = {1, 17, 42, 99, 7, 250, 3, 64};
        try (Engine exact = Engine.open(config(q4).build()); Engine int8 = Engine.open(config(q4).int8Activations(true).build())) {
            float[] exactAlone = logits(exact, tokens), int8Alone = logits(int8, tokens);
            assertFalse(Arrays.equals(exactAlone, int8Alone), "8-bit activations change the logits of a Q4_0 model");
            ExecutorService two = Executors.newFixedThreadPool(2);
            try {
                List<Future<float[]>> runs = new ArrayList<>();
                for (int i = 0; i < 6; i++) {
                    Engine e = i % 2 == 0 ? exact : int8;
                    runs.add(two.submit((Callable<float[]>) () -> logits(e, tokens)));
                }
                for (int i = 0; i < runs.size(); i++) {
                    assertArrayEquals(i % 2 == 0 ? exactAlone : int8Alone, runs.get(i).get(), "run " + i + " while the other engine computes");
                }
            } finally {
                two.shutdownNow();
            }
        }
        assertFalse(dev.jmoe.tensor.Kernels.activationQuantization(), "no setting leaks out of an engine");
    }

    private static float[] logits(Engine e, int[] tokens) throws Exception {
        try (Session s = e.newSession()) {
            float[] all = s.evaluateAll(tokens);
            for (int t : tokens) s.next(t); // decode steps too (single-token paths)
            return all;
        }
    }

    @Test
    void stopStringsTokenLimitsAndCancellationEndAGeneration() throws Exception {
        try (Engine engine = Engine.open(config(trained()).build()); Session s = engine.newSession()) {
            GenerationRequest greedy = GenerationRequest.builder().maxTokens(24).temperature(0).ignoreEos(true).build();
            String full = s.generate("Once upon a time", greedy, TokenListener.NONE).text();
            assertTrue(full.length() > 12, full);
            String stop = full.substring(6, 9);
            int at = full.indexOf(stop);
            s.reset();
            StringBuilder heard = new StringBuilder();
            GenerationResult r = s.generate("Once upon a time", greedy.toBuilder().stop(stop).build(), (t, text) -> heard.append(text));
            assertEquals(FinishReason.STOP_STRING, r.finishReason());
            assertEquals(full.substring(0, at), r.text());
            assertEquals(r.text(), heard.toString(), "the stop string never reaches the listener");

            s.reset();
            int[] count = {0};
            r = s.generate("Once upon a time", greedy, (t, text) -> {
                if (++count[0] == 3) s.cancel();
            });
            assertEquals(FinishReason.CANCELLED, r.finishReason());
            assertEquals(3, r.tokens().length);

            s.reset();
            r = s.generate("Once upon a time", greedy.toBuilder().maxTokens(5).build(), TokenListener.NONE);
            assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
            assertEquals(5, r.tokens().length);
            assertEquals(full.substring(0, r.text().length()), r.text(), "the same greedy text, cut at 5 tokens");
        }
    }

    @Test
    void aContextFullOfPromptIsRefusedAndAFullContextEndsTheGeneration() throws Exception {
        try (Engine engine = Engine.open(config(trained()).contextSize(16).build()); Session s = engine.newSession()) {
            int[] tooLong = new int[17];
            Arrays.fill(tooLong, 5);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.evaluate(tooLong));
            assertTrue(e.getMessage().contains("--ctx-size 16"), e.getMessage());
            GenerationResult r = s.generate(new int[]{1, 2, 3, 4}, GenerationRequest.builder().maxTokens(-1).temperature(0).ignoreEos(true).build(),
                    TokenListener.NONE);
            assertEquals(FinishReason.CONTEXT_FULL, r.finishReason());
            assertEquals(16, s.position());
        }
    }

    @Test
    void chatFeedsOnlyWhatTheCacheDoesNotHoldAndRepliesAsAFreshSession() throws Exception {
        GenerationRequest req = GenerationRequest.builder().maxTokens(8).temperature(0).build();
        try (Engine engine = Engine.open(config(trained()).build())) {
            GenerationResult first, second;
            int fullLength;
            try (Session s = engine.newSession()) {
                s.setSystemPrompt("You are terse.");
                first = s.chat("Hello there", req, TokenListener.NONE);
                second = s.chat("And again", req, TokenListener.NONE);
                assertEquals(5, s.conversation().size(), "system, two user turns, two replies");
                fullLength = engine.chatTemplate().encode(engine.tokenizer(), s.conversation().subList(0, 4), true).length;
            }
            assertTrue(second.stats().promptTokens() < fullLength / 2 + 8,
                    "the second turn feeds its new tokens only: " + second.stats().promptTokens() + " of " + fullLength);
            try (Session fresh = engine.newSession()) {
                GenerationResult again = fresh.chat(List.of(ChatMessage.system("You are terse."), ChatMessage.user("Hello there"),
                        ChatMessage.assistant(first.text().strip()), ChatMessage.user("And again")), req, TokenListener.NONE);
                assertArrayEquals(second.tokens(), again.tokens(), "a reused prefix gives the reply a fresh session gives");
            }
        }
    }

    @Test
    void anOffloadedSessionIsExactAndReportsItsRuntime() throws Exception {
        Path m = TestModels.qwen2moe();
        GenerationRequest req = GenerationRequest.builder().maxTokens(10).temperature(0).ignoreEos(true).build();
        try (Engine engine = Engine.open(config(m).build())) {
            int[] prompt = {1, 5, 9, 200, 17, 33};
            GenerationResult resident;
            try (Session s = engine.newSession()) {
                resident = s.generate(prompt, req, TokenListener.NONE);
                assertNull(resident.stats().offload());
            }
            ExpertRuntimeConfig offload = ExpertRuntimeConfig.builder().expertMemory("1/4").store("direct").policy("exact-smoe").build();
            try (Session s = engine.newSession(SessionOptions.experts(offload))) {
                GenerationResult r = s.generate(prompt, req, TokenListener.NONE);
                assertArrayEquals(resident.tokens(), r.tokens(), "exact-smoe is exact");
                assertNotNull(r.stats().offload());
                assertEquals("exact-smoe", r.stats().offload().settings().policy());
                assertTrue(r.stats().offload().decode().loads() + r.stats().offload().decode().exactHits() > 0);
                JsonNode json = new ObjectMapper().valueToTree(r.stats());
                for (String key : List.of("prompt_tokens", "prompt_tokens_per_s", "decode_tokens", "decode_tokens_per_s", "generated_tokens", "ttft_ms",
                        "time_per_output_token_ms", "offload")) {
                    assertTrue(json.has(key), key + " in " + json);
                }
                for (String key : List.of("policy", "eviction", "store", "budget_bytes", "prefill", "decode", "peak_resident_expert_bytes", "ttft_ms")) {
                    assertTrue(json.get("offload").has(key), key + " in " + json.get("offload"));
                }
                assertTrue(json.get("offload").get("decode").has("bytes_moved"));
            }
        }
    }

    @Test
    void wrongNamesAndValuesAreRefusedWithTheFlagAndTheValidChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().policy("foo").build());
        assertTrue(e.getMessage().contains("--policy") && e.getMessage().contains("exact-smoe") && e.getMessage().contains("odmoe"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().store("usb").build());
        assertTrue(e.getMessage().contains("--store") && e.getMessage().contains("direct, host, mmap"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().link("usb").build());
        assertTrue(e.getMessage().contains("--link") && e.getMessage().contains("emmc"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().eviction("belady").build());
        assertTrue(e.getMessage().contains("offline") && e.getMessage().contains("lru"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().predictor("oracle").build());
        assertTrue(e.getMessage().contains("--predictor") && e.getMessage().contains("shadow"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().expertMemory("lots").build());
        assertTrue(e.getMessage().contains("--expert-memory"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EngineConfig.builder(Path.of("x.gguf")).batchSize(0).build());
        assertTrue(e.getMessage().contains("--batch-size"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().topP(2).build());
        assertTrue(e.getMessage().contains("top-p"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().prefetchRule("oracle").build());
        assertTrue(e.getMessage().contains("--prefetch-rule") && e.getMessage().contains("gate") && e.getMessage().contains("smoe"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ExpertRuntimeConfig.builder().balanceSplit("random").build());
        assertTrue(e.getMessage().contains("--balance-split") && e.getMessage().contains("score or id"), e.getMessage());
        assertEquals(List.of(), ExpertRuntimeConfig.RESIDENT.warnings());
        assertTrue(ExpertRuntimeConfig.builder().policy("smoe").build().warnings().getFirst().contains("without --expert-memory"));
        // scheduling flags that cannot act say so
        assertTrue(ExpertRuntimeConfig.builder().expertMemory("1/4").policy("lru-ondemand").slowOverlap(false).build().warnings().stream()
                .anyMatch(w -> w.contains("without --balance")));
        assertTrue(ExpertRuntimeConfig.builder().expertMemory("1/4").predictor("gate").prefetchRule("smoe").build().warnings().stream()
                .anyMatch(w -> w.contains("the predictor drives the prefetch")));
        assertTrue(ExpertRuntimeConfig.builder().expertMemory("1/4").policy("lru-ondemand").eviction("predictive").build().warnings().stream()
                .anyMatch(w -> w.contains("no predictions")));
        assertTrue(ExpertRuntimeConfig.builder().expertMemory("1/4").policy("exact-smoe").eviction("predictive").build().warnings().isEmpty(),
                "the next-layer prefetch feeds the predictive policy");
    }

    @Test
    void aMissingOrWrongModelFileIsOneClearError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Engine.open(EngineConfig.of(Path.of("/nonexistent/m.gguf"))));
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Engine.open(EngineConfig.of(Path.of(System.getProperty("java.io.tmpdir")))));
        assertTrue(e.getMessage().contains("directory"), e.getMessage());
    }
}
