package dev.jmoe.experts.trace;

import dev.jmoe.experts.cache.Predictions;
import java.util.SplittableRandom;

/**
 * A predictor model for replays: it sees the trace's true routing {@code lookahead} steps ahead and names each decode
 * step's experts with recall {@code recall}. For every target step, each of its k true experts (per token) is named with
 * probability r; otherwise a wrong expert of that layer (drawn uniformly among those the step does not use) is named in
 * its place, so precision equals recall and the predictor names k experts per token, as a shadow does at width k. The
 * draws depend only on the seed and the target step, so a step is predicted the same way however often it is announced
 * and every policy of a replay sees the same predictions. Prompt batches are not predicted (as in runs).
 *
 * <p>Realistic settings: the Q8_0 shadow of the trained F16 models named 99.5–99.9% of the next layers' experts inline
 * and 84–96% on its own thread with one main thread (docs/prediction.md); speculating the next two tokens it names
 * 99.5–99.9% up to two tokens ahead (H = 2 × the layer count), teacher-forced and in greedy decoding (docs/smoe.md). A
 * {@link RecordedPredictor} replays such a shadow's own predictions instead of this model of them.
 */
public final class SimulatedPredictor implements ReplayPredictor {
    private final RoutingTrace trace;
    private final int lookahead;
    private final double recall;
    private final long seed;
    private final int[][] predicted; // [step] -> named experts (decode steps), null until drawn

    public SimulatedPredictor(RoutingTrace trace, int lookahead, double recall, long seed) {
        if (lookahead < 1) throw new IllegalArgumentException("--lookahead must be at least 1 step, got " + lookahead);
        if (!(recall >= 0 && recall <= 1)) throw new IllegalArgumentException("--recall must be in [0, 1], got " + recall);
        this.trace = trace;
        this.lookahead = lookahead;
        this.recall = recall;
        this.seed = seed;
        this.predicted = new int[trace.steps().size()][];
    }

    public int lookahead() { return lookahead; }
    public double recall() { return recall; }

    /** At step {@code i}: moves the view's clock there and announces the steps i+1 … i+H (the nearest one last wins ties). */
    @Override
    public void announce(int i, Predictions view) {
        view.advance(i);
        int end = Math.min(trace.steps().size() - 1, i + lookahead);
        for (int j = end; j > i; j--) {
            RoutingTrace.Step s = trace.steps().get(j);
            if (s.n() != 1) continue;
            int[] p = predictionFor(j);
            view.predict(j, s.layer(), p, p.length);
        }
    }

    /** The experts named for decode step j (drawn once). */
    int[] predictionFor(int j) {
        if (predicted[j] != null) return predicted[j];
        RoutingTrace.Step s = trace.steps().get(j);
        int k = trace.k(), nExpert = trace.nExpert();
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + j);
        boolean[] taken = new boolean[nExpert];
        for (int e : s.selected()) taken[e] = true;
        int[] out = new int[k];
        int free = nExpert - s.used().length;
        for (int j2 = 0; j2 < k; j2++) {
            int e = s.selected()[j2];
            if (rnd.nextDouble() < recall || free == 0) {
                out[j2] = e;
            } else {
                int pick = rnd.nextInt(free);
                int c = -1;
                for (int x = 0; x < nExpert; x++) {
                    if (taken[x]) continue;
                    if (pick-- == 0) {
                        c = x;
                        break;
                    }
                }
                taken[c] = true;
                free--;
                out[j2] = c;
            }
        }
        predicted[j] = out;
        return out;
    }
}
