package dev.jmoe.experts.cache;

import dev.jmoe.experts.predict.Ranking;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.model.PartialOutputHook;
import dev.jmoe.tensor.Kernels;

/**
 * SMoE's next-layer prefetch: in a decode step, once layer l has computed the experts that were in fast memory, its
 * approximate output — the residual plus those experts' weighted outputs — is carried through layer l+1's attention
 * input (its attn_norm; the attention itself is skipped) and router, and of the predicted ranking only the top-score
 * experts are prefetched: those SMoE's substitution would never replace (score at least (1+α)·S, S the predicted
 * (k+1)-th score; the top expert always), since a low-score miss may be substituted and need no load at all. With α = 0
 * that is the whole predicted top-k.
 *
 * <p>Against the {@code gate} rule (layer l+1's router after its ffn_norm on layer l's residual before the MoE output,
 * predicted at the start of layer l's MoE block) it predicts from a later point — after the hits are computed, so
 * nearer the next layer's real router input but later — and asks for fewer experts when α > 0. The last layer has no
 * next layer in the token: nothing is prefetched there. Decode steps only (a prompt batch routes to most experts).
 */
final class ApproximateOutputPrefetch implements PartialOutputHook, AutoCloseable {
    private final InferenceState state;
    private final PartialOutputHook previous;
    private final OffloadedExpertSource source;
    private final Model model;
    private final Hyperparams hp;
    private final double alpha;
    private final float[] y, xn, logits, probs;
    private final int[] ranked, chosen;

    private ApproximateOutputPrefetch(InferenceState state, OffloadedExpertSource source, double alpha) {
        this.state = state;
        this.previous = state.partialOutputHook();
        this.source = source;
        this.model = state.model();
        this.hp = model.hyperparams();
        this.alpha = alpha;
        int e = hp.nEmbd();
        this.y = new float[e];
        this.xn = new float[e];
        this.logits = new float[hp.nExpert()];
        this.probs = new float[hp.nExpert()];
        this.ranked = new int[Math.min(hp.nExpert(), hp.nExpertUsed() + 1)];
        this.chosen = new int[hp.nExpertUsed()];
    }

    /** Installs the prefetch on {@code st} in front of a partial-output hook already there. */
    static ApproximateOutputPrefetch install(InferenceState st, OffloadedExpertSource source, double alpha) {
        ApproximateOutputPrefetch p = new ApproximateOutputPrefetch(st, source, alpha);
        st.setPartialOutputHook(p);
        return p;
    }

    @Override
    public void afterReadyExperts(int layer, int pos, float[] residual, float[] partial, int computed) {
        if (previous != null) previous.afterReadyExperts(layer, pos, residual, partial, computed);
        int next = layer + 1;
        if (next >= hp.nLayer()) return;
        LayerWeights target = model.layer(next);
        if (!target.isMoe()) return;
        for (int i = 0; i < y.length; i++) y[i] = residual[i] + partial[i];
        rmsNorm(y, target.attnNorm(), hp.rmsEps(), xn);
        Kernels.matVec(null, target.router(), xn, 0, logits, 0);
        int n = Ranking.top(logits, 0, logits.length, ranked);
        int k = hp.nExpertUsed();
        // softmax over every expert: the substitution rule compares probabilities
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) max = Math.max(max, v);
        double sum = 0;
        for (int i = 0; i < logits.length; i++) sum += probs[i] = (float) Math.exp(logits[i] - max);
        double kPlusOne = n > k ? probs[ranked[k]] / sum : 0;
        int count = 0;
        for (int j = 0; j < Math.min(k, n); j++) {
            double p = probs[ranked[j]] / sum;
            if (j == 0 || p >= (1 + alpha) * kPlusOne) chosen[count++] = ranked[j];
        }
        source.prefetch(pos, next, chosen, count);
    }

    /** The forward pass's RMS norm (float squares summed in double, float mean). */
    private static void rmsNorm(float[] x, float[] w, float eps, float[] out) {
        double s = 0;
        for (float v : x) s += v * v;
        float scale = (float) (1.0 / Math.sqrt((float) (s / x.length) + eps));
        for (int i = 0; i < x.length; i++) out[i] = x[i] * scale * w[i];
    }

    @Override
    public void close() {
        if (state.partialOutputHook() == this) state.setPartialOutputHook(previous);
    }
}
