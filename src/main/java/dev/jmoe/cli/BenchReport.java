package dev.jmoe.cli;

import dev.jmoe.experts.cache.OffloadConfig;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The bench's human table, and its report: Markdown with plots as PNG and SVG (XChart, rendered headless), every cell as
 * CSV. Timings carry a 95% interval and, against the experiment's reference, a paired ratio with its interval; a ratio
 * whose interval contains 1 is marked "≈" (not distinguishable). Plots draw the real min–max of the runs and the 95%
 * interval, label every point of a trade-off plot, and keep one unit per axis.
 */
final class BenchReport {
    private BenchReport() {}

    /** What the timing columns mean, printed once with every table. */
    static final String TIME_LEGEND = "ms/token = decode time per output token: geometric mean of the measured runs with its 95% interval (Student t on"
            + " the logarithms), and median"
            + " (min–max); × ref = time relative to the experiment's reference configuration, the geometric mean of the per-round ratios (the runs of"
            + " a round ran side by side) with its 95% interval; ≈ = the interval contains 1: not distinguishable from the reference";

    @SuppressWarnings("unchecked")
    static void printTable(PrintWriter o, BenchConfig.Experiment e, List<Map<String, Object>> cells) {
        o.printf("%n-- %s%n", e.name());
        o.printf("%-36s %9s %17s %17s %8s %6s %6s %6s %6s %10s %8s %6s%n", "configuration", "ms/token", "95% interval", "x ref (95%)", "TTFT ms", "exact",
                "subst", "pref", "miss", "moved", "stall ms", "same");
        for (Map<String, Object> c : cells) {
            boolean timed = c.containsKey("ms_per_token_mean");
            o.printf(Locale.ROOT, "%-36s %9s %17s %17s %8s %6s %6s %6s %6s %10s %8s %6s%n", c.get("label"),
                    timed ? String.format(Locale.ROOT, "%.2f", d(c, "ms_per_token_mean")) : "-", timed ? interval(c, "ms_per_token_ci95", "%.2f") : "-",
                    ratio(c), c.containsKey("ttft_ms") ? String.format(Locale.ROOT, "%.1f", d(c, "ttft_ms")) : "-", pct(c, "exact_hit_rate"),
                    pct(c, "substitution_rate"), pct(c, "prefetch_hit_rate"), missPct(c),
                    c.containsKey("bytes_moved") ? Units.bytes(((Number) c.get("bytes_moved")).longValue()) : "-",
                    c.containsKey("stall_ms") ? String.format(Locale.ROOT, "%.1f", d(c, "stall_ms")) : "-", same(c));
            if (c.get("quality") instanceof Map<?, ?> q) {
                Map<String, Object> qm = (Map<String, Object>) q;
                o.printf(Locale.ROOT, "%-36s ppl %+.3f%%  KL mean %.5f p99 %.5f  top-1 %.1f%%%s%n", "", 100 * d(qm, "ppl_delta"), d(qm, "kl_mean"), d(qm, "kl_p99"),
                        100 * d(qm, "top1_agreement"), qm.containsKey("eval_accuracy") ? String.format(Locale.ROOT, "  eval acc %.1f%%", 100 * d(qm, "eval_accuracy")) : "");
            }
        }
        o.println("(" + Same.MEANING + ")");
        o.flush();
    }

