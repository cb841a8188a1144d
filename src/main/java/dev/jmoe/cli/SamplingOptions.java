package dev.jmoe.cli;

import dev.jmoe.generate.Sampler;
import dev.jmoe.generate.SamplerConfig;
import picocli.CommandLine.Option;

/** Sampling flags, named as llama.cpp names them. */
final class SamplingOptions {
    @Option(names = "--temp", defaultValue = "0.8", description = "temperature; 0 = greedy (default: ${DEFAULT-VALUE})") float temperature;
    @Option(names = "--top-k", defaultValue = "40", description = "keep the k most likely tokens, 0 = all (default: ${DEFAULT-VALUE})") int topK;
    @Option(names = "--top-p", defaultValue = "0.95", description = "nucleus: keep the smallest set with this much probability, 1 = off (default: ${DEFAULT-VALUE})") float topP;
    @Option(names = "--min-p", defaultValue = "0.05", description = "drop tokens below this fraction of the best one's probability, 0 = off (default: ${DEFAULT-VALUE})") float minP;
    @Option(names = "--repeat-penalty", defaultValue = "1.0", description = "penalise the last --repeat-last-n tokens, 1 = off (default: ${DEFAULT-VALUE})") float repeatPenalty;
    @Option(names = "--repeat-last-n", defaultValue = "64", description = "tokens the repeat penalty looks back over (default: ${DEFAULT-VALUE})") int repeatLastN;
    @Option(names = {"-s", "--seed"}, description = "random seed (default: random); the same seed gives the same text") Long seed;

    SamplerConfig config() {
        long s = seed != null ? seed : new java.security.SecureRandom().nextLong();
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, repeatLastN, s);
    }

    Generation.TokenPicker picker(int vocabSize) {
        Sampler sampler = new Sampler(config());
        return sampler::sample;
    }
}
