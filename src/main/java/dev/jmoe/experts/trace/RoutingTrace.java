package dev.jmoe.experts.trace;

import dev.jmoe.model.Routing;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The router's decisions of a run, one step per MoE layer and batch: all router probabilities and the
 * top-k the router picked (before any substitution). Replayed by {@link PolicySimulator} to compare cache
 * policies — including the offline Belady bound — on exactly the same routing.
 */
public final class RoutingTrace {
    /** One MoE layer over one batch of n tokens. */
    public record Step(int layer, int n, float[] probs, int[] selected) {
        public Step {
            if (n < 1 || probs.length % n != 0 || selected.length % n != 0) throw new IllegalArgumentException("bad trace step for " + n + " tokens");
        }

        /** The distinct experts the step uses, ascending (as the forward pass computes them). */
        public int[] used() {
            return Arrays.stream(selected).distinct().sorted().toArray();
        }
    }

    private final int nLayer, nExpert, k;
    private final List<Step> steps = new ArrayList<>();

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
        if (s.probs().length != s.n() * nExpert || s.selected().length != s.n() * k) throw new IllegalArgumentException("trace step has the wrong size");
        steps.add(s);
    }

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
