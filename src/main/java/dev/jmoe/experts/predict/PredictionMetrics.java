package dev.jmoe.experts.predict;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Prediction quality of one predictor per lookahead distance (1..depth) and target layer. For each scored
 * prediction P of a layer whose real expert set is R: recall {@code |P∩R| / |R|}, precision {@code |P∩R| / |P|}
 * (an empty prediction has no precision to count but misses all of R), and an exact set match when P = R.
 * Averages are pooled over all predictions (micro averages), so every predicted layer weighs the same.
 */
public final class PredictionMetrics {
    private final String name;
    private final int depth, nLayer;
    private final long[] hit, real, predicted, match, samples; // [distance-1][layer]

    public PredictionMetrics(String name, int depth, int nLayer) {
        this.name = name;
        this.depth = depth;
        this.nLayer = nLayer;
        int n = depth * nLayer;
        hit = new long[n];
        real = new long[n];
        predicted = new long[n];
        match = new long[n];
        samples = new long[n];
    }

    public String name() { return name; }
    public int depth() { return depth; }
    public int nLayer() { return nLayer; }

    /** Scores a prediction {@code pred[0..np)} of a layer against its real experts {@code real[0..nr)} (no duplicates in either). */
    public void add(int distance, int layer, int[] pred, int np, int[] realSet, int nr) {
        int i = (distance - 1) * nLayer + layer;
        int inter = 0;
        for (int a = 0; a < np; a++) if (Ranking.contains(realSet, nr, pred[a])) inter++;
        hit[i] += inter;
        real[i] += nr;
        predicted[i] += np;
        if (inter == nr && np == nr) match[i]++;
        samples[i]++;
    }

    public long samples(int distance, int layer) { return samples[(distance - 1) * nLayer + layer]; }
    public double recall(int distance, int layer) { return ratio(hit, real, distance, layer); }
    public double precision(int distance, int layer) { return ratio(hit, predicted, distance, layer); }
    public double setMatch(int distance, int layer) { return ratio(match, samples, distance, layer); }

    public long samples(int distance) { return sum(samples, distance); }
    public double recall(int distance) { return div(sum(hit, distance), sum(real, distance)); }
    public double precision(int distance) { return div(sum(hit, distance), sum(predicted, distance)); }
    public double setMatch(int distance) { return div(sum(match, distance), sum(samples, distance)); }

    private double ratio(long[] num, long[] den, int distance, int layer) {
        int i = (distance - 1) * nLayer + layer;
        return div(num[i], den[i]);
    }

    private long sum(long[] a, int distance) {
        long s = 0;
        for (int l = 0; l < nLayer; l++) s += a[(distance - 1) * nLayer + l];
        return s;
    }

    private static double div(long a, long b) {
        return b == 0 ? Double.NaN : (double) a / b;
    }

    /** JSON-ready: per distance the averages and a per-layer list. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("predictor", name);
        List<Object> ds = new ArrayList<>();
        for (int d = 1; d <= depth; d++) {
            Map<String, Object> dm = new LinkedHashMap<>();
            dm.put("lookahead", d);
            dm.put("samples", samples(d));
            dm.put("recall", round(recall(d)));
            dm.put("precision", round(precision(d)));
            dm.put("set_match", round(setMatch(d)));
            List<Object> layers = new ArrayList<>();
            for (int l = 0; l < nLayer; l++) {
                Map<String, Object> lm = new LinkedHashMap<>();
                lm.put("layer", l);
                lm.put("samples", samples(d, l));
                lm.put("recall", round(recall(d, l)));
                lm.put("precision", round(precision(d, l)));
                lm.put("set_match", round(setMatch(d, l)));
                layers.add(lm);
            }
            dm.put("layers", layers);
            ds.add(dm);
        }
        m.put("lookaheads", ds);
        return m;
    }

    private static Object round(double v) {
        return Double.isNaN(v) ? null : Math.round(v * 1e6) / 1e6;
    }

    /** A readable table: one row per distance with the averages, then recall per target layer. */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-16s %4s %8s %8s %8s %9s  recall by target layer%n", name, "ahead", "recall", "precis.", "set=",
                "samples"));
        for (int d = 1; d <= depth; d++) {
            sb.append(String.format(Locale.ROOT, "%-16s %4d %8s %8s %8s %9d  ", "", d, pct(recall(d)), pct(precision(d)), pct(setMatch(d)),
                    samples(d)));
            for (int l = 0; l < nLayer; l++) sb.append(pct(recall(d, l))).append(l + 1 < nLayer ? " " : "");
            sb.append('\n');
        }
        return sb.toString();
    }

    static String pct(double v) {
        return Double.isNaN(v) ? "      -" : String.format(Locale.ROOT, "%6.2f%%", 100 * v);
    }
}