    @SuppressWarnings("unchecked")
    static void write(Path dir, Map<String, Object> all, BenchConfig cfg) throws IOException {
        System.setProperty("java.awt.headless", "true");
        StringBuilder md = new StringBuilder();
        md.append("# jmoe benchmark report\n\n");
        md.append("Regenerate with:\n\n```bash\n").append(all.get("command")).append("\n```\n\n");
        Map<String, Object> mach = (Map<String, Object>) all.get("machine");
        Map<String, Object> set = (Map<String, Object>) all.get("settings");
        Map<String, Object> prov = (Map<String, Object>) all.getOrDefault("provenance", Map.of());
        md.append(String.format(Locale.ROOT, "Measured %s on %s (%s cores), %s, %s; source commit `%s`%s. Every figure is in `bench.json` (with this"
                        + " provenance) and, one row per configuration, `bench.csv`; plots are PNG with an SVG of each beside it.%n%n",
                prov.getOrDefault("date", "?"), mach.get("processor"), mach.get("cores"), mach.getOrDefault("jdk", mach.get("java")), mach.get("os"),
                prov.getOrDefault("commit", "?"), "yes".equals(prov.get("uncommitted_changes")) ? " (with uncommitted changes to the sources)" : ""));
        md.append(String.format(Locale.ROOT, "Runs: %s prompts of %s tokens from `%s`, %s greedy tokens each; %s warm-up round(s), then %s measured rounds"
                        + " interleaved across the configurations of an experiment. Expert store `%s`%s. Quality: %s chunks of %s tokens teacher-forced"
                        + " (scored half decoded token by token) against the exact run%s.%n%n",
                set.get("prompts"), set.get("prompt_tokens"), set.get("text"), set.get("n_predict"), set.get("warmup"), set.get("repeat"), set.get("store"),
                set.get("slow_compute") == null ? "" : ", slow side " + set.get("slow_compute") + "x slower than the fast side (emulated)",
                set.get("quality_chunks"), set.get("quality_ctx"),
                set.get("eval_task") == null ? "" : "; eval: first " + set.get("eval_limit") + " items of `" + set.get("eval_task") + "`"));
        md.append("Columns: ").append(TIME_LEGEND).append("; *exact/subst/prefetch/miss* = shares of decode expert uses served from a resident expert,"
                + " by substitution, by a prefetched expert, or missed (loaded or computed from the store); *moved* = bytes over the link; *stall* ="
                + " time the compute thread waited for experts; *").append(Same.MEANING.replace("same = ", "same* = ")).append("; *ppl Δ* ="
                + " teacher-forced perplexity change against the exact run; *KL* = KL(exact ‖ approximate) per token in nats; *top-1* = share of"
                + " positions with the same most likely token; *eval* = multiple-choice accuracy. Experiments without timing ran on models too small"
                + " for a time per token to mean anything (their speed is measured on the mid shape).\n\n");
        List<String[]> csv = new ArrayList<>();
        for (Map<String, Object> m : (List<Map<String, Object>>) all.get("models")) {
            String model = String.valueOf(m.get("model"));
            String stem = stem(model);
            md.append("## ").append(Path.of(model).getFileName()).append("\n\n");
            md.append(String.format(Locale.ROOT, "%s, %s layers, %s experts (top-%s), %s of expert weights.%n%n", m.get("architecture"), m.get("layers"),
                    m.get("experts"), m.get("experts_used"), Units.bytes(((Number) m.get("expert_bytes")).longValue())));
            long expertBytes = ((Number) m.get("expert_bytes")).longValue();
            for (Map<String, Object> e : (List<Map<String, Object>>) m.get("experiments")) {
                String name = String.valueOf(e.get("name"));
                String base = stem + "-" + slug(name);
                md.append("### ").append(name).append("\n\n");
                if (!String.valueOf(e.get("description")).isEmpty()) md.append(e.get("description")).append("\n\n");
                if (e.get("recall") instanceof Map<?, ?> r) {
                    recall(md, dir, base, (Map<String, Object>) r);
                    recallCsv(csv, model, name, (Map<String, Object>) r);
                    continue;
                }
                List<Map<String, Object>> cells = (List<Map<String, Object>>) e.get("cells");
                boolean timed = !Boolean.FALSE.equals(e.get("timing"));
                if (timed && e.get("load_average_before") instanceof double[] la) {
                    md.append(String.format(Locale.ROOT, "Reference: %s. Load average %.1f before, ", e.get("reference"), la[0]));
                    double[] after = (double[]) e.get("load_average_after");
                    md.append(after == null ? "?" : String.format(Locale.ROOT, "%.1f", after[0])).append(" after.\n\n");
                }
                table(md, cells, e.get("resident_eval_accuracy"), timed);
                if (timed) {
                    timePlot(dir, base, name, cells, expertBytes);
                    md.append(image("time per token", base + "-time"));
                }
                if (hitPlot(dir, base, name, cells)) md.append(image("hit rates", base + "-hits"));
                if (cells.stream().anyMatch(c -> c.containsKey("quality"))) {
                    boolean byBudget = cells.stream().map(c -> c.get("budget")).filter(b -> !"all".equals(b)).distinct().count() > 1;
                    tradeoffPlots(dir, base, name, cells, timed, byBudget);
                    md.append(image("accuracy vs latency", base + "-tradeoff"));
                    md.append(image("divergence", base + "-divergence"));
                }
                md.append('\n');
                for (Map<String, Object> c : cells) csv.add(csvRow(model, name, String.valueOf(e.get("reference")), c));
            }
        }
        Files.writeString(dir.resolve("README.md"), md.toString(), StandardCharsets.UTF_8);
        writeCsv(dir.resolve("bench.csv"), csv);
    }

