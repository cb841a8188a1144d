package dev.jmoe.experts.cache;

import dev.jmoe.model.LayerHook;
import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Kernels;

/**
 * SMoE's top-score prefetch: while layer l runs, guess layer l+1's experts and start loading them. The guess
 * comes from a {@link Predictor}; the default applies layer l+1's ffn_norm and router to layer l's residual
 * (the residual changes little from one layer to the next). Decode only: a prompt batch uses most experts.
 */
public final class NextLayerPrefetcher implements LayerHook {
    /** Guesses the experts of the next MoE layer after {@code layer}, most likely first. */
    @FunctionalInterface
    public interface Predictor {
        /**
         * @param residual one token's residual stream before layer {@code layer}'s FFN
         * @param out      receives expert ids of layer {@code target}, best first
         * @return how many ids were written
         */
        int predict(int layer, int target, float[] residual, float[] normed, int[] out);
    }

    private final Model model;
    private final OffloadedExpertSource source;
    private final Predictor predictor;
    private final int count;
    private final int[] out;

    /** Prefetches the top {@code count} predicted experts of the next layer. */
    public NextLayerPrefetcher(Model model, OffloadedExpertSource source, Predictor predictor, int count) {
        if (count < 1) throw new IllegalArgumentException("prefetch count must be at least 1, got " + count);
        this.model = model;
        this.source = source;
        this.predictor = predictor != null ? predictor : new NextGate(model);
        this.count = count;
        this.out = new int[Math.max(count, model.hyperparams().nExpert())];
    }

    @Override
    public void beforeFfn(int layer, int pos, int n, float[] residual, float[] normed) {
        if (n != 1) return;
        int target = layer + 1;
        while (target < model.hyperparams().nLayer() && !model.layer(target).isMoe()) target++;
        if (target >= model.hyperparams().nLayer()) return;
        int got = predictor.predict(layer, target, residual, normed, out);
        source.prefetch(target, out, Math.min(got, count));
    }

    /** The next layer's gate applied to the current residual: the simple predictor SMoE and others use. */
    public static final class NextGate implements Predictor {
        private final Model model;
        private final float[] xn, logits;

        public NextGate(Model model) {
            this.model = model;
            this.xn = new float[model.hyperparams().nEmbd()];
            this.logits = new float[model.hyperparams().nExpert()];
        }

        @Override
        public int predict(int layer, int target, float[] residual, float[] normed, int[] out) {
            LayerWeights lw = model.layer(target);
            int e = xn.length;
            float[] w = lw.ffnNorm();
            double ss = 0;
            for (int i = 0; i < e; i++) ss += residual[i] * residual[i];
            float scale = (float) (1.0 / Math.sqrt(ss / e + model.hyperparams().rmsEps()));
            for (int i = 0; i < e; i++) xn[i] = residual[i] * scale * w[i];
            Kernels.matVec(null, lw.router(), xn, 0, logits, 0);
            // Softmax is monotonic: ranking the logits ranks the probabilities.
            int n = logits.length;
            for (int i = 0; i < n; i++) out[i] = i;
            for (int i = 1; i < n; i++) {
                int v = out[i], j = i;
                while (j > 0 && logits[out[j - 1]] < logits[v]) {
                    out[j] = out[j - 1];
                    j--;
                }
                out[j] = v;
            }
            return n;
        }
    }
}
