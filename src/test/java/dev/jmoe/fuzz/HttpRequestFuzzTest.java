package dev.jmoe.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.server.RequestChecks;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Request bodies from HTTP clients: any bytes sent to /v1/chat/completions or /v1/completions go through the server's
 * own decoding ({@link RequestChecks}: parse, check every field, render the chat template, tokenize) against the
 * bundled trained model, and either come out as a request the scheduler takes (a non-empty prompt of ids inside the
 * vocabulary that fits the context, a max-tokens within the server's limit) or are refused with a 4xx and a message.
 * Input: first byte bit 0 = chat (1) or completion (0), bit 1 = the rest is the body as it is (0) or a program
 * building a JSON body from the request's real fields with values of any type (1).
 */
class HttpRequestFuzzTest implements SeedCorpus.Seeded {
    /** The server limits the target runs under: small, so that the context and max-tokens checks are reachable. */
    static final int MAX_TOKENS = 64, MAX_CONTEXT = 256;

    private static Engine engine;

    static synchronized Engine engine() {
        if (engine == null) {
            Path model = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
            try {
                engine = Engine.open(EngineConfig.builder(model).threads(1).contextSize(MAX_CONTEXT).warmup(false).build());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return engine;
    }

    @FuzzTest(maxDuration = "5m")
    void httpRequest(byte[] data) {
        if (data.length == 0) return;
        boolean chat = (data[0] & 1) != 0;
        byte[] rest = java.util.Arrays.copyOfRange(data, 1, data.length);
        byte[] body = (data[0] & 2) == 0 ? rest : structured(new FuzzInput(rest), chat);
        Engine e = engine();
        Fuzz.expectOnly(() -> {
            try {
                RequestChecks.Accepted a = RequestChecks.decode(body, chat, e, MAX_TOKENS, MAX_CONTEXT);
                // what BatchScheduler.submit requires of a request (it would refuse it with a 400 otherwise)
                if (a.prompt().length == 0 || a.prompt().length > MAX_CONTEXT) throw new AssertionError("accepted a prompt of " + a.prompt().length + " tokens");
                for (int id : a.prompt()) {
                    if (id < 0 || id >= e.info().vocabulary()) throw new AssertionError("accepted token id " + id + " outside the vocabulary");
                }
                int max = a.generation().maxTokens();
                if (max < 1 || max > MAX_TOKENS) throw new AssertionError("accepted max tokens " + max);
            } catch (RequestChecks.Refused r) {
                if (r.status < 400 || r.status > 499) throw new AssertionError("refused with status " + r.status + ": " + r.getMessage(), r);
                throw r;
            }
        }, RequestChecks.Refused.class);
    }

    // ---------------------------------------------------------------- structured bodies

    /** The fields the server reads (and a few it ignores), each given a value of any type by the program. */
    static final String[] FIELDS = {"model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
            "min_p", "repeat_penalty", "seed", "stop", "stream", "stream_options", "n", "logprobs", "top_logprobs", "echo", "suffix", "best_of",
            "logit_bias", "presence_penalty", "frequency_penalty", "ignore_eos", "response_format", "tools", "functions", "user", "unknown_field"};
    static final String[] KEYS = {"role", "content", "type", "text", "include_usage", "name", "0"};
    static final String[] WORDS = {"system", "developer", "user", "assistant", "tool", "text", "image_url", "json_object", "", "\u0000", "<|im_start|>",
            "{{ raise_exception('x') }}", "{% for m in messages %}{{ m.content }}{% endfor %}"};

    /** A JSON object built from (field, value) pairs; a chat body starts with a valid message, a completion with a prompt. */
    static byte[] structured(FuzzInput in, boolean chat) {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        if (chat) root.putArray("messages").addObject().put("role", "user").put("content", "Hi");
        else root.put("prompt", "Once upon a time");
        while (in.hasMore() && root.size() < 40) root.set(FIELDS[in.u8() % FIELDS.length], value(in, 0));
        try {
            return RequestChecks.json().writeValueAsBytes(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode value(FuzzInput in, int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        int kind = in.u8() % (depth >= 4 ? 8 : 11);
        return switch (kind) {
            case 0 -> f.nullNode();
            case 1 -> f.booleanNode((in.u8() & 1) != 0);
            case 2 -> f.numberNode(in.u8() - 64);
            case 3 -> f.numberNode(in.u32());
            case 4 -> f.numberNode(in.u64());
            case 5 -> {
                double d = Double.longBitsToDouble(in.u64());
                yield Double.isFinite(d) ? f.numberNode(d) : f.numberNode(new BigDecimal("1e400"));
            }
            case 6 -> f.textNode(in.shortString());
            case 7 -> switch (in.u8() % 3) {
                case 0 -> f.textNode(WORDS[in.u8() % WORDS.length]);
                case 1 -> f.numberNode(new BigInteger("123456789012345678901234567890"));
                default -> f.numberNode(in.u8() / 16.0);
            };
            case 8 -> {
                ArrayNode a = f.arrayNode();
                for (int i = in.u8() % 6; i > 0; i--) a.add(value(in, depth + 1));
                yield a;
            }
            case 9 -> {
                ObjectNode o = f.objectNode();
                for (int i = in.u8() % 4; i > 0; i--) o.set(KEYS[in.u8() % KEYS.length], value(in, depth + 1));
                yield o;
            }
            default -> {
                // a message (or content part) of the shape real clients send, with any values
                ArrayNode a = f.arrayNode();
                for (int i = 1 + in.u8() % 3; i > 0; i--) {
                    ObjectNode m = a.addObject();
                    m.put("role", WORDS[in.u8() % WORDS.length]);
                    m.set("content", (in.u8() & 1) == 0 ? f.textNode(in.shortString()) : value(in, depth + 1));
                }
                yield a;
            }
        };
    }

    // ---------------------------------------------------------------- seeds

    @Override
    public Map<String, Map<String, byte[]>> seeds() {
        Map<String, byte[]> s = new LinkedHashMap<>();
        chat(s, "chat", """
                {"model": "jmoe", "messages": [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Hello!"}],
                 "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 42}""");
        chat(s, "chat-stream", """
                {"model": "jmoe", "stream": true, "stream_options": {"include_usage": true},
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell a story"}]}], "max_completion_tokens": 32}""");
        chat(s, "chat-stop-list", """
                {"messages": [{"role": "developer", "content": "Answer in one line."}, {"role": "user", "content": "Count"},
                 {"role": "assistant", "content": null}, {"role": "user", "content": "again"}],
                 "stop": ["\\n", "5", "</s>"], "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "ignore_eos": false, "n": 1,
                 "response_format": {"type": "text"}, "tools": [], "logit_bias": {}}""");
        chat(s, "chat-bad-types", """
                {"messages": {"role": "user"}, "max_tokens": "16", "temperature": true, "stop": [1, 2], "stream": "yes"}""");
        chat(s, "chat-unsupported", """
                {"messages": [{"role": "user", "content": "hi"}], "n": 3, "logprobs": true, "tools": [{"type": "function"}]}""");
        completion(s, "completion", """
                {"model": "jmoe", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "stop": "."}""");
        completion(s, "completion-stream", """
                {"prompt": ["The quick brown fox"], "stream": true, "seed": -1, "best_of": 1, "logprobs": 0}""");
        completion(s, "completion-token-ids", """
                {"prompt": [1, 2, 3, 100, 200], "max_tokens": 4}""");
        completion(s, "completion-nested-token-ids", """
                {"prompt": [[15, 16, 17]], "echo": false}""");
        completion(s, "completion-bad-ids", """
                {"prompt": [-1, 1e3, 99999999999, 2.5], "max_tokens": 0, "top_p": 1.5}""");
        completion(s, "completion-deep-nesting", "{\"prompt\": " + "[".repeat(100) + "]".repeat(100) + "}");
        s.put("completion-not-json", new byte[] {0, '{', '"', 'p', 'r', 'o', 'm', 'p', 't', '"', ':', (byte) 0xff, (byte) 0xfe});
        // structured programs: (field index, value kind, value bytes...)
        s.put("structured-chat-temperature-nan", new byte[] {3, 5, 5, 0, 0, 0, 0, 0, (byte) 0xf8, 0x7f});
        s.put("structured-chat-messages", new byte[] {3, 1, 10, 2, 3, 0, 6, 2, 'h', 'i', 4, 1, 7, 0, 4});
        s.put("structured-completion-prompt-array", new byte[] {2, 2, 8, 3, 2, 10, 2, 20, 3, (byte) 0xff, (byte) 0xff, 0, 0});
        s.put("structured-completion-stop", new byte[] {2, 11, 8, 5, 6, 1, 'x', 6, 0, 7, 0, 0, 6, 1, 'y', 6, 1, 'z'});
        return Map.of("httpRequest", s);
    }

    private static void chat(Map<String, byte[]> s, String name, String json) {
        s.put(name, TokenizerFuzzTest.prefixed(1, json.getBytes(StandardCharsets.UTF_8)));
    }

    private static void completion(Map<String, byte[]> s, String name, String json) {
        s.put(name, TokenizerFuzzTest.prefixed(0, json.getBytes(StandardCharsets.UTF_8)));
    }
}
