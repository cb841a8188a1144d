package dev.jmoe.experts.trace;

import dev.jmoe.experts.cache.Predictions;
import dev.jmoe.experts.predict.Lookahead;

/**
 * Replays the predictions a real predictor made during the run that recorded the trace ({@link RoutingTraceFile.RecordedPredictions},
 * {@code jmoe predict-eval --trace}): at each decode step the sets it named for the steps 1 … H ahead go to the view exactly as
 * a live cache receives them (farthest first, so each target ends with the freshest prediction made for it; a newer
 * prediction for a target replaces an older one). A target is matched to the trace step with its position and layer, so
 * predictions across a sequence boundary (a new chunk starts at position 0) or for layers without experts are dropped.
 * Deterministic: the same trace replays the same predictions.
 */
public final class RecordedPredictor implements ReplayPredictor {
    private final RoutingTrace trace;
    private final int[] positions;
    private final int[][][] sets;
    private final int lookahead;

    /**
     * @param lookahead layer steps ahead to use, at most the recorded depth
     */
    public RecordedPredictor(RoutingTraceFile.Loaded loaded, int lookahead) {
        RoutingTraceFile.RecordedPredictions p = loaded.predictions();
        if (p == null) throw new IllegalArgumentException("the trace has no recorded predictions (record them with jmoe predict-eval --trace)");
        if (lookahead < 1 || lookahead > p.depth()) {
            throw new IllegalArgumentException("--lookahead " + lookahead + ": the trace's recorded predictions reach 1.." + p.depth() + " layer steps ahead");
        }
        this.trace = loaded.trace();
        this.positions = loaded.positions();
        this.sets = p.sets();
        this.lookahead = lookahead;
    }

    public int lookahead() { return lookahead; }

    @Override
    public void announce(int i, Predictions view) {
        view.advance(i);
        int[][] made = sets[i];
        if (made == null) return;
        RoutingTrace.Step at = trace.steps().get(i);
        int nLayer = trace.nLayer();
        for (int d = lookahead; d >= 1; d--) {
            int[] experts = made[d - 1];
            if (experts == null) continue;
            int tp = Lookahead.targetPos(positions[i], at.layer(), d, nLayer), tl = Lookahead.targetLayer(at.layer(), d, nLayer);
            int j = find(i, d, tp, tl);
            if (j >= 0) view.predict(j, tl, experts, experts.length);
        }
    }

    /** The trace step after i (within d steps) that runs layer tl of position tp as a single token, or −1. */
    private int find(int i, int d, int tp, int tl) {
        int end = Math.min(trace.steps().size() - 1, i + d);
        for (int j = i + 1; j <= end; j++) {
            RoutingTrace.Step s = trace.steps().get(j);
            if (positions[j] == tp && s.layer() == tl) return s.n() == 1 ? j : -1;
            if (positions[j] < positions[i]) return -1; // a new sequence started
        }
        return -1;
    }
}
