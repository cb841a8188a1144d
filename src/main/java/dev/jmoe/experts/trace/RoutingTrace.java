package dev.jmoe.experts.trace;

import dev.jmoe.model.Routing;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The router's decisions of a run, one step per MoE layer and batch: all router probabilities and the
 * top-k the router picked (before any substitution). Replayed by {@link PolicySimulator} to compare cache
 * policies — including the offline Belady bound — on exactly the same routing. Traces recorded elsewhere may carry
 * less: the selected experts' weights only, or their ids only ({@link Detail}).
 */
public final class RoutingTrace {
    /** How much of the router's decision a trace records. */
    public enum Detail {
        /** Expert ids only, in rank order. */
        IDS,
        /** Ids and the weights of the selected experts. */
        WEIGHTS,
        /** Ids and every expert's router probability (jmoe's own traces). */
        PROBABILITIES
    }

    /**
     * One MoE layer over one batch of n tokens: {@code selected} n × k ids token-major, best first; {@code probs} n ×
     * nExpert router probabilities or null; {@code weights} n × k weights of the selected experts or null.
     */
    public record Step(int layer, int n, float[] probs, int[] selected, float[] weights) {
        public Step {
            if (n < 1 || selected.length % n != 0 || (probs != null && probs.length % n != 0) || (weights != null && weights.length != selected.length)) {
                throw new IllegalArgumentException("bad trace step for " + n + " tokens");
            }
        }

        public Step(int layer, int n, float[] probs, int[] selected) {
            this(layer, n, probs, selected, null);
        }

        /** The distinct experts the step uses, ascending (as the forward pass computes them). */
        public int[] used() {
            return Arrays.stream(selected).distinct().sorted().toArray();
        }

        /** What this step records. */
        public Detail detail() {
            return probs != null ? Detail.PROBABILITIES : weights != null ? Detail.WEIGHTS : Detail.IDS;
        }

        /**
         * Token t's scores over all experts for a policy that ranks by them: the router's probabilities where recorded, else
         * the selected experts' weights with 0 for the others (a weights-only trace), else null.
         */
        public float[] scores(int t, int nExpert) {
            if (probs != null) return Arrays.copyOfRange(probs, t * nExpert, (t + 1) * nExpert);
            if (weights == null) return null;
            int k = selected.length / n;
            float[] s = new float[nExpert];
            for (int j = 0; j < k; j++) s[selected[t * k + j]] = weights[t * k + j];
            return s;
        }
    }

    private final int nLayer, nExpert, k;
    private final List<Step> steps = new ArrayList<>();
    private Detail detail = Detail.PROBABILITIES;

    public RoutingTrace(int nLayer, int nExpert, int k) {
        if (nLayer < 1 || nExpert < 1 || k < 1 || k > nExpert) throw new IllegalArgumentException("bad trace shape " + nLayer + "/" + nExpert + "/" + k);
        this.nLayer = nLayer;
        this.nExpert = nExpert;
        this.k = k;
    }

    public int nLayer() { return nLayer; }
    public int nExpert() { return nExpert; }
    public int k() { return k; }
    public List<Step> steps() { return steps; }

    /** Records a layer's routing (call from a routing hook before anything rewrites it). */
    public void record(int layer, int n, float[] probs, Routing routing) {
        int[] sel = new int[n * k];
        for (int t = 0; t < n; t++) for (int j = 0; j < k; j++) sel[t * k + j] = routing.expert(t, j);
        add(new Step(layer, n, Arrays.copyOf(probs, n * nExpert), sel));
    }

    public void add(Step s) {
        if (s.layer() < 0 || s.layer() >= nLayer) throw new IllegalArgumentException("trace step for layer " + s.layer() + " of " + nLayer);
        if ((s.probs() != null && s.probs().length != s.n() * nExpert) || s.selected().length != s.n() * k) {
            throw new IllegalArgumentException("trace step has the wrong size");
        }
        steps.add(s);
        if (s.detail().ordinal() < detail.ordinal()) detail = s.detail();
    }

    /** The least any step records (a trace is only as detailed as its poorest step). */
    public Detail detail() { return detail; }

    /** Per step, the keys (layer · nExpert + expert) it uses: the future Belady needs. */
    public int[][] keySteps() {
        int[][] out = new int[steps.size()][];
        for (int i = 0; i < out.length; i++) {
            Step s = steps.get(i);
            int[] u = s.used();
            for (int j = 0; j < u.length; j++) u[j] += s.layer() * nExpert;
            out[i] = u;
        }
        return out;
    }
}
