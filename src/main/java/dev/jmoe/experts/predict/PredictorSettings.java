package dev.jmoe.experts.predict;

import dev.jmoe.tensor.GgmlType;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What a predictor is made from, beside the model it follows.
 *
 * @param shadowType   precision of the shadow copy made at load (Q8_0, Q4_0 …); ignored with a shadow file
 * @param shadowModel  another GGUF file of the same model to run as the shadow, or null
 * @param alignment    how often the shadow takes the main model's tokens and KV entries
 * @param margin       shadow runners-up within this relative distance of its k-th expert are predicted too; 0 = exactly k
 * @param historyDecay the history predictor's per-token decay
 */
public record PredictorSettings(GgmlType shadowType, Path shadowModel, Alignment alignment, double margin, double historyDecay) {
    /** A run's default margin: the near ties below it cost a few percent extra loads and close most misses at width k. */
    public static final double DEFAULT_MARGIN = 0.02;

    public static final PredictorSettings DEFAULTS = new PredictorSettings(GgmlType.Q8_0, null, Alignment.EVERY_TOKEN, DEFAULT_MARGIN,
            HistoryPredictor.DEFAULT_DECAY);

    public PredictorSettings {
        if (shadowType == null) shadowType = GgmlType.Q8_0;
        if (alignment == null) alignment = Alignment.EVERY_TOKEN;
        ShadowPredictor.checkMargin(margin);
        if (!(historyDecay >= 0 && historyDecay <= 1)) throw new IllegalArgumentException("--history-decay must be in [0, 1], got " + historyDecay);
    }

    public PredictorSettings withShadowType(GgmlType t) { return new PredictorSettings(t, shadowModel, alignment, margin, historyDecay); }
    public PredictorSettings withShadowModel(Path p) { return new PredictorSettings(shadowType, p, alignment, margin, historyDecay); }
    public PredictorSettings withAlignment(Alignment a) { return new PredictorSettings(shadowType, shadowModel, a, margin, historyDecay); }
    public PredictorSettings withMargin(double m) { return new PredictorSettings(shadowType, shadowModel, alignment, m, historyDecay); }
    public PredictorSettings withHistoryDecay(double d) { return new PredictorSettings(shadowType, shadowModel, alignment, margin, d); }

    /** The shadow's report name: "shadow-q8_0" or "shadow-file", with "+m0.02" appended when asked to show the margin. */
    public String shadowName(boolean showMargin) {
        String base = shadowModel != null ? "shadow-file" : "shadow-" + shadowType.name().toLowerCase(Locale.ROOT);
        return showMargin && margin > 0 ? base + "+m" + BigDecimal.valueOf(margin).stripTrailingZeros().toPlainString() : base;
    }

    /** Parses a shadow precision name (q8_0, q4_0, f16, bf16, f32), with a message naming the flag. */
    public static GgmlType parseShadowType(String t) {
        GgmlType g;
        try {
            g = GgmlType.valueOf(t.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("unknown --shadow type '" + t + "'; use q8_0 or q4_0 (or f16, bf16, f32)");
        }
        if (!dev.jmoe.model.Requantizer.canEncode(g)) throw new IllegalArgumentException("--shadow " + t + ": jmoe cannot encode " + g + " weights");
        return g;
    }
}
