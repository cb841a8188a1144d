package dev.jmoe.cli;

import dev.jmoe.engine.GenerationRequest;
import java.util.List;
import picocli.CommandLine.Option;

/** Sampling flags, named as llama.cpp names them. */
final class SamplingOptions {
    @Option(names = "--temp", paramLabel = "TEMPERATURE", description = "temperature; 0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature = 0.8f;

    @Option(names = "--top-k", paramLabel = "COUNT", description = "keep the COUNT most likely tokens, 0 = all (default: ${DEFAULT-VALUE})")
    int topK = 40;

    @Option(names = "--top-p", paramLabel = "PROBABILITY", description = "nucleus: keep the smallest set with this much probability, 1 = off (default: ${DEFAULT-VALUE})")
    float topP = 0.95f;

    @Option(names = "--min-p", paramLabel = "FRACTION", description = "drop tokens below this fraction of the best one's probability, 0 = off (default: ${DEFAULT-VALUE})")
    float minP = 0.05f;

    @Option(names = "--repeat-penalty", paramLabel = "PENALTY", description = "penalise the last --repeat-last-n tokens, 1 = off (default: ${DEFAULT-VALUE})")
    float repeatPenalty = 1.0f;

    @Option(names = "--repeat-last-n", paramLabel = "TOKENS", description = "tokens the repeat penalty looks back over, -1 = all (default: ${DEFAULT-VALUE})")
    int repeatLastN = 64;

    @Option(names = {"-s", "--seed"}, paramLabel = "SEED", description = "random seed (default: random); the same seed gives the same text")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "end the generation where the text reaches TEXT (repeatable)")
    List<String> stop;

    /** A request for {@code maxTokens} tokens with these flags; values out of range are named by their flags. */
    GenerationRequest request(int maxTokens, boolean ignoreEos) {
        dev.jmoe.generate.RunChecks.nPredict(maxTokens);
        check(Float.isFinite(temperature) && temperature >= 0, "--temp must be a number >= 0, got " + temperature);
        check(topK >= 0, "--top-k must be >= 0 (0 keeps all), got " + topK);
        check(topP >= 0 && topP <= 1, "--top-p must be in [0, 1], got " + topP);
        check(minP >= 0 && minP <= 1, "--min-p must be in [0, 1], got " + minP);
        check(Float.isFinite(repeatPenalty) && repeatPenalty > 0, "--repeat-penalty must be a number > 0, got " + repeatPenalty);
        check(repeatLastN >= -1, "--repeat-last-n must be >= -1, got " + repeatLastN);
        return GenerationRequest.builder().maxTokens(maxTokens).temperature(temperature).topK(topK).topP(topP).minP(minP)
                .repeatPenalty(repeatPenalty, repeatLastN).seed(seed).stop(stop == null ? List.of() : stop).ignoreEos(ignoreEos).build();
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