    private static String image(String alt, String file) {
        return "![" + alt + "](" + file + ".png) ([SVG](" + file + ".svg))\n";
    }

    @SuppressWarnings("unchecked")
    private static void table(StringBuilder md, List<Map<String, Object>> cells, Object residentEval, boolean timed) {
        boolean q = cells.stream().anyMatch(c -> c.containsKey("quality"));
        md.append("| configuration |");
        int cols = 1;
        if (timed) {
            md.append(" ms/token mean (95% interval) | median (min–max) | × ref (95% interval) | tok/s | TTFT ms |");
            cols += 5;
        }
        md.append(" exact | subst | prefetch | miss | moved |");
        cols += 5;
        if (timed) {
            md.append(" stall ms |");
            cols++;
        }
        md.append(" peak resident | same |");
        cols += 2;
        if (q) {
            md.append(" ppl Δ | KL mean | KL p99 | top-1 | eval |");
            cols += 5;
        }
        md.append('\n').append("|---".repeat(cols)).append("|\n");
        for (Map<String, Object> c : cells) {
            md.append("| ").append(c.get("label")).append(" |");
            if (timed) {
                md.append(String.format(Locale.ROOT, " %.2f (%s) | %.2f (%.2f–%.2f) | %s | %.1f | %.1f |", d(c, "ms_per_token_mean"),
                        interval(c, "ms_per_token_ci95", "%.2f"), d(c, "ms_per_token"), d(c, "ms_per_token_min"), d(c, "ms_per_token_max"), ratio(c),
                        d(c, "tokens_per_s"), d(c, "ttft_ms")));
            }
            md.append(String.format(Locale.ROOT, " %s | %s | %s | %s | %s |", pct(c, "exact_hit_rate"), pct(c, "substitution_rate"), pct(c, "prefetch_hit_rate"),
                    missPct(c), c.containsKey("bytes_moved") ? Units.bytes(((Number) c.get("bytes_moved")).longValue()) : "-"));
            if (timed) md.append(c.containsKey("stall_ms") ? String.format(Locale.ROOT, " %.1f |", d(c, "stall_ms")) : " - |");
            md.append(String.format(Locale.ROOT, " %s | %s |",
                    c.containsKey("peak_resident_expert_bytes") ? Units.bytes(((Number) c.get("peak_resident_expert_bytes")).longValue()) : "all", same(c)));
            if (q) {
                Map<String, Object> qm = (Map<String, Object>) c.getOrDefault("quality", Map.of());
                md.append(String.format(Locale.ROOT, " %+.3f%% | %.5f | %.5f | %.1f%% | %s |", 100 * d(qm, "ppl_delta"), d(qm, "kl_mean"), d(qm, "kl_p99"),
                        100 * d(qm, "top1_agreement"), qm.containsKey("eval_accuracy") ? String.format(Locale.ROOT, "%.1f%%", 100 * d(qm, "eval_accuracy")) : "-"));
            }
            md.append('\n');
        }
        md.append('\n');
        if (q) {
            Map<String, Object> any = (Map<String, Object>) cells.stream().filter(c -> c.containsKey("quality")).findFirst().orElseThrow().get("quality");
            md.append(String.format(Locale.ROOT, "Exact perplexity over the quality chunks: %.4f", d(any, "ppl_exact")));
            if (residentEval instanceof Number n) md.append(String.format(Locale.ROOT, "; resident eval accuracy %.1f%%", 100 * n.doubleValue()));
            md.append(".\n\n");
        }
    }

