package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Timings of one generation run; printed by --stats and written by --stats-json (later issues add their metrics). */
final class GenerationStats {
    int promptTokens;
    long promptNanos;
    int decodeTokens;
    int generatedTokens;
    long decodeNanos;
    long firstTokenNanos = -1;
    final Map<String, Object> extra = new LinkedHashMap<>();

    double promptTokensPerSecond() { return promptNanos == 0 ? 0 : promptTokens / (promptNanos / 1e9); }
    double decodeTokensPerSecond() { return decodeNanos == 0 ? 0 : decodeTokens / (decodeNanos / 1e9); }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt_tokens", promptTokens);
        m.put("prompt_tokens_per_s", promptTokensPerSecond());
        m.put("decode_tokens", decodeTokens);
        m.put("decode_tokens_per_s", decodeTokensPerSecond());
        m.put("generated_tokens", generatedTokens);
        m.put("ttft_ms", firstTokenNanos < 0 ? null : firstTokenNanos / 1e6);
        m.put("time_per_output_token_ms", decodeTokens == 0 ? null : decodeNanos / 1e6 / decodeTokens);
        m.putAll(extra);
        return m;
    }

    void print(PrintWriter err) {
        err.printf("prompt: %d tokens in %.3f s (%.1f tokens/s)%n", promptTokens, promptNanos / 1e9, promptTokensPerSecond());
        err.printf("decode: %d tokens in %.3f s (%.1f tokens/s, %.2f ms/token)%n", decodeTokens, decodeNanos / 1e9,
                decodeTokensPerSecond(), decodeTokens == 0 ? 0 : decodeNanos / 1e6 / decodeTokens);
        if (firstTokenNanos >= 0) err.printf("time to first token: %.1f ms%n", firstTokenNanos / 1e6);
        err.flush();
    }

    void writeJson(Path path) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(path.toFile(), toMap());
    }
}
