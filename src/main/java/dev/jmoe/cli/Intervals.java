package dev.jmoe.cli;

import java.util.Arrays;

/**
 * Confidence intervals for timings from repeated, interleaved runs. A configuration's time: the geometric mean of its runs
 * with a 95% Student-t interval on the logarithms. Two configurations: the runs of one round are paired (they ran side by side, under the same load
 * from the rest of the machine), so their ratio is the geometric mean of the per-round ratios with a 95% t-interval on
 * the log ratios; when that interval contains 1 the two cannot be told apart.
 */
final class Intervals {
    private Intervals() {}

    /** Two-sided 95% Student-t quantiles for 1..30 degrees of freedom; 1.96 beyond. */
    private static final double[] T95 = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
            2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

    static double t95(int df) {
        return df < 1 ? Double.NaN : df <= T95.length ? T95[df - 1] : 1.96;
    }

    /** {mean, lower, upper} of the 95% interval of the mean (NaN bounds with fewer than two values). */
    static double[] mean(double[] x) {
        int n = x.length;
        double m = Arrays.stream(x).average().orElse(Double.NaN);
        if (n < 2) return new double[]{m, Double.NaN, Double.NaN};
        double ss = 0;
        for (double v : x) ss += (v - m) * (v - m);
        double half = t95(n - 1) * Math.sqrt(ss / (n - 1) / n);
        return new double[]{m, m - half, m + half};
    }

    /**
     * {geometric mean, lower, upper}: times are positive and their spread multiplicative (a busy machine stretches a run),
     * so the interval is taken on the logarithms and is never negative.
     */
    static double[] geometric(double[] x) {
        double[] logs = new double[x.length];
        for (int i = 0; i < x.length; i++) logs[i] = Math.log(x[i]);
        double[] m = mean(logs);
        return new double[]{Math.exp(m[0]), Math.exp(m[1]), Math.exp(m[2])};
    }

    /**
     * {ratio, lower, upper}: the paired ratio of {@code a} to {@code b} (same rounds, same order), the geometric mean of
     * a[i]/b[i] with its 95% interval.
     */
    static double[] pairedRatio(double[] a, double[] b) {
        int n = Math.min(a.length, b.length);
        double[] logs = new double[n];
        for (int i = 0; i < n; i++) logs[i] = Math.log(a[i] / b[i]);
        double[] m = mean(logs);
        return new double[]{Math.exp(m[0]), Math.exp(m[1]), Math.exp(m[2])};
    }

    /** Whether a ratio's interval excludes 1 (the two configurations differ at 95%). */
    static boolean distinguishable(double[] ratio) {
        return !Double.isNaN(ratio[1]) && (ratio[1] > 1 || ratio[2] < 1);
    }
}
