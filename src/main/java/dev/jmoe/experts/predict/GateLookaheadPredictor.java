package dev.jmoe.experts.predict;

import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Kernels;

/**
 * Gate lookahead (the Mixtral-offloading / AdapMoE / HOBBIT family): the residual stream changes little from
 * one layer to the next, so layer {@code l+d}'s router, after that layer's ffn_norm, applied to layer
 * {@code l}'s residual guesses layer {@code l+d}'s experts. Past the last layer the same rule is applied to
 * the next token's layers (the latest residual is all there is), which is a weak guess and is reported as such.
 */
public final class GateLookaheadPredictor implements ExpertPredictor {
    private final Model model;
    private final Hyperparams hp;
    private final float[] residual, xn, logits;
    private int pos = -1, layer = -1;

    public GateLookaheadPredictor(Model model) {
        if (!model.hyperparams().hasExperts()) throw new IllegalArgumentException("gate lookahead needs a mixture-of-experts model");
        this.model = model;
        this.hp = model.hyperparams();
        this.residual = new float[hp.nEmbd()];
        this.xn = new float[hp.nEmbd()];
        this.logits = new float[hp.nExpert()];
    }

    @Override public String name() { return "gate"; }

    @Override
    public void onLayer(int layer, int pos, float[] residual, float[] normed) {
        System.arraycopy(residual, 0, this.residual, 0, this.residual.length);
        this.pos = pos;
        this.layer = layer;
    }

    @Override
    public int predict(int pos, int layer, int distance, int[] out) {
        if (pos != this.pos || layer != this.layer || distance < 1) return 0; // no residual for that point
        LayerWeights target = model.layer(Lookahead.targetLayer(layer, distance, hp.nLayer()));
        if (!target.isMoe()) return 0;
        rmsNorm(residual, target.ffnNorm(), hp.rmsEps(), xn);
        Kernels.matVec(null, target.router(), xn, 0, logits, 0);
        // Softmax is monotonic: ranking the logits ranks the router's probabilities.
        return Ranking.top(logits, 0, logits.length, out);
    }

    /** The forward pass's RMS norm, with the same arithmetic (float squares summed in double, float mean). */
    static void rmsNorm(float[] x, float[] w, float eps, float[] out) {
        int n = out.length;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = x[i];
            sum += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt((float) (sum / n) + eps));
        for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    }
}
