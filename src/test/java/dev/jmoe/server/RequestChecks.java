package dev.jmoe.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.GenerationRequest;

/**
 * The server's request decoding (body → JSON → checked request) for tests outside this package, the HTTP fuzz target
 * above all: exactly what {@link OpenAiServer} runs on a body before it submits the request, without a server.
 */
public final class RequestChecks {
    private RequestChecks() {}

    /** A request the server answers with an error: the HTTP status and the message of its OpenAI-shaped body. */
    public static final class Refused extends RuntimeException {
        public final int status;
        public final String param;

        Refused(ApiException e) {
            super(e.getMessage(), e);
            this.status = e.status;
            this.param = e.param;
        }
    }

    /** What a checked request hands to the scheduler. */
    public record Accepted(int[] prompt, GenerationRequest generation, boolean stream, boolean includeUsage) {}

    /**
     * {@code body} sent to /v1/chat/completions ({@code chat}) or /v1/completions of a server on {@code engine} with
     * the given {@code --max-tokens} and context; a request it refuses is a {@link Refused}.
     */
    public static Accepted decode(byte[] body, boolean chat, Engine engine, int maxTokens, int maxContext) {
        ServerSettings settings = new ServerSettings("127.0.0.1", 0, null, "jmoe", 1 << 20, maxTokens, 1000);
        try {
            JsonNode root = OpenAiRequests.parseBody(body);
            OpenAiRequests.Parsed p = chat ? OpenAiRequests.chat(root, engine, settings, maxContext)
                    : OpenAiRequests.completion(root, engine, settings, maxContext);
            return new Accepted(p.prompt(), p.generation(), p.stream(), p.includeUsage());
        } catch (ApiException e) {
            throw new Refused(e);
        }
    }

    /** The JSON mapper the server reads bodies with (its limits included). */
    public static com.fasterxml.jackson.databind.ObjectMapper json() {
        return OpenAiRequests.JSON;
    }
}
