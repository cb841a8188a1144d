package dev.jmoe.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.OpenAIServiceException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.engine.GenerationResult;
import dev.jmoe.generate.ChatMessage;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The server through OpenAI's own Java client: chat and completions, whole and streamed, usage, stop sequences, errors.
 * What the server answers is checked against the scheduler driven directly with the same prompt (greedy decoding).
 */
class OpenAiClientTest {
    static TestServer server;
    static OpenAIClient client;
    static final String KEY = "sk-test-jmoe";

    @BeforeAll
    static void start() throws Exception {
        server = new TestServer(new BatchConfig(4, 256, 0, 16, 64), KEY, 200, 1000, null);
        client = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey(KEY).maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        if (client != null) client.close();
        if (server != null) server.close();
    }

    /** What the scheduler generates for this conversation at temperature 0, without the server. */
    static GenerationResult direct(List<ChatMessage> messages, int maxTokens, List<String> stop) throws Exception {
        int[] prompt = server.engine.chatTemplate().encode(server.engine.tokenizer(), messages, true);
        return server.scheduler.submit(prompt, GenerationRequest.builder().maxTokens(maxTokens).temperature(0).stop(stop).build(), null).await();
    }

    static ChatCompletionCreateParams.Builder chat(String user, long maxTokens) {
        return ChatCompletionCreateParams.builder().model("qwen2moe-tiny").addSystemMessage("You are a helpful assistant.").addUserMessage(user)
                .maxCompletionTokens(maxTokens).temperature(0.0);
    }

    static final List<ChatMessage> CONVERSATION = List.of(ChatMessage.system("You are a helpful assistant."), ChatMessage.user("Tell me about the town."));

    @Test
    void chatCompletionIsTheGreedyGeneration() throws Exception {
        GenerationResult want = direct(CONVERSATION, 24, List.of());
        ChatCompletion c = client.chat().completions().create(chat("Tell me about the town.", 24).build());
        assertEquals(1, c.choices().size());
        ChatCompletion.Choice choice = c.choices().getFirst();
        assertEquals(want.text(), choice.message().content().orElseThrow());
        assertEquals(want.finishReason().openAiName(), choice.finishReason().asString());
        var usage = c.usage().orElseThrow();
        assertEquals(want.stats().promptTokens(), usage.promptTokens());
        assertEquals(want.tokens().length, usage.completionTokens());
        assertEquals(usage.promptTokens() + usage.completionTokens(), usage.totalTokens());
        assertEquals("qwen2moe-tiny", c.model());
        assertTrue(c.id().startsWith("chatcmpl-"));
    }

    @Test
    void streamedChatIsTheSameTextInChunksOfOneId() throws Exception {
        GenerationResult want = direct(CONVERSATION, 24, List.of());
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(
                chat("Tell me about the town.", 24).streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build())) {
            s.stream().forEach(chunks::add);
        }
        Set<String> ids = new HashSet<>();
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (ChatCompletionChunk ch : chunks) {
            ids.add(ch.id());
            for (ChatCompletionChunk.Choice c : ch.choices()) {
                c.delta().content().ifPresent(text::append);
                if (c.finishReason().isPresent()) finish = c.finishReason().get().asString();
            }
        }
        assertEquals(1, ids.size(), "every chunk carries the one id");
        assertEquals("assistant", chunks.getFirst().choices().getFirst().delta().role().orElseThrow().asString(), "the first chunk carries the role");
        assertEquals(want.text(), text.toString());
        assertEquals(want.finishReason().openAiName(), finish);
        ChatCompletionChunk last = chunks.getLast();
        assertTrue(last.choices().isEmpty(), "include_usage: a last chunk with the usage and no choices");
        assertEquals(want.tokens().length, last.usage().orElseThrow().completionTokens());
        assertTrue(chunks.size() > 4, "streamed in pieces: " + chunks.size());
    }

    @Test
    void completionsWholeAndStreamed() throws Exception {
        String prompt = "The history of the town";
        GenerationResult want = server.scheduler.submit(server.engine.tokenize(prompt, true, true),
                GenerationRequest.builder().maxTokens(20).temperature(0).build(), null).await();
        CompletionCreateParams params = CompletionCreateParams.builder().model("qwen2moe-tiny").prompt(prompt).maxTokens(20).temperature(0.0).build();
        Completion c = client.completions().create(params);
        assertEquals(want.text(), c.choices().getFirst().text());
        assertEquals(want.finishReason().openAiName(), c.choices().getFirst().finishReason().asString());
        assertEquals(want.tokens().length, c.usage().orElseThrow().completionTokens());
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<Completion> s = client.completions().createStreaming(params)) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> streamed.append(x.text())));
        }
        assertEquals(want.text(), streamed.toString());
    }

    @Test
    void stopSequencesEndTheTextBeforeThem() throws Exception {
        String full = direct(CONVERSATION, 40, List.of()).text();
        // a stop sequence taken from the middle of what the model writes
        int at = Math.min(full.length() - 3, Math.max(2, full.length() / 2));
        String stop = full.substring(at, at + 3);
        assertFalse(stop.isBlank(), "the generation is long enough to cut: '" + full + "'");
        ChatCompletion c = client.chat().completions().create(chat("Tell me about the town.", 40).stop(stop).build());
        String text = c.choices().getFirst().message().content().orElseThrow();
        assertEquals(full.substring(0, full.indexOf(stop)), text);
        assertEquals("stop", c.choices().getFirst().finishReason().asString());
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(chat("Tell me about the town.", 40).stop(stop).build())) {
            s.stream().forEach(ch -> ch.choices().forEach(x -> x.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(text, streamed.toString(), "a stream never shows the stop sequence or anything past it");
    }

    @Test
    void modelsListsTheServedModel() {
        List<Model> models = client.models().list().data();
        assertEquals(1, models.size());
        assertEquals("qwen2moe-tiny", models.getFirst().id());
    }

    @Test
    void errorsComeAsOpenAiErrors() {
        OpenAIClient wrongKey = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("wrong").maxRetries(0).build();
        try {
            UnauthorizedException e = assertThrows(UnauthorizedException.class, () -> wrongKey.chat().completions().create(chat("Hi", 4).build()));
            assertEquals("invalid_api_key", e.code().orElseThrow());
        } finally {
            wrongKey.close();
        }
        BadRequestException t = assertThrows(BadRequestException.class, () -> client.chat().completions().create(chat("Hi", 4).temperature(3.0).build()));
        assertEquals("temperature", t.param().orElseThrow());
        assertEquals("invalid_request_error", t.type().orElseThrow());
        BadRequestException n = assertThrows(BadRequestException.class, () -> client.chat().completions().create(chat("Hi", 4).n(2).build()));
        assertEquals("n", n.param().orElseThrow());
        BadRequestException max = assertThrows(BadRequestException.class, () -> client.chat().completions().create(chat("Hi", 100_000).build()));
        assertTrue(max.getMessage().contains("limit of 200"), max.getMessage());
        String longText = "word ".repeat(400);
        BadRequestException ctx = assertThrows(BadRequestException.class, () -> client.chat().completions().create(chat(longText, 4).build()));
        assertEquals("context_length_exceeded", ctx.code().orElseThrow());
        OpenAIServiceException prompt = assertThrows(BadRequestException.class,
                () -> client.completions().create(CompletionCreateParams.builder().model("m").prompt("").maxTokens(4).build()));
        assertEquals(400, prompt.statusCode());
    }
}
