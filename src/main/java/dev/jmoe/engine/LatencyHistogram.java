package dev.jmoe.engine;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;

/**
 * Counts of observed durations in fixed buckets (upper bounds in seconds, Prometheus' cumulative "le" buckets when
 * read), with their sum and count. Thread-safe; recording never allocates.
 */
public final class LatencyHistogram {
    /** 1 ms to 60 s, roughly ×2.5 per bucket: time to first token and per-token latency both fit. */
    public static final double[] DEFAULT_BOUNDS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

    private final double[] bounds;
    private final AtomicLongArray counts; // per bucket (not cumulative), plus one past the last bound
    private final DoubleAdder sum = new DoubleAdder();

    public LatencyHistogram(double[] bounds) {
        for (int i = 1; i < bounds.length; i++) {
            if (!(bounds[i] > bounds[i - 1])) throw new IllegalArgumentException("bucket bounds must increase");
        }
        this.bounds = bounds.clone();
        this.counts = new AtomicLongArray(bounds.length + 1);
    }

    public LatencyHistogram() {
        this(DEFAULT_BOUNDS);
    }

    public void observeNanos(long nanos) {
        double s = nanos / 1e9;
        int i = 0;
        while (i < bounds.length && s > bounds[i]) i++;
        counts.incrementAndGet(i);
        sum.add(s);
    }

    /** The upper bounds, in seconds. */
    public double[] bounds() { return bounds.clone(); }

    /** Observations at or below {@code bounds()[i]} (cumulative); i = bounds().length counts every observation. */
    public long cumulative(int i) {
        long c = 0;
        for (int j = 0; j <= i; j++) c += counts.get(j);
        return c;
    }

    public long count() { return cumulative(bounds.length); }

    /** Sum of the observations, in seconds. */
    public double sum() { return sum.sum(); }
}
