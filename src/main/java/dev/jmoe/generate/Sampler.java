package dev.jmoe.generate;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Picks the next token from a logits vector, in llama.cpp's order: repetition penalty, top-k, top-p, min-p,
 * temperature, then a random draw (or the argmax when the temperature is 0). top-p and min-p therefore
 * judge the untempered distribution, as in llama.cpp.
 *
 * <p>Draws come from a {@link SplittableRandom} seeded by the config, so a sampler given the same logits
 * in the same order returns the same tokens. The caller's logits are never modified. Not thread-safe: one
 * sampler per generation stream.
 */
public final class Sampler {
    /** Tokens this far below the best logit have relative probability below 2e-9. */
    private static final float TOP_P_WINDOW = 20f;

    private final SamplerConfig config;
    private final SplittableRandom random;
    private float[] work = new float[0];
    private long[] keys = new long[0];

    public Sampler(SamplerConfig config) {
        this.config = Objects.requireNonNull(config, "config");
        this.random = new SplittableRandom(config.seed());
    }

    public SamplerConfig config() {
        return config;
    }

    /** The index of the largest logit, the lowest one on ties. */
    public static int argmax(float[] logits) {
        return argmax(logits, logits.length);
    }

    private static int argmax(float[] x, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * @param history the tokens so far (prompt and generated), oldest first; may be null. Only the last
     *                {@code repeatLastN} are looked at.
     */
    public int sample(float[] logits, int[] history) {
        return sample(logits, history, history == null ? 0 : history.length);
    }

    /** Like {@link #sample(float[], int[])} with only {@code history[0, historyLength)} valid. */
    public int sample(float[] logits, int[] history, int historyLength) {
        int n = logits.length;
        if (n == 0) {
            throw new IllegalArgumentException("empty logits");
        }
        if (work.length < n) {
            work = new float[n];
        }
        float[] x = work;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            float v = logits[i];
            if (Float.isNaN(v)) {
                throw new IllegalArgumentException("logit " + i + " is NaN");
            }
            x[i] = v;
        }
        applyRepeatPenalty(x, n, history, historyLength);
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[i]);
        }
        if (max == Float.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("every logit is -infinity: nothing can be sampled");
        }
        if (config.temperature() == 0 || max == Float.POSITIVE_INFINITY) {
            return argmax(x, n);
        }

        // Candidates as sort keys: (logit descending, id ascending) packed into longs that sort ascending.
        int m;
        boolean sorted;
        if (config.topK() > 0 && config.topK() < n) {
            m = topK(x, n, config.topK());
            sorted = true;
        } else {
            ensureKeys(n);
            for (int i = 0; i < n; i++) {
                keys[i] = key(x[i], i);
            }
            m = n;
            sorted = false;
        }
        if (config.topP() < 1) {
            m = topP(x, m, sorted, max, config.topP());
            sorted = true;
        }
        if (config.minP() > 0) {
            // p_i >= minP * p_max  <=>  logit_i >= max + ln(minP); the best token always stays.
            float threshold = max + (float) Math.log(config.minP());
            int kept = 0;
            for (int i = 0; i < m; i++) {
                if (x[id(keys[i])] >= threshold) {
                    keys[kept++] = keys[i];
                }
            }
            m = kept;
        }
        return draw(x, m, max);
    }

    private void applyRepeatPenalty(float[] x, int n, int[] history, int length) {
        if (history == null || length == 0 || config.repeatLastN() == 0 || config.repeatPenalty() == 1f) {
            return;
        }
        if (length > history.length) {
            throw new IllegalArgumentException("historyLength " + length + " exceeds the history array (" + history.length + ")");
        }
        int from = config.repeatLastN() < 0 ? 0 : Math.max(0, length - config.repeatLastN());
        int[] window = Arrays.copyOfRange(history, from, length);
        Arrays.sort(window);
        float penalty = config.repeatPenalty();
        for (int i = 0; i < window.length; i++) {
            int t = window[i];
            if (i > 0 && window[i - 1] == t) {
                continue; // each distinct token is penalised once, however often it occurred
            }
            if (t < 0 || t >= n) {
                throw new IllegalArgumentException("history token " + t + " is outside the vocabulary [0, " + n + ")");
            }
            x[t] = x[t] <= 0 ? x[t] * penalty : x[t] / penalty;
        }
    }

    private static long key(float logit, int id) {
        int bits = Float.floatToIntBits(logit);
        int ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF); // monotonic in the float's value
        return ((long) ~ordered << 32) | (id & 0xFFFFFFFFL);
    }

    private static int id(long key) {
        return (int) key;
    }

    private void ensureKeys(int n) {
        if (keys.length < n) {
            keys = new long[n];
        }
    }

    /** Keeps the k best tokens in keys[0, k), best first. */
    private int topK(float[] x, int n, int k) {
        ensureKeys(k);
        // Max-heap of the k smallest keys seen (smallest key = most likely token).
        long[] heap = keys;
        int size = 0;
        for (int i = 0; i < n; i++) {
            long kv = key(x[i], i);
            if (size < k) {
                int c = size++;
                while (c > 0) {
                    int p = (c - 1) >>> 1;
                    if (heap[p] >= kv) {
                        break;
                    }
                    heap[c] = heap[p];
                    c = p;
                }
                heap[c] = kv;
            } else if (kv < heap[0]) {
                int c = 0;
                while (true) {
                    int l = 2 * c + 1;
                    if (l >= size) {
                        break;
                    }
                    int r = l + 1;
                    int big = r < size && heap[r] > heap[l] ? r : l;
                    if (heap[big] <= kv) {
                        break;
                    }
                    heap[c] = heap[big];
                    c = big;
                }
                heap[c] = kv;
            }
        }
        Arrays.sort(heap, 0, size);
        return size;
    }

    /**
     * Keeps the smallest set of most likely candidates whose probability mass reaches p (llama.cpp's cut on
     * the sorted list). Over a whole vocabulary, sorting 150k logits per token would cost more than the rest
     * of sampling together, so the candidates are first bucketed by logit: buckets entirely above the cut are
     * kept unsorted and only the bucket the cut falls in is sorted.
     *
     * @return the number of candidates kept in keys[0, result)
     */
    private int topP(float[] x, int m, boolean sorted, float max, float p) {
        if (sorted) {
            double z = 0;
            for (int i = 0; i < m; i++) {
                z += Math.exp(x[id(keys[i])] - max);
            }
            return prefixReaching(x, 0, m, max, 0, p * z, m);
        }
        int buckets = 2048;
        double[] mass = new double[buckets + 1]; // the last bucket holds everything below the window
        int[] bucketOf = new int[m];
        double z = 0;
        for (int i = 0; i < m; i++) {
            float v = x[id(keys[i])];
            int b = v < max - TOP_P_WINDOW ? buckets : Math.min(buckets - 1, (int) ((max - v) * (buckets / TOP_P_WINDOW)));
            bucketOf[i] = b;
            double e = Math.exp(v - max);
            mass[b] += e;
            z += e;
        }
        double target = p * z;
        double above = 0;
        int cutBucket = 0;
        while (cutBucket < buckets && above + mass[cutBucket] < target) {
            above += mass[cutBucket++];
        }
        if (cutBucket == buckets) {
            // The tail below the window is needed (p within ~1e-9 of 1 or a nearly flat vocabulary): sort all.
            Arrays.sort(keys, 0, m);
            return prefixReaching(x, 0, m, max, 0, target, m);
        }
        // Candidates strictly above the cut bucket first (in id order), then the cut bucket sorted.
        long[] cut = new long[m];
        int kept = 0, inCut = 0;
        for (int i = 0; i < m; i++) {
            if (bucketOf[i] < cutBucket) {
                keys[kept++] = keys[i];
            } else if (bucketOf[i] == cutBucket) {
                cut[inCut++] = keys[i];
            }
        }
        Arrays.sort(cut, 0, inCut);
        System.arraycopy(cut, 0, keys, kept, inCut);
        return prefixReaching(x, kept, kept + inCut, max, above, target, kept + inCut);
    }

    /**
     * Walks keys[from, to) adding probability mass to {@code start} until it reaches {@code target}; returns
     * the end of the kept range, or {@code fallback} if the mass never reaches it (rounding).
     */
    private int prefixReaching(float[] x, int from, int to, float max, double start, double target, int fallback) {
        double cum = start;
        for (int i = from; i < to; i++) {
            cum += Math.exp(x[id(keys[i])] - max);
            if (cum >= target) {
                return Math.max(1, i + 1);
            }
        }
        return Math.max(1, fallback);
    }

    private int draw(float[] x, int m, float max) {
        if (m == 1) {
            return id(keys[0]);
        }
        double invT = 1.0 / config.temperature();
        double sum = 0;
        double[] w = new double[m];
        for (int i = 0; i < m; i++) {
            w[i] = Math.exp((x[id(keys[i])] - max) * invT);
            sum += w[i];
        }
        double u = random.nextDouble() * sum;
        double cum = 0;
        for (int i = 0; i < m; i++) {
            cum += w[i];
            if (u < cum) {
                return id(keys[i]);
            }
        }
        return id(keys[m - 1]); // rounding left u at the very top
    }
}