    /** Saves a chart as PNG and SVG. */
    private static void save(Chart<?, ?> ch, Path dir, String file) throws IOException {
        BitmapEncoder.saveBitmap(ch, dir.resolve(file).toString(), BitmapEncoder.BitmapFormat.PNG);
        VectorGraphicsEncoder.saveVectorGraphic(ch, dir.resolve(file).toString(), VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
    }

    /** A horizontal segment from lo to hi at y. */
    private static void horizontal(XYChart ch, String name, double y, double lo, double hi, Color color, float width, boolean legend) {
        line(ch, name, new double[]{lo, hi}, new double[]{y, y}, color, width, legend);
    }

    /** A vertical segment from lo to hi at x, not in the legend unless named. */
    private static void segment(XYChart ch, String name, double x, double lo, double hi, Color color, float width, boolean legend) {
        line(ch, name, new double[]{x, x}, new double[]{lo, hi}, color, width, legend);
    }

    /** A two-point line without markers; nothing when an end is missing (NaN). */
    private static void line(XYChart ch, String name, double[] xs, double[] ys, Color color, float width, boolean legend) {
        for (int i = 0; i < 2; i++) if (Double.isNaN(xs[i]) || Double.isNaN(ys[i])) return;
        XYSeries s = ch.addSeries(name, xs, ys);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(color);
        s.setLineStyle(new BasicStroke(width));
        s.setShowInLegend(legend);
    }

    private static final Color RANGE = new Color(150, 150, 150), CI = new Color(30, 90, 180), MEAN = new Color(200, 60, 30);
    private static final Color[] PALETTE = {new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44), new Color(148, 103, 189),
            new Color(255, 127, 14), new Color(140, 86, 75), new Color(227, 119, 194), new Color(23, 190, 207)};

