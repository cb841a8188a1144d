package dev.jmoe.generate;

/**
 * How the next token is chosen from logits (llama.cpp's sampler semantics).
 *
 * @param temperature   divides the logits before the final draw; 0 means greedy (argmax, lowest id on ties)
 * @param topK          keep only the k most likely tokens; 0 disables
 * @param topP          keep the smallest set of most likely tokens whose probability reaches p; 1 disables
 * @param minP          drop tokens less likely than minP times the most likely one; 0 disables
 * @param repeatPenalty penalty for tokens among the last {@code repeatLastN}: positive logits are divided by it,
 *                      negative ones multiplied; 1 disables
 * @param repeatLastN   how many recent tokens the penalty looks at; 0 disables, -1 means the whole history
 * @param seed          seed of the random draws: the same seed and inputs give the same tokens
 */
public record SamplerConfig(float temperature, int topK, float topP, float minP, float repeatPenalty,
                            int repeatLastN, long seed) {

    public SamplerConfig {
        // Messages name the command-line flags (llama.cpp's), not these fields: they are what users read.
        check(Float.isFinite(temperature) && temperature >= 0, "--temp must be a finite number >= 0 (0 = greedy), got " + temperature);
        check(topK >= 0, "--top-k must be >= 0 (0 disables it), got " + topK);
        check(topP >= 0 && topP <= 1, "--top-p must be in [0, 1] (1 disables it), got " + topP);
        check(minP >= 0 && minP <= 1, "--min-p must be in [0, 1] (0 disables it), got " + minP);
        check(Float.isFinite(repeatPenalty) && repeatPenalty > 0, "--repeat-penalty must be a finite number > 0 (1 disables it), got " + repeatPenalty);
        check(repeatLastN >= -1, "--repeat-last-n must be >= -1 (-1 = whole history, 0 disables it), got " + repeatLastN);
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** Always the most likely token. */
    public static SamplerConfig greedy() {
        return new SamplerConfig(0f, 0, 1f, 0f, 1f, 0, 0);
    }

    /** llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repetition penalty. */
    public static SamplerConfig defaults(long seed) {
        return new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1f, 64, seed);
    }

    public SamplerConfig withTemperature(float t) {
        return new SamplerConfig(t, topK, topP, minP, repeatPenalty, repeatLastN, seed);
    }

    public SamplerConfig withTopK(int k) {
        return new SamplerConfig(temperature, k, topP, minP, repeatPenalty, repeatLastN, seed);
    }

    public SamplerConfig withTopP(float p) {
        return new SamplerConfig(temperature, topK, p, minP, repeatPenalty, repeatLastN, seed);
    }

    public SamplerConfig withMinP(float p) {
        return new SamplerConfig(temperature, topK, topP, p, repeatPenalty, repeatLastN, seed);
    }

    public SamplerConfig withRepeatPenalty(float penalty, int lastN) {
        return new SamplerConfig(temperature, topK, topP, minP, penalty, lastN, seed);
    }

    public SamplerConfig withSeed(long s) {
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, repeatLastN, s);
    }
}
