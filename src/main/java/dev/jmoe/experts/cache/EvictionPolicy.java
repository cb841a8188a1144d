package dev.jmoe.experts.cache;

import dev.jmoe.experts.trace.PolicySimulator;
import java.util.List;
import java.util.Locale;

/**
 * Chooses which resident expert leaves fast memory. One interface drives both the live cache
 * ({@link OffloadedExpertSource}) and the trace replayer ({@link PolicySimulator}), so a policy's
 * simulated and measured numbers come from the same code. Experts are named by a key
 * {@code layer · nExpert + expert}. Calls are serialised by the caller (policies need no locking).
 */
public interface EvictionPolicy {
    String name();

    /** Router probabilities of one layer in one decode step (all nExpert of them, active or not), before substitution. */
    default void onScores(int layer, float[] probs, int off, int nExpert) {}

    /** The forward pass used this expert (a hit, or right after it was loaded). */
    void onAccess(int key);

    /** The expert now occupies a slot (loading or loaded). */
    default void onInsert(int key) {}

    /** The expert left its slot. */
    default void onRemove(int key) {}

    /** Picks the expert to evict among {@code candidates[0..count)} (count ≥ 1); returns the key. */
    int victim(int[] candidates, int count);

    /**
     * What a policy is made from: the model's shape, the score window, for offline bounds the run's future, and for
     * policies that look ahead the predictor's view of the near future ({@link Predictions}; null when no predictor feeds
     * the cache).
     */
    record Context(int nLayer, int nExpert, int scoreWindow, int[][] future, Predictions predictions) {
        public Context {
            if (nLayer < 1 || nExpert < 1) throw new IllegalArgumentException("a policy needs at least one layer and one expert");
            if (scoreWindow < 1) throw new IllegalArgumentException("--score-window must be at least 1, got " + scoreWindow);
        }

        /** Without predictions. */
        public Context(int nLayer, int nExpert, int scoreWindow, int[][] future) {
            this(nLayer, nExpert, scoreWindow, future, null);
        }

        /** Keys are layer · nExpert + expert. */
        public int keys() { return nLayer * nExpert; }
    }

    /** Makes a policy for one cache (or one replay). */
    @FunctionalInterface
    interface Factory {
        EvictionPolicy create(Context context);
    }

    /**
     * A policy by its registered name ({@link EvictionPolicies}): lru, lfu, score (SMoE's score window over the last
     * {@code scoreWindow} decode steps), belady (needs {@code future}: the keys each MoE layer step of the run uses, in
     * order), or any policy registered since.
     */
    static EvictionPolicy create(String name, int nLayer, int nExpert, int scoreWindow, int[][] future) {
        return EvictionPolicies.create(name, new Context(nLayer, nExpert, scoreWindow, future));
    }

    /** Least recently used: evict the expert whose last use is oldest. */
    final class Lru implements EvictionPolicy {
        private final long[] lastUse;
        private long clock;

        public Lru(int keys) { lastUse = new long[keys]; }