    /**
     * Time per token: against the budget (one line per configuration) when several budgets were run, else one point per
     * configuration; both with the runs' real min–max and the mean's 95% interval drawn around each point.
     */
    @SuppressWarnings("unchecked")
    private static void timePlot(Path dir, String base, String name, List<Map<String, Object>> cells, long expertBytes) throws IOException {
        boolean byBudget = cells.stream().map(c -> c.get("budget")).filter(b -> !"all".equals(b)).distinct().count() > 1;
        XYChart ch = new XYChartBuilder().width(900).height(540).title(name + ": time per output token (geometric mean; bars: 95% interval thick, min–max thin)")
                .yAxisTitle("ms per output token").xAxisTitle(byBudget ? "expert memory (share of the expert bytes)" : "configuration").build();
        ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        ch.getStyler().setYAxisMin(0.0);
        int n = 0;
        if (byBudget) {
            Map<String, List<Map<String, Object>>> series = new LinkedHashMap<>();
            for (Map<String, Object> c : cells) {
                if ("all".equals(c.get("budget"))) continue;
                series.computeIfAbsent(String.valueOf(c.get("label")).replaceAll(" @\\S+", ""), k -> new ArrayList<>()).add(c);
            }
            int k = 0;
            for (Map.Entry<String, List<Map<String, Object>>> s : series.entrySet()) {
                List<Map<String, Object>> pts = new ArrayList<>(s.getValue());
                pts.sort((a, b) -> Double.compare(share(a, expertBytes), share(b, expertBytes)));
                Color color = PALETTE[k % PALETTE.length];
                // each configuration's whiskers a little to the side of the others', in its own colour: min–max thin, 95% interval thick
                double offset = (k - (series.size() - 1) / 2.0) * 0.012;
                XYSeries line = ch.addSeries(s.getKey(), pts.stream().mapToDouble(p -> share(p, expertBytes)).toArray(),
                        pts.stream().mapToDouble(p -> d(p, "ms_per_token_mean")).toArray());
                line.setLineColor(color);
                line.setMarkerColor(color);
                for (Map<String, Object> p : pts) {
                    double x = share(p, expertBytes) + offset;
                    segment(ch, "min–max of the runs " + n++, x, d(p, "ms_per_token_min"), d(p, "ms_per_token_max"), color, 1f, false);
                    double[] ci = (double[]) p.get("ms_per_token_ci95");
                    if (ci != null) segment(ch, "95% interval " + n++, x, ci[0], ci[1], color, 4f, false);
                }
                k++;
            }
            for (Map<String, Object> c : cells) {
                if (!"all".equals(c.get("budget"))) continue;
                ch.addSeries(String.valueOf(c.get("label")), new double[]{0, 1}, new double[]{d(c, "ms_per_token_mean"), d(c, "ms_per_token_mean")})
                        .setMarker(SeriesMarkers.NONE);
            }
        } else {
            // a forest plot: one row per configuration, the time along x (labels fit on the y axis, not rotated under x)
            ch = new XYChartBuilder().width(900).height(140 + 40 * cells.size()).title(name + ": time per output token")
                    .xAxisTitle("ms per output token").yAxisTitle(" ").build();
            ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
            ch.getStyler().setXAxisMin(0.0);
            int rows = cells.size();
            List<String> labels = new ArrayList<>();
            double[] xs = new double[rows], ys = new double[rows];
            for (int i = 0; i < rows; i++) {
                Map<String, Object> c = cells.get(i);
                labels.add(String.valueOf(c.get("label")));
                double y = rows - i;
                xs[i] = d(c, "ms_per_token_mean");
                ys[i] = y;
                // (XChart needs a name per series; only the first segment of each kind is in the legend)
                horizontal(ch, i == 0 ? "min–max of the runs" : "min–max " + i, y + 0.12, d(c, "ms_per_token_min"), d(c, "ms_per_token_max"), RANGE, 1.5f, i == 0);
                double[] ci = (double[]) c.get("ms_per_token_ci95");
                if (ci != null) horizontal(ch, i == 0 ? "95% interval of the mean" : "95% interval " + i, y, ci[0], ci[1], CI, 4f, i == 0);
            }
            XYSeries mean = ch.addSeries("mean (geometric, of the runs)", xs, ys);
            mean.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            mean.setMarkerColor(MEAN);
            ch.getStyler().setYAxisMin(0.5);
            ch.getStyler().setYAxisMax(rows + 0.5);
            // XChart keeps a tick spacing only if its labels differ: the half-way ticks get distinct blank labels
            ch.getStyler().setyAxisTickLabelsFormattingFunction(v -> {
                int i = rows - (int) Math.round(v);
                boolean row = Math.abs(v - Math.round(v)) < 1e-6 && i >= 0 && i < rows;
                return row ? labels.get(i) : " ".repeat(1 + (int) Math.round(Math.abs(v) * 4));
            });
        }
        save(ch, dir, base + "-time");
    }

    /** The cell's budget as a share of the expert bytes. */
    private static double share(Map<String, Object> c, long expertBytes) {
        return (double) OffloadConfig.parseBudget(String.valueOf(c.get("budget")), expertBytes) / expertBytes;
    }

    private static boolean hitPlot(Path dir, String base, String name, List<Map<String, Object>> cells) throws IOException {
        List<Map<String, Object>> off = cells.stream().filter(c -> c.containsKey("exact_hit_rate")).toList();
        if (off.isEmpty()) return false;
        CategoryChart ch = new CategoryChartBuilder().width(900).height(540).title(name + ": where decode expert uses were served").yAxisTitle("share of expert uses (%)").build();
        List<String> labels = off.stream().map(c -> String.valueOf(c.get("label"))).toList();
        String[][] parts = {{"exact hit", "exact_hit_rate"}, {"substitution", "substitution_rate"}, {"prefetch hit", "prefetch_hit_rate"},
                {"miss (loaded)", "miss_loaded_rate"}, {"miss (computed from store)", "miss_computed_rate"}};
        for (String[] p : parts) ch.addSeries(p[0], labels, off.stream().map(c -> (Number) (100 * d(c, p[1]))).toList());
        ch.getStyler().setStacked(true);
        ch.getStyler().setXAxisLabelRotation(30);
        ch.getStyler().setYAxisMax(100.0);
        ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        save(ch, dir, base + "-hits");
        return true;
    }

