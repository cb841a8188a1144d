package dev.jmoe.engine;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import dev.jmoe.experts.OffloadReport;
import dev.jmoe.experts.predict.PredictorReport;

/**
 * The figures of one generation, as {@code --stats-json} writes them: prompt and decode speed, time to first
 * token, and — when the session offloads or predicts experts — the expert runtime's counters so far.
 *
 * @param promptTokens     tokens evaluated as the prompt
 * @param promptNanos      time spent on them
 * @param decodeTokens     forward passes after the prompt (the first token comes from the prompt's logits)
 * @param decodeNanos      time from the first sampled token to the end
 * @param generatedTokens  tokens produced
 * @param firstTokenNanos  time from the start to the first sampled token; -1 if none was sampled
 * @param offload          the expert runtime's counters (null when every expert is resident)
 * @param predictor        the predictor's figures (null without a predictor)
 */
@JsonPropertyOrder({"prompt_tokens", "prompt_tokens_per_s", "decode_tokens", "decode_tokens_per_s", "generated_tokens", "ttft_ms",
        "time_per_output_token_ms", "offload", "predictor"})
public record GenerationStats(@JsonProperty("prompt_tokens") int promptTokens,
                              @com.fasterxml.jackson.annotation.JsonIgnore long promptNanos,
                              @JsonProperty("decode_tokens") int decodeTokens,
                              @com.fasterxml.jackson.annotation.JsonIgnore long decodeNanos,
                              @JsonProperty("generated_tokens") int generatedTokens,
                              @com.fasterxml.jackson.annotation.JsonIgnore long firstTokenNanos,
                              @JsonProperty("offload") @JsonInclude(JsonInclude.Include.NON_NULL) OffloadReport offload,
                              @JsonProperty("predictor") @JsonInclude(JsonInclude.Include.NON_NULL) PredictorReport predictor) {
    @JsonProperty("prompt_tokens_per_s")
    public double promptTokensPerSecond() { return promptNanos == 0 ? 0 : promptTokens / (promptNanos / 1e9); }

    @JsonProperty("decode_tokens_per_s")
    public double decodeTokensPerSecond() { return decodeNanos == 0 ? 0 : decodeTokens / (decodeNanos / 1e9); }

    /** Time to first token in milliseconds, or null if no token was sampled. */
    @JsonProperty("ttft_ms")
    public Double ttftMillis() { return firstTokenNanos < 0 ? null : firstTokenNanos / 1e6; }

    /** Milliseconds per decode step, or null if there was none. */
    @JsonProperty("time_per_output_token_ms")
    public Double millisPerToken() { return decodeTokens == 0 ? null : decodeNanos / 1e6 / decodeTokens; }

    /** Three lines for a terminal: prompt speed, decode speed, time to first token. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(java.util.Locale.ROOT, "prompt: %d tokens in %.3f s (%.1f tokens/s)%n", promptTokens, promptNanos / 1e9,
                promptTokensPerSecond()));
        sb.append(String.format(java.util.Locale.ROOT, "decode: %d tokens in %.3f s (%.1f tokens/s, %.2f ms/token)%n", decodeTokens,
                decodeNanos / 1e9, decodeTokensPerSecond(), decodeTokens == 0 ? 0 : decodeNanos / 1e6 / decodeTokens));
        if (firstTokenNanos >= 0) sb.append(String.format(java.util.Locale.ROOT, "time to first token: %.1f ms%n", firstTokenNanos / 1e6));
        return sb.toString();
    }
}
