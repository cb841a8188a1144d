package dev.jmoe.experts.predict;

import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerHook;
import dev.jmoe.model.Routing;
import dev.jmoe.model.RoutingHook;
import dev.jmoe.model.TokenHook;
import java.util.Arrays;
import java.util.List;

/**
 * Measures several predictors on the same run of the main model: at every single-token layer step each
 * predictor predicts the next {@code depth} layers (with the state it has at that point), and when the pass
 * reaches a predicted layer its real routing scores every prediction made for it ({@link PredictionMetrics}).
 * Predictions are only made and scored for single-token steps (decode, or teacher forcing one token at a
 * time); a non-contiguous start (rewind, new prompt) drops predictions still waiting for their layer.
 */
public final class PredictionEvaluator implements TokenHook, LayerHook, RoutingHook, AutoCloseable {
    private final InferenceState state;
    private final List<ExpertPredictor> predictors;
    private final PredictionMetrics[] metrics;
    private final int depth, nLayer, nExpert, ring;
    private final int[] width;
    private final int[][][] pending;   // [predictor][(distance-1)*ring + slot] -> experts
    private final int[][] pendingCount;
    private final long[][] pendingStep; // target step the slot holds, or -1
    private final int[] chosen;
    private final TokenHook prevToken;
    private final LayerHook prevLayer;
    private final RoutingHook prevRouting;
    private int expectedPos = -1;

    /** Installs itself on {@code state}; {@code width} experts are asked of each predictor per predicted layer. */
    public PredictionEvaluator(InferenceState state, List<ExpertPredictor> predictors, int depth, int width) {
        this(state, predictors, depth, java.util.Collections.nCopies(predictors.size(), width).stream().mapToInt(Integer::intValue).toArray());
    }

    /** Like the other constructor with a width per predictor (the most experts it may name per predicted layer). */
    public PredictionEvaluator(InferenceState state, List<ExpertPredictor> predictors, int depth, int[] widths) {
        if (predictors.isEmpty()) throw new IllegalArgumentException("no predictors to evaluate");
        this.state = state;
        this.predictors = List.copyOf(predictors);
        this.nLayer = state.model().hyperparams().nLayer();
        this.nExpert = state.model().hyperparams().nExpert();
        if (nExpert == 0) throw new IllegalArgumentException("expert prediction needs a mixture-of-experts model");
        this.depth = Lookahead.requireDepth(depth, nLayer);
        for (ExpertPredictor p : predictors) p.lookahead(depth);
        if (widths.length != predictors.size()) throw new IllegalArgumentException(widths.length + " widths for " + predictors.size() + " predictors");
        for (int w : widths) if (w < 1 || w > nExpert) throw new IllegalArgumentException("--width must be between 1 and " + nExpert + ", got " + w);
        this.width = widths.clone();
        this.ring = depth + 2;
        int p = predictors.size();
        metrics = new PredictionMetrics[p];
        pending = new int[p][depth * ring][];
        for (int i = 0; i < p; i++) for (int j = 0; j < depth * ring; j++) pending[i][j] = new int[widths[i]];
        pendingCount = new int[p][depth * ring];
        pendingStep = new long[p][depth * ring];
        for (int i = 0; i < p; i++) {
            metrics[i] = new PredictionMetrics(this.predictors.get(i).name(), depth, nLayer);
            Arrays.fill(pendingStep[i], -1);
        }
        chosen = new int[state.model().hyperparams().nExpertUsed()];
        prevToken = state.tokenHook();
        prevLayer = state.layerHook();
        prevRouting = state.routingHook();
        state.setTokenHook(this);
        state.setLayerHook(this);
        state.setRoutingHook(this);
    }

    public List<PredictionMetrics> metrics() { return List.of(metrics); }

    /** Receives every prediction as it is made (to record it beside the routing); ids are only valid during the call. */
    @FunctionalInterface
    public interface Listener {
        void predicted(int predictor, int pos, int layer, int distance, int[] experts, int count);
    }

    private Listener listener;

    /** Tells {@code l} of every prediction made from now on (null: nobody). */
    public void listen(Listener l) { this.listener = l; }

    @Override
    public void onTokens(int pos, int[] tokens, int off, int n) {
        if (prevToken != null) prevToken.onTokens(pos, tokens, off, n);
        if (pos != expectedPos) for (long[] s : pendingStep) Arrays.fill(s, -1);
        expectedPos = pos + n;
        for (ExpertPredictor p : predictors) p.onTokens(pos, tokens, off, n);
    }

    @Override
    public void beforeFfn(int layer, int pos, int n, float[] residual, float[] normed) {
        if (prevLayer != null) prevLayer.beforeFfn(layer, pos, n, residual, normed);
        if (n != 1) return;
        for (int i = 0; i < predictors.size(); i++) {
            ExpertPredictor p = predictors.get(i);
            p.onLayer(layer, pos, residual, normed);
            for (int d = 1; d <= depth; d++) {
                long target = Lookahead.step(pos, layer, nLayer) + d;
                int slot = (d - 1) * ring + (int) (target % ring);
                int[] buf = pending[i][slot];
                int c = p.predict(pos, layer, d, buf);
                pendingCount[i][slot] = dedupe(buf, Math.min(c, width[i]));
                pendingStep[i][slot] = target;
                if (listener != null) listener.predicted(i, pos, layer, d, buf, pendingCount[i][slot]);
            }
        }
    }

    @Override
    public void onRouting(int layer, int pos, int n, float[] probs, Routing routing) {
        if (prevRouting != null) prevRouting.onRouting(layer, pos, n, probs, routing);
        int k = routing.k();
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < k; j++) chosen[j] = routing.expert(t, j);
            if (n == 1) score(layer, pos, k);
            for (ExpertPredictor p : predictors) p.observe(layer, pos + t, chosen, k, probs, t * nExpert);
        }
    }

    private void score(int layer, int pos, int k) {
        long step = Lookahead.step(pos, layer, nLayer);
        for (int i = 0; i < predictors.size(); i++) {
            for (int d = 1; d <= depth; d++) {
                int slot = (d - 1) * ring + (int) (step % ring);
                if (pendingStep[i][slot] != step) continue;
                metrics[i].add(d, layer, pending[i][slot], pendingCount[i][slot], chosen, k);
                pendingStep[i][slot] = -1;
            }
        }
    }

    /** Drops repeated ids (a predictor should not repeat itself, but a repeat must not count twice). */
    private static int dedupe(int[] a, int n) {
        int m = 0;
        for (int i = 0; i < n; i++) if (!Ranking.contains(a, m, a[i])) a[m++] = a[i];
        return m;
    }

    /** Removes the evaluator's hooks (restoring the previous ones); the predictors stay open. */
    @Override
    public void close() {
        state.setTokenHook(prevToken);
        state.setLayerHook(prevLayer);
        state.setRoutingHook(prevRouting);
    }
}
