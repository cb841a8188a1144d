package dev.jmoe.experts.predict;

import dev.jmoe.model.Batch;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerHook;
import dev.jmoe.model.Routing;
import dev.jmoe.model.RoutingHook;
import dev.jmoe.model.TokenHook;

/**
 * Connects a predictor to a main model's {@link InferenceState}: tokens, each layer's FFN input and the real
 * routing go to the predictor, and — with a {@link PrefetchSink} — at every single-token layer step the
 * predictions for the next {@code lookahead} layers go to the sink, so a load for layer l+h starts h layers early.
 * Hooks already installed keep running (first); {@link #close} puts them back.
 */
public final class PredictorHooks implements TokenHook, LayerHook, RoutingHook, AutoCloseable {
    private final InferenceState state;
    private final ExpertPredictor predictor;
    private final PrefetchSink sink;
    private final int lookahead, width, nLayer, nExpert;
    private final TokenHook prevToken;
    private final LayerHook prevLayer;
    private final RoutingHook prevRouting;
    private final int[] out, chosen;

    /**
     * @param width experts asked of the predictor per predicted layer (normally the router's k)
     */
    public PredictorHooks(InferenceState state, ExpertPredictor predictor, int lookahead, int width, PrefetchSink sink) {
        this.state = state;
        this.predictor = predictor;
        this.sink = sink;
        this.nLayer = state.model().hyperparams().nLayer();
        this.nExpert = state.model().hyperparams().nExpert();
        this.lookahead = Lookahead.requireDepth(lookahead, nLayer);
        predictor.lookahead(this.lookahead);
        if (width < 1 || width > nExpert) throw new IllegalArgumentException("prediction width must be between 1 and " + nExpert + ", got " + width);
        this.width = width;
        this.out = new int[width];
        this.chosen = new int[Math.max(1, state.model().hyperparams().nExpertUsed())];
        this.prevToken = state.tokenHook();
        this.prevLayer = state.layerHook();
        this.prevRouting = state.routingHook();
        state.setTokenHook(this);
        state.setLayerHook(this);
        state.setRoutingHook(this);
    }

    public ExpertPredictor predictor() { return predictor; }
    public int lookahead() { return lookahead; }

    @Override
    public void onTokens(int pos, int[] tokens, int off, int n) {
        if (prevToken != null) prevToken.onTokens(pos, tokens, off, n);
        predictor.onTokens(pos, tokens, off, n);
    }

    @Override
    public void beforeFfn(int layer, int pos, int n, float[] residual, float[] normed) {
        if (prevLayer != null) prevLayer.beforeFfn(layer, pos, n, residual, normed);
        if (sink != null) sink.at(pos, layer, n);
        if (n != 1) return; // a prompt batch routes to most experts: nothing to predict (as OD-MoE)
        predictor.onLayer(layer, pos, residual, normed);
        if (sink == null) return;
        for (int d = 1; d <= lookahead; d++) {
            int c = predictor.predict(pos, layer, d, out);
            if (c > 0) send(Lookahead.targetPos(pos, layer, d, nLayer), Lookahead.targetLayer(layer, d, nLayer), out, c, d);
        }
    }

    /** Within a token's worth of layers a prediction is a prefetch; beyond, it is only foreseen (see {@link PrefetchSink#foresee}). */
    private void send(int pos, int layer, int[] experts, int count, int d) {
        if (d <= nLayer) sink.prefetch(pos, layer, experts, count, d);
        else sink.foresee(pos, layer, experts, count, d);
    }

    @Override
    public void onRouting(int layer, int pos, int n, float[] probs, Routing routing) {
        if (prevRouting != null) prevRouting.onRouting(layer, pos, n, probs, routing);
        int k = routing.k();
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < k; j++) chosen[j] = routing.expert(t, j);
            predictor.observe(layer, pos + t, chosen, k, probs, t * nExpert);
        }
    }

    // ------------------------------------------------------------------ steps over several sequences

    /**
     * Steps over several sequences have no one position: the sink (whose loads are ordered by pass step) sees a step
     * counter of its own, advanced once per step, as their position.
     */
    private int batchStep = -1;
    private float[] rowResidual = new float[0], rowNormed = new float[0];
    private int[][] byDistance = new int[0][];

    @Override
    public void onBatchTokens(Batch batch) {
        if (prevToken != null) prevToken.onBatchTokens(batch);
        batchStep++;
        // a predictor that follows one token stream (a shadow model) hears a step of one sequence only
        if (batch.sequences() == 1) predictor.onTokens(batch.position(0), batch.tokens(), 0, batch.rows());
    }

    /**
     * Each decode row of the step is predicted at its own position, and for every distance the rows' predictions go to the
     * sink as one request, merged rank by rank (every row's best expert first, then every row's second, …): the runtime
     * sees the whole step's predicted expert set for the layers ahead.
     */
    @Override
    public void beforeBatchFfn(int layer, Batch batch, float[] residual, float[] normed) {
        if (prevLayer != null) prevLayer.beforeBatchFfn(layer, batch, residual, normed);
        int n = batch.rows();
        if (sink != null) sink.at(batchStep, layer, n);
        if (!batch.decodeStep()) return; // a prompt chunk routes to most experts: nothing to predict (as OD-MoE)
        int e = state.model().hyperparams().nEmbd();
        if (rowResidual.length != e) {
            rowResidual = new float[e];
            rowNormed = new float[e];
        }
        if (byDistance.length != lookahead || byDistance.length > 0 && byDistance[0].length < n * width) {
            byDistance = new int[lookahead][n * width];
        }
        int[][] rowPredictions = new int[lookahead][n * width];
        int[][] rowCounts = new int[lookahead][n];
        for (int t = 0; t < n; t++) {
            System.arraycopy(residual, t * e, rowResidual, 0, e);
            System.arraycopy(normed, t * e, rowNormed, 0, e);
            int pos = batch.position(t);
            predictor.onLayer(layer, pos, rowResidual, rowNormed);
            for (int d = 1; d <= lookahead; d++) {
                int c = predictor.predict(pos, layer, d, out);
                System.arraycopy(out, 0, rowPredictions[d - 1], t * width, c);
                rowCounts[d - 1][t] = c;
            }
        }
        if (sink == null) return;
        for (int d = 1; d <= lookahead; d++) {
            int[] merged = byDistance[d - 1];
            int m = 0;
            for (int rank = 0; rank < width; rank++) {
                for (int t = 0; t < n; t++) {
                    if (rank >= rowCounts[d - 1][t]) continue;
                    int ex = rowPredictions[d - 1][t * width + rank];
                    boolean seen = false;
                    for (int i = 0; i < m && !seen; i++) seen = merged[i] == ex;
                    if (!seen) merged[m++] = ex;
                }
            }
            if (m > 0) send(Lookahead.targetPos(batchStep, layer, d, nLayer), Lookahead.targetLayer(layer, d, nLayer), merged, m, d);
        }
    }

    @Override
    public void onBatchRouting(int layer, Batch batch, float[] probs, Routing routing) {
        if (prevRouting != null) prevRouting.onBatchRouting(layer, batch, probs, routing);
        int k = routing.k();
        for (int t = 0; t < batch.rows(); t++) {
            for (int j = 0; j < k; j++) chosen[j] = routing.expert(t, j);
            predictor.observe(layer, batch.position(t), chosen, k, probs, t * nExpert);
        }
    }

    /** Removes the hooks (restoring the ones that were there) and closes the predictor. */
    @Override
    public void close() {
        state.setTokenHook(prevToken);
        state.setLayerHook(prevLayer);
        state.setRoutingHook(prevRouting);
        predictor.close();
    }
}
