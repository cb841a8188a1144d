package dev.jmoe.engine;

import java.util.List;

/**
 * What to generate: how many tokens, how to sample them (llama.cpp's sampler semantics) and where to stop.
 *
 * @param maxTokens     tokens to generate at most; -1 = until an end-of-generation token or a full context
 * @param temperature   0 = greedy (argmax, lowest id on ties)
 * @param topK          keep the k most likely tokens; 0 = all
 * @param topP          nucleus: the smallest set with this much probability; 1 = off
 * @param minP          drop tokens below this fraction of the best one's probability; 0 = off
 * @param repeatPenalty penalise the last {@code repeatLastN} tokens; 1 = off
 * @param repeatLastN   tokens the repeat penalty looks back over; -1 = the whole history
 * @param seed          seed of the random draws (the same seed gives the same text); null = a random seed
 * @param stop          strings that end the generation when the text reaches one (not included in the result)
 * @param ignoreEos     keep generating past end-of-generation tokens
 */
public record GenerationRequest(int maxTokens, float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                                Long seed, List<String> stop, boolean ignoreEos) {
    /** The most stop strings a request may have, and the longest one (bounds the text held back while streaming). */
    public static final int MAX_STOP_STRINGS = 16, MAX_STOP_LENGTH = 256;

    public GenerationRequest {
        if (maxTokens < -1) throw new IllegalArgumentException("max tokens must be -1 (no limit) or at least 0, got " + maxTokens);
        if (!(Float.isFinite(temperature) && temperature >= 0)) throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0 (0 keeps all), got " + topK);
        if (!(topP >= 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in [0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        if (!(Float.isFinite(repeatPenalty) && repeatPenalty > 0)) throw new IllegalArgumentException("repeat penalty must be a finite number > 0, got " + repeatPenalty);
        if (repeatLastN < -1) throw new IllegalArgumentException("repeat-last-n must be >= -1, got " + repeatLastN);
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (stop.size() > MAX_STOP_STRINGS) throw new IllegalArgumentException("at most " + MAX_STOP_STRINGS + " stop strings, got " + stop.size());
        for (String s : stop) {
            if (s.isEmpty() || s.length() > MAX_STOP_LENGTH) {
                throw new IllegalArgumentException("stop strings must have 1 to " + MAX_STOP_LENGTH + " characters, got " + s.length());
            }
        }
    }

    /** Greedy decoding of at most {@code maxTokens} tokens. */
    public static GenerationRequest greedy(int maxTokens) {
        return builder().maxTokens(maxTokens).temperature(0).build();
    }

    /** llama.cpp's default sampling (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) for at most {@code maxTokens}. */
    public static GenerationRequest sampled(int maxTokens) {
        return builder().maxTokens(maxTokens).build();
    }

    public static Builder builder() { return new Builder(); }

    public Builder toBuilder() {
        return new Builder().maxTokens(maxTokens).temperature(temperature).topK(topK).topP(topP).minP(minP)
                .repeatPenalty(repeatPenalty, repeatLastN).seed(seed).stop(stop).ignoreEos(ignoreEos);
    }

    /** Builds a {@link GenerationRequest}; the defaults are llama.cpp's. */
    public static final class Builder {
        private int maxTokens = 128, topK = 40, repeatLastN = 64;
        private float temperature = 0.8f, topP = 0.95f, minP = 0.05f, repeatPenalty = 1f;
        private Long seed;
        private List<String> stop = List.of();
        private boolean ignoreEos;

        private Builder() {}

        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder temperature(float v) { temperature = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder topP(float v) { topP = v; return this; }
        public Builder minP(float v) { minP = v; return this; }
        public Builder repeatPenalty(float penalty, int lastN) { repeatPenalty = penalty; repeatLastN = lastN; return this; }
        public Builder seed(Long v) { seed = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        public Builder stop(List<String> v) { stop = v; return this; }
        public Builder stop(String... v) { stop = List.of(v); return this; }
        public Builder ignoreEos(boolean v) { ignoreEos = v; return this; }

        public GenerationRequest build() {
            return new GenerationRequest(maxTokens, temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, stop, ignoreEos);
        }
    }
}