    /**
     * Accuracy (%) and divergence (KL, nats) of each configuration against its time per token, or against the expert bytes
     * it moved per decode token when the experiment has no timing; every point labelled with what distinguishes it (α, budget, or the configuration).
     */
    @SuppressWarnings("unchecked")
    private static void tradeoffPlots(Path dir, String base, String name, List<Map<String, Object>> cells, boolean timed, boolean byBudget) throws IOException {
        List<Map<String, Object>> qc = cells.stream().filter(c -> c.containsKey("quality")).toList();
        // without timing, the cost axis is what a configuration moves over the link per decode token (the model is too small for times)
        String xTitle = timed ? "ms per output token (mean)" : "expert bytes moved per decode token (MiB)";
        XYChart acc = new XYChartBuilder().width(900).height(540).title(name + ": accuracy vs " + (timed ? "latency" : "bytes moved"))
                .xAxisTitle(xTitle).yAxisTitle("% of positions / items").build();
        XYChart div = new XYChartBuilder().width(900).height(540).title(name + ": divergence from the exact run vs " + (timed ? "latency" : "bytes moved"))
                .xAxisTitle(xTitle).yAxisTitle("KL(exact ‖ approximate), nats per token").build();
        double[] x = new double[qc.size()];
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < qc.size(); i++) {
            x[i] = timed ? d(qc.get(i), "ms_per_token_mean") : d(qc.get(i), "decode_bytes_per_token") / (1 << 20);
            labels.add(pointLabel(qc.get(i), byBudget));
        }
        double[] top1 = qc.stream().mapToDouble(c -> 100 * d((Map<String, Object>) c.get("quality"), "top1_agreement")).toArray();
        acc.addSeries("top-1 agreement with the exact run", x, top1);
        boolean eval = qc.stream().allMatch(c -> ((Map<String, Object>) c.get("quality")).containsKey("eval_accuracy"));
        if (eval) acc.addSeries("eval accuracy", x, qc.stream().mapToDouble(c -> 100 * d((Map<String, Object>) c.get("quality"), "eval_accuracy")).toArray());
        double[] kl = qc.stream().mapToDouble(c -> d((Map<String, Object>) c.get("quality"), "kl_mean")).toArray();
        div.addSeries("KL mean", x, kl);
        div.addSeries("KL p99", x, qc.stream().mapToDouble(c -> d((Map<String, Object>) c.get("quality"), "kl_p99")).toArray());
        for (int i = 0; i < qc.size(); i++) {
            acc.addAnnotation(new AnnotationText(labels.get(i), x[i], top1[i], false));
            div.addAnnotation(new AnnotationText(labels.get(i), x[i], kl[i], false));
        }
        for (XYChart ch : new XYChart[]{acc, div}) {
            ch.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            ch.getStyler().setMarkerSize(9);
            ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);

        }
        save(acc, dir, base + "-tradeoff");
        save(div, dir, base + "-divergence");
    }

    /** The label of a trade-off point: α when α is what varies, the budget when that is, else the configuration's label. */
    private static String pointLabel(Map<String, Object> c, boolean byBudget) {
        String label = String.valueOf(c.get("label"));
        if (byBudget && !"all".equals(c.get("budget"))) return label.replaceAll(" @\\S+", "") + " @" + c.get("budget");
        return label;
    }

    @SuppressWarnings("unchecked")
    private static void recall(StringBuilder md, Path dir, String base, Map<String, Object> r) throws IOException {
        List<Map<String, Object>> ps = (List<Map<String, Object>>) r.get("predictors");
        XYChart ch = new XYChartBuilder().width(900).height(540).title("recall of the next layers' experts vs lookahead")
                .xAxisTitle("lookahead (layers ahead)").yAxisTitle("recall (% of the experts used)").build();
        md.append(String.format(Locale.ROOT, "Teacher-forced over %s tokens of the text, main model's experts %s; every shadow is of lower precision than"
                + " the main model. *Recall at width k* = share of the experts a layer uses that the predictor named among exactly k = %s (the papers'"
                + " metric); *with margin* = the shadow also names runners-up within that relative distance of its k-th expert, so it names more than k"
                + " and its precision (named experts that were used) is given beside.%n%n", r.get("tokens"), r.get("main_model_type"), r.get("k")));
        int depth = ((double[]) ps.get(0).get("recall")).length;
        md.append("| predictor | width |");
        for (int d = 1; d <= depth; d++) md.append(" recall, ").append(d).append(" ahead |");
        md.append(" precision, 1 ahead |\n").append("|---".repeat(depth + 3)).append("|\n");
        for (Map<String, Object> p : ps) {
            double[] rec = (double[]) p.get("recall"), prec = (double[]) p.get("precision");
            double margin = d(p, "margin");
            double[] xs = new double[rec.length], ys = new double[rec.length];
            md.append("| ").append(p.get("predictor")).append(" | ").append(margin > 0 ? "k + runners-up within " + margin : "k").append(" |");
            for (int i = 0; i < rec.length; i++) {
                xs[i] = i + 1;
                ys[i] = 100 * rec[i];
                md.append(String.format(Locale.ROOT, " %.2f%% |", 100 * rec[i]));
            }
            md.append(String.format(Locale.ROOT, " %.2f%% |%n", 100 * prec[0]));
            ch.addSeries(p.get("predictor") + (margin > 0 ? "" : " (width k)"), xs, ys);
        }
        ch.getStyler().setYAxisMin(0.0);
        ch.getStyler().setYAxisMax(100.0);
        ch.getStyler().setXAxisDecimalPattern("0");
        ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        save(ch, dir, base + "-recall");
        md.append('\n').append(image("recall vs lookahead", base + "-recall")).append('\n');
    }

    // ---------------------------------------------------------------- CSV

    private static final String[] CSV_HEADER = {"model", "experiment", "configuration", "policy", "budget", "link", "predictor", "alpha",
            "ms_per_token_mean", "ms_per_token_ci95_low", "ms_per_token_ci95_high", "ms_per_token_median", "ms_per_token_min", "ms_per_token_max",
            "reference", "ratio_to_reference", "ratio_ci95_low", "ratio_ci95_high", "distinguishable_from_reference", "ttft_ms", "exact_hit_rate",
            "substitution_rate", "prefetch_hit_rate", "miss_loaded_rate", "miss_computed_rate", "bytes_moved", "stall_ms", "peak_resident_expert_bytes",
            "same_tokens", "generated_tokens", "ppl_delta", "kl_mean", "kl_p99", "top1_agreement", "eval_accuracy", "lookahead", "recall", "precision"};

    @SuppressWarnings("unchecked")
    private static String[] csvRow(String model, String experiment, String reference, Map<String, Object> c) {
        Map<String, Object> q = (Map<String, Object>) c.getOrDefault("quality", Map.of());
        double[] ci = (double[]) c.get("ms_per_token_ci95"), rci = (double[]) c.get("ratio_to_reference_ci95");
        return new String[]{model, experiment, str(c.get("label")), str(c.get("policy")), str(c.get("budget")), str(c.get("link")), str(c.get("predictor")),
                str(c.get("alpha")), str(c.get("ms_per_token_mean")), ci == null ? "" : num(ci[0]), ci == null ? "" : num(ci[1]), str(c.get("ms_per_token")),
                str(c.get("ms_per_token_min")), str(c.get("ms_per_token_max")), reference, str(c.get("ratio_to_reference")), rci == null ? "" : num(rci[0]),
                rci == null ? "" : num(rci[1]), str(c.get("distinguishable_from_reference")), str(c.get("ttft_ms")), str(c.get("exact_hit_rate")),
                str(c.get("substitution_rate")), str(c.get("prefetch_hit_rate")), str(c.get("miss_loaded_rate")), str(c.get("miss_computed_rate")),
                str(c.get("bytes_moved")), str(c.get("stall_ms")), str(c.get("peak_resident_expert_bytes")), str(c.get("greedy_identical_tokens")),
                str(c.get("greedy_tokens")), str(q.get("ppl_delta")), str(q.get("kl_mean")), str(q.get("kl_p99")), str(q.get("top1_agreement")),
                str(q.get("eval_accuracy")), "", "", ""};
    }

    @SuppressWarnings("unchecked")
    private static void recallCsv(List<String[]> csv, String model, String experiment, Map<String, Object> r) {
        for (Map<String, Object> p : (List<Map<String, Object>>) r.get("predictors")) {
            double[] rec = (double[]) p.get("recall"), prec = (double[]) p.get("precision");
            for (int i = 0; i < rec.length; i++) {
                String[] row = new String[CSV_HEADER.length];
                java.util.Arrays.fill(row, "");
                row[0] = model;
                row[1] = experiment;
                row[2] = str(p.get("predictor"));
                row[6] = str(p.get("predictor"));
                row[CSV_HEADER.length - 3] = Integer.toString(i + 1);
                row[CSV_HEADER.length - 2] = num(rec[i]);
                row[CSV_HEADER.length - 1] = num(prec[i]);
                csv.add(row);
            }
        }
    }

    private static void writeCsv(Path file, List<String[]> rows) throws IOException {
        StringBuilder sb = new StringBuilder(String.join(",", CSV_HEADER)).append('\n');
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                if (i > 0) sb.append(',');
                String v = r[i] == null ? "" : r[i];
                sb.append(v.contains(",") || v.contains("\"") ? "\"" + v.replace("\"", "\"\"") + "\"" : v);
            }
            sb.append('\n');
        }
        Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
    }

    private static String str(Object o) {
        if (o == null) return "";
        if (o instanceof Double v) return num(v);
        return o.toString();
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.6g", v);
    }

    // ---------------------------------------------------------------- formatting

    private static String stem(String model) {
        String f = Path.of(model).getFileName().toString();
        return slug(f.endsWith(".gguf") ? f.substring(0, f.length() - 5) : f);
    }

    static String slug(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("^-|-$", "");
    }

    private static double d(Map<String, Object> m, String k) {
        Object v = m.get(k);
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    private static String interval(Map<String, Object> m, String k, String fmt) {
        double[] ci = (double[]) m.get(k);
        if (ci == null || Double.isNaN(ci[0])) return "-";
        return String.format(Locale.ROOT, fmt + "–" + fmt, ci[0], ci[1]);
    }

    /** × reference with its interval, "≈" when the interval contains 1; "ref" for the reference itself. */
    private static String ratio(Map<String, Object> c) {
        if (!c.containsKey("ms_per_token_mean")) return "-";
        if (!c.containsKey("ratio_to_reference")) return "ref";
        String s = String.format(Locale.ROOT, "%.2f (%s)", d(c, "ratio_to_reference"), interval(c, "ratio_to_reference_ci95", "%.2f"));
        return Boolean.TRUE.equals(c.get("distinguishable_from_reference")) ? s : "≈ " + s;
    }

    private static String pct(Map<String, Object> m, String k) {
        return m.containsKey(k) ? String.format(Locale.ROOT, "%.1f%%", 100 * d(m, k)) : "-";
    }

    private static String missPct(Map<String, Object> m) {
        return m.containsKey("miss_loaded_rate") ? String.format(Locale.ROOT, "%.1f%%", 100 * (d(m, "miss_loaded_rate") + d(m, "miss_computed_rate"))) : "-";
    }

    private static String same(Map<String, Object> c) {
        return Same.describe(((Number) c.get("greedy_identical_tokens")).intValue(), ((Number) c.get("greedy_tokens")).intValue());
    }
}