        @Override public String name() { return "lru"; }
        @Override public void onAccess(int key) { lastUse[key] = ++clock; }
        @Override public void onInsert(int key) { lastUse[key] = ++clock; }

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            for (int i = 1; i < count; i++) if (lastUse[candidates[i]] < lastUse[best]) best = candidates[i];
            return best;
        }
    }

    /**
     * Least frequently used, counting every use since the start (not only since the expert's last load: how
     * popular an expert is outlives its stay in fast memory); ties go to the least recently used.
     */
    final class Lfu implements EvictionPolicy {
        private final long[] uses, lastUse;
        private long clock;

        public Lfu(int keys) {
            uses = new long[keys];
            lastUse = new long[keys];
        }

        @Override public String name() { return "lfu"; }

        @Override
        public void onAccess(int key) {
            uses[key]++;
            lastUse[key] = ++clock;
        }

        @Override public void onInsert(int key) { lastUse[key] = ++clock; }

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            for (int i = 1; i < count; i++) {
                int c = candidates[i];
                if (uses[c] < uses[best] || (uses[c] == uses[best] && lastUse[c] < lastUse[best])) best = c;
            }
            return best;
        }
    }

    /**
     * SMoE's score-window policy: evict the expert with the lowest mean router probability over the last n
     * decode steps of its layer. Every expert's score counts at every step, active or not, so an expert the
     * router keeps ranking just below the top-k is kept as a likely substitute. Ties (e.g. before any decode
     * step) go to the least recently used.
     */
    final class ScoreWindow implements EvictionPolicy {
        private final int nExpert, window;
        private final float[] ring;   // [key][window]
        private final double[] sum;   // [key]
        private final int[] filled;   // [layer] steps recorded (≤ window)
        private final int[] head;     // [layer] next ring position
        private final long[] lastUse;
        private long clock;

        public ScoreWindow(int nLayer, int nExpert, int window) {
            if (window < 1) throw new IllegalArgumentException("--score-window must be at least 1, got " + window);
            this.nExpert = nExpert;
            this.window = window;
            ring = new float[nLayer * nExpert * window];
            sum = new double[nLayer * nExpert];
            filled = new int[nLayer];
            head = new int[nLayer];
            lastUse = new long[nLayer * nExpert];
        }

        @Override public String name() { return "score"; }

        @Override
        public void onScores(int layer, float[] probs, int off, int n) {
            int h = head[layer];
            for (int e = 0; e < Math.min(n, nExpert); e++) {
                int key = layer * nExpert + e;
                int idx = key * window + h;
                sum[key] += probs[off + e] - ring[idx];
                ring[idx] = probs[off + e];
            }
            head[layer] = (h + 1) % window;
            if (filled[layer] < window) filled[layer]++;
        }

        /** Mean score of the key over its layer's recorded window (0 before any step). */
        public double mean(int key) {
            int f = filled[key / nExpert];
            return f == 0 ? 0 : sum[key] / f;
        }

        @Override public void onAccess(int key) { lastUse[key] = ++clock; }
        @Override public void onInsert(int key) { lastUse[key] = ++clock; }

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            double bestMean = mean(best);
            for (int i = 1; i < count; i++) {
                int c = candidates[i];
                double m = mean(c);
                if (m < bestMean || (m == bestMean && lastUse[c] < lastUse[best])) {
                    best = c;
                    bestMean = m;
                }
            }
            return best;
        }
    }

    /**
     * Belady's MIN, the offline optimum for demand caching: evict the expert whose next use is farthest in the
     * future. Needs the whole run in advance — the set of experts each MoE layer step uses, in order — so it is a
     * bound replayed from a recorded routing trace. Within a step the accesses may come in any order.
     */
    final class Belady implements EvictionPolicy {
        private final int[][] uses;     // [key] -> ascending step indices that use the key
        private final int[] next;       // [key] -> index into uses[key] of its next use
        private final int[] remaining;  // [step] -> accesses of the step not yet seen
        private int step;

        public Belady(int keys, int[][] steps) {
            int[] count = new int[keys];
            remaining = new int[steps.length];
            for (int i = 0; i < steps.length; i++) {
                for (int k : steps[i]) {
                    if (k < 0 || k >= keys) throw new IllegalArgumentException("trace step " + i + " names key " + k + " outside [0, " + keys + ")");
                    count[k]++;
                }
                remaining[i] = steps[i].length;
            }
            uses = new int[keys][];
            for (int k = 0; k < keys; k++) uses[k] = new int[count[k]];
            java.util.Arrays.fill(count, 0);
            for (int i = 0; i < steps.length; i++) for (int k : steps[i]) uses[k][count[k]++] = i;
            next = new int[keys];
        }

        @Override public String name() { return "belady"; }

        /** The first step with accesses still to come (steps are consumed as their accesses arrive). */
        private int current() {
            while (step < remaining.length && remaining[step] == 0) step++;
            return step;
        }

        @Override
        public void onAccess(int key) {
            int now = current();
            int[] u = uses[key];
            int i = next[key];
            while (i < u.length && u[i] < now) i++;
            if (i >= u.length || u[i] != now) {
                throw new IllegalStateException("belady: key " + key + " is used at step " + now + " but the trace does not say so");
            }
            next[key] = i + 1;
            remaining[now]--;
        }

        /** The step of the key's next use: the current step if it is still to be used in it, MAX_VALUE if never again. */
        private int nextUse(int key) {
            int now = current();
            int[] u = uses[key];
            int i = next[key];
            while (i < u.length && u[i] < now) i++;
            return i < u.length ? u[i] : Integer.MAX_VALUE;
        }

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            int bestNext = nextUse(best);
            for (int i = 1; i < count; i++) {
                int n = nextUse(candidates[i]);
                if (n > bestNext) {
                    best = candidates[i];
                    bestNext = n;
                }
            }
            return best;
        }
    }

    /**
     * Eviction driven by a predictor's view of the future: evict the expert whose predicted next use is farthest, so the
     * experts the next layers and tokens are predicted to use stay (the online counterpart of {@link Belady}, which knows
     * the whole future; a predictor knows the next few layer steps, and not always right). Experts no live prediction
     * names are all "farthest"; among them (and among equal predicted steps) the one least used lately goes, by LRFU's
     * recency-weighted frequency: each use adds 1 to a count that halves every {@code halfLife} uses of the cache. Beyond
     * the predictor's horizon, how often an expert has been used is the best guess of how soon it is used again (on the
     * trained models' traces a long half-life beat recency and SMoE's score window); the decay lets it follow a drift
     * that plain counts over a whole run would not (docs/smoe.md).
     */
    final class Predictive implements EvictionPolicy {
        /** Half-life of the use counts, in cache uses per layer of the model (the default is about 64-128 tokens at k = 4-2). */
        public static final int HALF_LIFE_PER_LAYER = 256;

        private final Predictions predictions;
        private final double[] count;   // decayed use count as of lastUse
        private final long[] lastUse;
        private final double lambda;    // ln 2 / half-life
        private long clock;

        public Predictive(int keys, Predictions predictions, double halfLife) {
            if (predictions == null) throw new IllegalArgumentException("the predictive policy needs a predictions view");
            if (!(halfLife > 0)) throw new IllegalArgumentException("the half-life must be positive, got " + halfLife);
            this.predictions = predictions;
            this.count = new double[keys];
            this.lastUse = new long[keys];
            this.lambda = Math.log(2) / halfLife;
        }

        @Override public String name() { return "predictive"; }

        /** The key's decayed use count now. */
        private double countNow(int key) {
            return count[key] * Math.exp(-lambda * (clock - lastUse[key]));
        }

        @Override
        public void onAccess(int key) {
            double c = countNow(key);
            clock++;
            count[key] = c * Math.exp(-lambda) + 1;
            lastUse[key] = clock;
            predictions.used(key);
        }

        @Override
        public int victim(int[] candidates, int count) {
            int best = candidates[0];
            long bestNext = predictions.nextUse(best);
            double bestCount = countNow(best);
            for (int i = 1; i < count; i++) {
                int c = candidates[i];
                long n = predictions.nextUse(c);
                double u = countNow(c);
                if (n > bestNext || (n == bestNext && (u < bestCount || (u == bestCount && lastUse[c] < lastUse[best])))) {
                    best = c;
                    bestNext = n;
                    bestCount = u;
                }
            }
            return best;
        }
    }
}
