package dev.jmoe.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.generate.ChatMessage;
import dev.jmoe.generate.ChatTemplateException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Reads OpenAI chat-completion and completion request bodies into a prompt and a {@link GenerationRequest}, checking
 * every field this server knows: a field of the wrong type or out of range, a missing one, or one asking for something
 * the server does not do (several choices, log-probabilities, tools) is a 400 naming the field. Fields it does not
 * know are ignored, as OpenAI's clients send more than any one server uses.
 */
final class OpenAiRequests {
    private OpenAiRequests() {}

    enum Kind { CHAT, COMPLETION }

    /** A checked request: the prompt's tokens, how to generate, how to answer. */
    record Parsed(Kind kind, int[] prompt, GenerationRequest generation, boolean stream, boolean includeUsage) {}

    /** Roles a chat message may have; OpenAI's "developer" is a system message to a chat template. */
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");
    /** At most this many messages in a conversation (the body limit bounds their text). */
    static final int MAX_MESSAGES = 4096;
    /** OpenAI's limit on stop sequences. */
    static final int MAX_STOP = 4;

    static final ObjectMapper JSON = new ObjectMapper();

    static {
        // nesting deeper than any real request is refused while parsing, not by a stack overflow
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).build());
    }

    /** The body as a JSON object, or a 400 saying what is wrong with it. */
    static JsonNode parseBody(byte[] body) {
        if (body.length == 0) throw ApiException.invalid(null, "the request has no body; send a JSON object");
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + firstLine(e.getOriginalMessage()) + location(e));
        } catch (java.io.IOException e) {
            throw ApiException.invalid(null, "the request body could not be read: " + e.getMessage());
        }
        if (root == null || !root.isObject()) throw ApiException.invalid(null, "the request body must be a JSON object");
        return root;
    }

    private static String firstLine(String s) {
        if (s == null) return "malformed";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static String location(JsonProcessingException e) {
        return e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
    }

    // ---------------------------------------------------------------- chat

    static Parsed chat(JsonNode root, Engine engine, ServerSettings settings, int maxContext) {
        common(root);
        JsonNode messages = root.get("messages");
        if (messages == null || messages.isNull()) throw ApiException.invalid("messages", "'messages' is required: the conversation to answer");
        if (!messages.isArray()) throw ApiException.invalid("messages", "'messages' must be an array of messages, got " + kind(messages));
        if (messages.isEmpty()) throw ApiException.invalid("messages", "'messages' must hold at least one message");
        if (messages.size() > MAX_MESSAGES) throw ApiException.invalid("messages", "'messages' holds " + messages.size() + " messages; at most " + MAX_MESSAGES);
        List<ChatMessage> conversation = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) conversation.add(message(messages.get(i), "messages[" + i + "]"));
        if (root.has("logprobs") && root.get("logprobs").asBoolean(false)) unsupported("logprobs", "log-probabilities are not returned by this server");
        if (present(root, "top_logprobs")) unsupported("top_logprobs", "log-probabilities are not returned by this server");
        for (String f : new String[] {"tools", "functions"}) {
            JsonNode t = root.get(f);
            if (t != null && !t.isNull() && !(t.isArray() && t.isEmpty())) unsupported(f, "tool and function calls are not supported by this server");
        }
        JsonNode format = root.get("response_format");
        if (format != null && !format.isNull()) {
            if (!format.isObject()) throw typeError("response_format", "an object", format);
            JsonNode type = format.get("type");
            if (type != null && !"text".equals(type.asText())) unsupported("response_format", "only response_format {\"type\": \"text\"} is supported");
        }
        int[] prompt;
        try {
            prompt = engine.chatTemplate().encode(engine.tokenizer(), conversation, true);
        } catch (ChatTemplateException e) {
            throw ApiException.invalid("messages", "the model's chat template cannot render these messages: " + e.getMessage());
        }
        checkLength(prompt, maxContext, "messages");
        Integer max = maxTokens(root, settings, "max_completion_tokens");
        if (max == null) max = maxTokens(root, settings, "max_tokens");
        return new Parsed(Kind.CHAT, prompt, generation(root, max == null ? settings.maxTokens() : max), stream(root), includeUsage(root));
    }

    private static ChatMessage message(JsonNode m, String where) {
        if (m == null || !m.isObject()) throw ApiException.invalid(where, where + " must be an object with 'role' and 'content', got " + kind(m));
        JsonNode role = m.get("role");
        if (role == null || !role.isTextual()) throw ApiException.invalid(where + ".role", where + ".role must be a string (system, user, assistant, …)");
        String r = role.asText();
        if (!ROLES.contains(r)) throw ApiException.invalid(where + ".role", where + ".role '" + clip(r) + "' is not one of " + ROLES);
        if (r.equals("developer")) r = "system";
        JsonNode content = m.get("content");
        String text;
        if (content == null || content.isNull()) {
            if (!r.equals("assistant")) throw ApiException.invalid(where + ".content", where + ".content is required");
            text = "";
        } else if (content.isTextual()) {
            text = content.asText();
        } else if (content.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < content.size(); i++) {
                JsonNode part = content.get(i);
                String p = where + ".content[" + i + "]";
                if (!part.isObject()) throw ApiException.invalid(p, p + " must be a content part object, got " + kind(part));
                JsonNode type = part.get("type");
                if (type == null || !"text".equals(type.asText())) {
                    throw ApiException.invalid(p + ".type", p + ".type '" + (type == null ? "" : clip(type.asText())) + "' is not supported; only text parts are");
                }
                JsonNode t = part.get("text");
                if (t == null || !t.isTextual()) throw ApiException.invalid(p + ".text", p + ".text must be a string");
                sb.append(t.asText());
            }
            text = sb.toString();
        } else {
            throw ApiException.invalid(where + ".content", where + ".content must be a string or an array of text parts, got " + kind(content));
        }
        return new ChatMessage(r, text);
    }

    // ---------------------------------------------------------------- completions

    static Parsed completion(JsonNode root, Engine engine, ServerSettings settings, int maxContext) {
        common(root);
        JsonNode p = root.get("prompt");
        if (p == null || p.isNull()) throw ApiException.invalid("prompt", "'prompt' is required: the text to continue");
        int[] prompt;
        if (p.isTextual()) {
            prompt = engine.tokenize(p.asText(), true, true);
        } else if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            prompt = engine.tokenize(p.get(0).asText(), true, true);
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
            prompt = tokenIds(p, "prompt", engine.info().vocabulary());
        } else if (p.isArray() && p.size() == 1 && p.get(0).isArray()) {
            prompt = tokenIds(p.get(0), "prompt[0]", engine.info().vocabulary());
        } else if (p.isArray() && p.size() > 1) {
            throw ApiException.invalid("prompt", "'prompt' holds " + p.size() + " prompts; this server answers one prompt per request");
        } else {
            throw ApiException.invalid("prompt", "'prompt' must be a string, an array of one string, or an array of token ids, got " + kind(p));
        }
        if (prompt.length == 0) throw ApiException.invalid("prompt", "the prompt is empty (it has no tokens)");
        checkLength(prompt, maxContext, "prompt");
        if (root.has("echo") && root.get("echo").asBoolean(false)) unsupported("echo", "echoing the prompt is not supported by this server");
        JsonNode logprobs = root.get("logprobs");
        if (logprobs != null && !logprobs.isNull() && !(logprobs.isNumber() && logprobs.asInt() == 0)) {
            unsupported("logprobs", "log-probabilities are not returned by this server");
        }
        if (present(root, "suffix")) unsupported("suffix", "'suffix' (insertion) is not supported by this server");
        JsonNode bestOf = root.get("best_of");
        if (bestOf != null && !bestOf.isNull() && !(bestOf.isIntegralNumber() && bestOf.asInt() == 1)) unsupported("best_of", "only best_of 1 is supported");
        Integer max = maxTokens(root, settings, "max_tokens");
        // OpenAI's completions endpoint defaults to 16 tokens
        return new Parsed(Kind.COMPLETION, prompt, generation(root, max == null ? Math.min(16, settings.maxTokens()) : max), stream(root),
                includeUsage(root));
    }

    private static int[] tokenIds(JsonNode a, String where, int vocab) {
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = a.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt() || t.asInt() < 0 || t.asInt() >= vocab) {
                throw ApiException.invalid(where, where + "[" + i + "] must be a token id in [0, " + vocab + "), got " + clip(t.toString()));
            }
            ids[i] = t.asInt();
        }
        return ids;
    }

    // ---------------------------------------------------------------- fields both endpoints share

    private static void common(JsonNode root) {
        JsonNode model = root.get("model");
        if (model != null && !model.isNull() && !model.isTextual()) throw typeError("model", "a string", model);
        JsonNode n = root.get("n");
        if (n != null && !n.isNull()) {
            if (!n.isIntegralNumber()) throw typeError("n", "an integer", n);
            if (n.asLong() != 1) unsupported("n", "this server returns one choice per request; 'n' must be 1, got " + n.asLong());
        }
        JsonNode user = root.get("user");
        if (user != null && !user.isNull() && !user.isTextual()) throw typeError("user", "a string", user);
        for (String f : new String[] {"presence_penalty", "frequency_penalty"}) {
            Double v = number(root, f, -2, 2);
            if (v != null && v != 0) unsupported(f, "'" + f + "' is not supported by this server (use repeat_penalty)");
        }
        JsonNode bias = root.get("logit_bias");
        if (bias != null && !bias.isNull()) {
            if (!bias.isObject()) throw typeError("logit_bias", "an object", bias);
            if (!bias.isEmpty()) unsupported("logit_bias", "'logit_bias' is not supported by this server");
        }
    }

    private static void checkLength(int[] prompt, int maxContext, String param) {
        if (prompt.length > maxContext) {
            throw ApiException.invalid(param, "context_length_exceeded", "the prompt has " + prompt.length + " tokens but this server's context holds "
                    + maxContext + " (--ctx-size); shorten the " + (param.equals("messages") ? "conversation" : "prompt"));
        }
    }

    private static Integer maxTokens(JsonNode root, ServerSettings settings, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw typeError(field, "an integer", v);
        long n = v.asLong();
        if (n < 1) throw ApiException.invalid(field, "'" + field + "' must be at least 1, got " + n);
        if (n > settings.maxTokens()) {
            throw ApiException.invalid(field, "'" + field + "' is " + n + ", above this server's limit of " + settings.maxTokens() + " (--max-tokens)");
        }
        return (int) n;
    }

    private static GenerationRequest generation(JsonNode root, int maxTokens) {
        GenerationRequest.Builder b = GenerationRequest.builder().maxTokens(maxTokens);
        Double temperature = number(root, "temperature", 0, 2);
        if (temperature != null) b.temperature(temperature.floatValue());
        Double topP = number(root, "top_p", 0, 1);
        if (topP != null) b.topP(topP.floatValue());
        // llama.cpp's extensions, which its clients send
        JsonNode topK = root.get("top_k");
        if (topK != null && !topK.isNull()) {
            if (!topK.isIntegralNumber() || !topK.canConvertToInt() || topK.asInt() < 0) throw typeError("top_k", "an integer >= 0", topK);
            b.topK(topK.asInt());
        }
        Double minP = number(root, "min_p", 0, 1);
        if (minP != null) b.minP(minP.floatValue());
        Double repeat = number(root, "repeat_penalty", 0, 10);
        if (repeat != null) {
            if (repeat <= 0) throw ApiException.invalid("repeat_penalty", "'repeat_penalty' must be above 0, got " + repeat);
            b.repeatPenalty(repeat.floatValue(), 64);
        }
        JsonNode ignoreEos = root.get("ignore_eos");
        if (ignoreEos != null && !ignoreEos.isNull()) {
            if (!ignoreEos.isBoolean()) throw typeError("ignore_eos", "a boolean", ignoreEos);
            b.ignoreEos(ignoreEos.asBoolean());
        }
        JsonNode seed = root.get("seed");
        if (seed != null && !seed.isNull()) {
            if (!seed.isIntegralNumber() || !seed.canConvertToLong()) throw typeError("seed", "an integer", seed);
            b.seed(seed.asLong());
        }
        b.stop(stops(root));
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(null, e.getMessage());
        }
    }

    private static List<String> stops(JsonNode root) {
        JsonNode stop = root.get("stop");
        if (stop == null || stop.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) {
            out.add(stop.asText());
        } else if (stop.isArray()) {
            if (stop.size() > MAX_STOP) throw ApiException.invalid("stop", "'stop' holds " + stop.size() + " sequences; at most " + MAX_STOP);
            for (int i = 0; i < stop.size(); i++) {
                if (!stop.get(i).isTextual()) throw ApiException.invalid("stop", "stop[" + i + "] must be a string, got " + kind(stop.get(i)));
                out.add(stop.get(i).asText());
            }
        } else {
            throw typeError("stop", "a string or an array of strings", stop);
        }
        for (String s : out) {
            if (s.isEmpty()) throw ApiException.invalid("stop", "stop sequences must not be empty");
            if (s.length() > GenerationRequest.MAX_STOP_LENGTH) {
                throw ApiException.invalid("stop", "stop sequences may have at most " + GenerationRequest.MAX_STOP_LENGTH + " characters");
            }
        }
        return out;
    }

    private static boolean stream(JsonNode root) {
        JsonNode s = root.get("stream");
        if (s == null || s.isNull()) return false;
        if (!s.isBoolean()) throw typeError("stream", "a boolean", s);
        return s.asBoolean();
    }

    private static boolean includeUsage(JsonNode root) {
        JsonNode o = root.get("stream_options");
        if (o == null || o.isNull()) return false;
        if (!o.isObject()) throw typeError("stream_options", "an object", o);
        JsonNode u = o.get("include_usage");
        if (u == null || u.isNull()) return false;
        if (!u.isBoolean()) throw typeError("stream_options.include_usage", "a boolean", u);
        return u.asBoolean();
    }

    private static Double number(JsonNode root, String field, double min, double max) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw typeError(field, "a number", v);
        double d = v.asDouble();
        if (!(d >= min && d <= max)) throw ApiException.invalid(field, "'" + field + "' must be between " + fmt(min) + " and " + fmt(max) + ", got " + v);
        return d;
    }

    private static boolean present(JsonNode root, String field) {
        JsonNode v = root.get(field);
        return v != null && !v.isNull();
    }

    private static void unsupported(String field, String message) {
        throw ApiException.invalid(field, "unsupported_parameter", message);
    }

    private static ApiException typeError(String field, String want, JsonNode got) {
        return ApiException.invalid(field, "'" + field + "' must be " + want + ", got " + kind(got));
    }

    /** What a JSON value is, for messages ("a string", "the number 3"). */
    static String kind(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) return "null";
        if (v.isTextual()) return "a string";
        if (v.isBoolean()) return "a boolean";
        if (v.isNumber()) return "the number " + clip(v.asText());
        if (v.isArray()) return "an array";
        if (v.isObject()) return "an object";
        return v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
    }

    private static String clip(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "…";
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
