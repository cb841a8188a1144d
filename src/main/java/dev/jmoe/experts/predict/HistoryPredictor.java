package dev.jmoe.experts.predict;

/**
 * History baseline (MoE-Infinity-like, per sequence): each layer keeps a decayed activation count per expert,
 * {@code score ← decay·score + [expert chosen]} for every token routed through the layer, and predicts the
 * highest scores. {@code decay = 0} predicts exactly the previous token's experts; {@code decay → 1} is plain
 * activation frequency; values between blend the two (at ≤ 0.5 the previous token's experts always win).
 * Uses no state of the current token, so its guess is the same at any distance.
 */
public final class HistoryPredictor implements ExpertPredictor {
    public static final double DEFAULT_DECAY = 0.8;

    private final int nLayer, nExpert;
    private final float decay;
    private final float[] scores;     // [layer][expert]
    private final boolean[] seen;     // layer has been observed at least once

    public HistoryPredictor(int nLayer, int nExpert, double decay) {
        if (nLayer < 1 || nExpert < 1) throw new IllegalArgumentException("history needs at least one layer and expert, got " + nLayer + "x" + nExpert);
        if (!(decay >= 0 && decay <= 1)) throw new IllegalArgumentException("--history-decay must be in [0, 1], got " + decay);
        this.nLayer = nLayer;
        this.nExpert = nExpert;
        this.decay = (float) decay;
        this.scores = new float[nLayer * nExpert];
        this.seen = new boolean[nLayer];
    }

    @Override public String name() { return "history"; }

    @Override
    public void observe(int layer, int pos, int[] experts, int k, float[] probs, int probsOff) {
        int base = layer * nExpert;
        for (int e = 0; e < nExpert; e++) scores[base + e] *= decay;
        for (int j = 0; j < k; j++) scores[base + experts[j]] += 1f;
        seen[layer] = true;
    }

    @Override
    public int predict(int pos, int layer, int distance, int[] out) {
        int target = Lookahead.targetLayer(layer, distance, nLayer);
        if (!seen[target]) return 0;
        return Ranking.top(scores, target * nExpert, nExpert, out);
    }

    /** Current score of (layer, expert), for tests and reports. */
    public float score(int layer, int expert) { return scores[layer * nExpert + expert]; }
}
