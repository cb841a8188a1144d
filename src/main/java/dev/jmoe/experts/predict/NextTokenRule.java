package dev.jmoe.experts.predict;

/**
 * How a shadow picks the token it runs next before the main model has sampled it. OD-MoE's shadow decodes
 * on its own and is corrected by token alignment; a shadow that applies the main model's sampling rule to
 * its own logits runs the main model's token whenever the two models' logits agree on it.
 */
@FunctionalInterface
public interface NextTokenRule {
    /** The token for position {@code pos}, given the shadow's logits after position {@code pos − 1}. */
    int next(int pos, float[] logits);

    /** Greedy: the most likely token (lowest id on ties, as the greedy sampler picks). */
    NextTokenRule ARGMAX = (pos, logits) -> {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    };

    /**
     * Teacher forcing: the main model's "sampler" reads the next token of a text, so a shadow running the
     * same rule reads it too; past the text's end it falls back to greedy.
     */
    static NextTokenRule text(int[] tokens) {
        int[] copy = tokens.clone();
        return (pos, logits) -> pos >= 0 && pos < copy.length ? copy[pos] : ARGMAX.next(pos, logits);
    }
}
