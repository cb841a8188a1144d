package dev.jmoe.cli;

import dev.jmoe.engine.ExpertRuntimeConfig;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Expert-prediction flags of every command that runs a model: which predictor, how far ahead, and its shadow. */
final class PredictionOptions {
    @Option(names = "--predictor", paramLabel = "NAME", description = "predict the experts of the next layers and start their loads early"
            + " (default: none; --policy odmoe: shadow):%n${jmoe.predictors}")
    String predictor;

    @Option(names = "--lookahead", paramLabel = "LAYERS", description = "layers ahead to predict and prefetch (default 2); up to"
            + " twice the layer count: predictions beyond one token's layers are not prefetched, they guide --eviction predictive")
    Integer lookahead;

    @Option(names = "--shadow", paramLabel = "TYPE", description = "the shadow: a copy of the model re-encoded at load, q8_0 or q4_0 (default q8_0)")
    String shadow;

    @Option(names = "--shadow-model", paramLabel = "FILE", description = "the shadow: another GGUF file of the same model (lower precision)")
    Path shadowModel;

    @Option(names = "--align-period", paramLabel = "TOKENS[,KV]",
            description = "shadow re-alignment: take the main token every TOKENS positions, its KV entries every KV positions; 0 = off (default 1,1)")
    String alignPeriod;

    @Option(names = "--shadow-margin", paramLabel = "MARGIN", description = "also predict a shadow runner-up within MARGIN (relative) of its"
            + " k-th expert's probability, a near tie the main router may break the other way; 0 = exactly k (default 0.02)")
    Double shadowMargin;

    @Option(names = "--history-decay", paramLabel = "DECAY",
            description = "history predictor: per-token decay of activation counts, 0 = previous token only, 1 = frequency (default 0.8)")
    Double historyDecay;

    /** Puts these flags into {@code b}. */
    ExpertRuntimeConfig.Builder apply(ExpertRuntimeConfig.Builder b) {
        return b.predictor(predictor).lookahead(lookahead).shadowType(shadow).shadowModel(shadowModel).alignPeriod(alignPeriod)
                .shadowMargin(shadowMargin).historyDecay(historyDecay);
    }
}
