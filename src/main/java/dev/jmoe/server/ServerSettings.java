package dev.jmoe.server;

/**
 * How {@link OpenAiServer} listens and what it accepts.
 *
 * @param host            address to bind (default 127.0.0.1: reachable from this machine only)
 * @param port            TCP port; 0 picks a free one
 * @param apiKey          the key clients must send as {@code Authorization: Bearer KEY}; null: no key needed
 * @param modelId         the name /v1/models reports and responses carry
 * @param maxRequestBytes the largest request body accepted
 * @param maxTokens       the largest {@code max_tokens} a request may ask for (and the default when it gives none,
 *                        within the context)
 * @param heartbeatMillis while a request waits for its tokens, how often the server writes something harmless to its
 *                        connection (an SSE comment, or JSON's leading whitespace) to notice clients that went away
 */
public record ServerSettings(String host, int port, String apiKey, String modelId, int maxRequestBytes, int maxTokens, long heartbeatMillis) {
    public ServerSettings {
        if (host == null || host.isBlank()) throw new IllegalArgumentException("--host must name an address");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be between 0 and 65535, got " + port);
        if (apiKey != null && apiKey.isBlank()) throw new IllegalArgumentException("the API key is empty");
        if (modelId == null || modelId.isBlank()) throw new IllegalArgumentException("the model id is empty");
        if (maxRequestBytes < 1024) throw new IllegalArgumentException("--max-request-bytes must be at least 1024, got " + maxRequestBytes);
        if (maxTokens < 1) throw new IllegalArgumentException("--max-tokens must be at least 1, got " + maxTokens);
        if (heartbeatMillis < 10) throw new IllegalArgumentException("the heartbeat must be at least 10 ms, got " + heartbeatMillis);
    }
}
