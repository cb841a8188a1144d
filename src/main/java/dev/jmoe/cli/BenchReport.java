package dev.jmoe.cli;

import dev.jmoe.experts.cache.OffloadConfig;
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
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** The bench's human table, and its Markdown report with PNG plots (XChart, rendered headless). */
final class BenchReport {
    private BenchReport() {}

    @SuppressWarnings("unchecked")
    static void printTable(PrintWriter o, BenchConfig.Experiment e, List<Map<String, Object>> cells) {
        o.printf("%n-- %s%n", e.name());
        o.printf("%-34s %9s %13s %8s %6s %6s %6s %6s %10s %8s %6s%n", "configuration", "ms/token", "min-max", "TTFT ms", "exact", "subst", "pref", "miss",
                "moved", "stall ms", "same");
        for (Map<String, Object> c : cells) {
            o.printf(Locale.ROOT, "%-34s %9.2f %13s %8.1f %6s %6s %6s %6s %10s %8s %6s%n", c.get("label"), d(c, "ms_per_token"),
                    String.format(Locale.ROOT, "%.2f-%.2f", d(c, "ms_per_token_min"), d(c, "ms_per_token_max")), d(c, "ttft_ms"), pct(c, "exact_hit_rate"),
                    pct(c, "substitution_rate"), pct(c, "prefetch_hit_rate"), missPct(c), c.containsKey("bytes_moved") ? Units.bytes(((Number) c.get("bytes_moved")).longValue()) : "-",
                    c.containsKey("stall_ms") ? String.format(Locale.ROOT, "%.1f", d(c, "stall_ms")) : "-", c.get("greedy_identical_tokens") + "/" + c.get("greedy_tokens"));
            if (c.get("quality") instanceof Map<?, ?> q) {
                Map<String, Object> qm = (Map<String, Object>) q;
                o.printf(Locale.ROOT, "%-34s ppl %+.3f%%  KL mean %.5f p99 %.5f  top-1 %.1f%%%s%n", "", 100 * d(qm, "ppl_delta"), d(qm, "kl_mean"), d(qm, "kl_p99"),
                        100 * d(qm, "top1_agreement"), qm.containsKey("eval_accuracy") ? String.format(Locale.ROOT, "  eval acc %.1f%%", 100 * d(qm, "eval_accuracy")) : "");
            }
        }
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
        md.append(String.format(Locale.ROOT, "Machine: %s cores, Java %s, %s. Runs: %s prompts of %s tokens from `%s`, %s greedy tokens each; %s warm-up "
                        + "round(s), then %s measured rounds interleaved across configurations; the median run is reported (min–max beside it). "
                        + "Expert store `%s`. Quality: %s chunks of %s tokens teacher-forced (scored half decoded token by token) against the exact run%s.%n%n",
                mach.get("cores"), mach.get("java"), mach.get("os"), set.get("prompts"), set.get("prompt_tokens"), set.get("text"), set.get("n_predict"),
                set.get("warmup"), set.get("repeat"), set.get("store"), set.get("quality_chunks"), set.get("quality_ctx"),
                set.get("eval_task") == null ? "" : "; eval: first " + set.get("eval_limit") + " items of `" + set.get("eval_task") + "`"));
        md.append("Columns: *ms/token* = decode time per output token; *exact/subst/prefetch/miss* = shares of decode expert uses served from a resident "
                + "expert, by substitution, by a prefetched expert, or missed (loaded or computed from the store); *moved* = bytes over the link; *stall* = "
                + "time the compute thread waited for experts; *same* = greedy tokens identical to the resident run before the first difference; "
                + "*ppl Δ* = teacher-forced perplexity change against the exact run; *KL* = KL(exact ‖ approximate) per token in nats; *top-1* = share "
                + "of positions with the same most likely token; *eval* = multiple-choice accuracy.\n\n");
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
                    continue;
                }
                List<Map<String, Object>> cells = (List<Map<String, Object>>) e.get("cells");
                table(md, cells, e.get("resident_eval_accuracy"));
                timePlot(dir, base, name, cells, expertBytes);
                md.append("![time per token](").append(base).append("-time.png)\n");
                if (hitPlot(dir, base, name, cells)) md.append("![hit rates](").append(base).append("-hits.png)\n");
                if (cells.stream().anyMatch(c -> c.containsKey("quality"))) {
                    tradeoffPlots(dir, base, name, cells);
                    md.append("![accuracy vs latency](").append(base).append("-tradeoff.png)\n");
                    md.append("![divergence](").append(base).append("-divergence.png)\n");
                }
                md.append('\n');
            }
        }
        Files.writeString(dir.resolve("README.md"), md.toString(), StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    private static void table(StringBuilder md, List<Map<String, Object>> cells, Object residentEval) {
        boolean q = cells.stream().anyMatch(c -> c.containsKey("quality"));
        md.append("| configuration | ms/token (min–max) | tok/s | TTFT ms | exact | subst | prefetch | miss | moved | stall ms | peak resident | same |");
        if (q) md.append(" ppl Δ | KL mean | KL p99 | top-1 | eval |");
        md.append('\n').append("|---".repeat(q ? 17 : 12)).append("|\n");
        for (Map<String, Object> c : cells) {
            md.append(String.format(Locale.ROOT, "| %s | %.2f (%.2f–%.2f) | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s/%s |", c.get("label"), d(c, "ms_per_token"),
                    d(c, "ms_per_token_min"), d(c, "ms_per_token_max"), d(c, "tokens_per_s"), d(c, "ttft_ms"), pct(c, "exact_hit_rate"), pct(c, "substitution_rate"),
                    pct(c, "prefetch_hit_rate"), missPct(c), c.containsKey("bytes_moved") ? Units.bytes(((Number) c.get("bytes_moved")).longValue()) : "-",
                    c.containsKey("stall_ms") ? String.format(Locale.ROOT, "%.1f", d(c, "stall_ms")) : "-",
                    c.containsKey("peak_resident_expert_bytes") ? Units.bytes(((Number) c.get("peak_resident_expert_bytes")).longValue()) : "all",
                    c.get("greedy_identical_tokens"), c.get("greedy_tokens")));
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

    /** Time per token: against the budget (one line per configuration) when several budgets were run, else one bar per configuration. */
    private static void timePlot(Path dir, String base, String name, List<Map<String, Object>> cells, long expertBytes) throws IOException {
        boolean byBudget = cells.stream().map(c -> c.get("budget")).filter(b -> !"all".equals(b)).distinct().count() > 1;
        if (byBudget) {
            XYChart ch = new XYChartBuilder().width(900).height(520).title(name + ": time per token vs expert budget").xAxisTitle("expert memory (share of expert bytes)")
                    .yAxisTitle("ms per output token").build();
            Map<String, List<double[]>> series = new LinkedHashMap<>();
            for (Map<String, Object> c : cells) {
                if ("all".equals(c.get("budget"))) continue;
                String key = String.valueOf(c.get("label")).replaceAll(" @\\S+", "");
                double frac = (double) OffloadConfig.parseBudget(String.valueOf(c.get("budget")), expertBytes) / expertBytes;
                series.computeIfAbsent(key, k -> new ArrayList<>()).add(new double[]{frac, d(c, "ms_per_token")});
            }
            for (Map.Entry<String, List<double[]>> s : series.entrySet()) {
                List<double[]> pts = s.getValue();
                pts.sort((a, b) -> Double.compare(a[0], b[0]));
                ch.addSeries(s.getKey(), pts.stream().mapToDouble(p -> p[0]).toArray(), pts.stream().mapToDouble(p -> p[1]).toArray());
            }
            for (Map<String, Object> c : cells) {
                if (!"all".equals(c.get("budget"))) continue;
                ch.addSeries(String.valueOf(c.get("label")), new double[]{0, 1}, new double[]{d(c, "ms_per_token"), d(c, "ms_per_token")}).setMarker(SeriesMarkers.NONE);
            }
            ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
            BitmapEncoder.saveBitmap(ch, dir.resolve(base + "-time").toString(), BitmapEncoder.BitmapFormat.PNG);
            return;
        }
        CategoryChart ch = new CategoryChartBuilder().width(900).height(520).title(name + ": time per output token (median, bars = min–max)")
                .yAxisTitle("ms per output token").build();
        List<String> labels = new ArrayList<>();
        List<Number> ys = new ArrayList<>(), err = new ArrayList<>();
        for (Map<String, Object> c : cells) {
            labels.add(String.valueOf(c.get("label")));
            ys.add(d(c, "ms_per_token"));
            err.add((d(c, "ms_per_token_max") - d(c, "ms_per_token_min")) / 2);
        }
        ch.addSeries("ms/token", labels, ys, err);
        ch.getStyler().setXAxisLabelRotation(30);
        ch.getStyler().setLegendVisible(false);
        BitmapEncoder.saveBitmap(ch, dir.resolve(base + "-time").toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static boolean hitPlot(Path dir, String base, String name, List<Map<String, Object>> cells) throws IOException {
        List<Map<String, Object>> off = cells.stream().filter(c -> c.containsKey("exact_hit_rate")).toList();
        if (off.isEmpty()) return false;
        CategoryChart ch = new CategoryChartBuilder().width(900).height(520).title(name + ": where decode expert uses were served").yAxisTitle("share of expert uses (%)").build();
        List<String> labels = off.stream().map(c -> String.valueOf(c.get("label"))).toList();
        String[][] parts = {{"exact hit", "exact_hit_rate"}, {"substitution", "substitution_rate"}, {"prefetch hit", "prefetch_hit_rate"},
                {"miss (loaded)", "miss_loaded_rate"}, {"miss (computed from store)", "miss_computed_rate"}};
        for (String[] p : parts) ch.addSeries(p[0], labels, off.stream().map(c -> (Number) (100 * d(c, p[1]))).toList());
        ch.getStyler().setStacked(true);
        ch.getStyler().setXAxisLabelRotation(30);
        ch.getStyler().setYAxisMax(100.0);
        ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        BitmapEncoder.saveBitmap(ch, dir.resolve(base + "-hits").toString(), BitmapEncoder.BitmapFormat.PNG);
        return true;
    }

    @SuppressWarnings("unchecked")
    private static void tradeoffPlots(Path dir, String base, String name, List<Map<String, Object>> cells) throws IOException {
        XYChart acc = new XYChartBuilder().width(900).height(520).title(name + ": accuracy vs latency (one point per configuration)")
                .xAxisTitle("ms per output token").yAxisTitle("%").build();
        XYChart div = new XYChartBuilder().width(900).height(520).title(name + ": divergence from the exact run vs latency")
                .xAxisTitle("ms per output token").yAxisTitle("KL (nats) / perplexity change (%)").build();
        List<Map<String, Object>> qc = cells.stream().filter(c -> c.containsKey("quality")).sorted((a, b) -> Double.compare(d(a, "ms_per_token"), d(b, "ms_per_token"))).toList();
        double[] x = qc.stream().mapToDouble(c -> d(c, "ms_per_token")).toArray();
        acc.addSeries("top-1 agreement %", x, qc.stream().mapToDouble(c -> 100 * d((Map<String, Object>) c.get("quality"), "top1_agreement")).toArray());
        if (qc.stream().allMatch(c -> ((Map<String, Object>) c.get("quality")).containsKey("eval_accuracy"))) {
            acc.addSeries("eval accuracy %", x, qc.stream().mapToDouble(c -> 100 * d((Map<String, Object>) c.get("quality"), "eval_accuracy")).toArray());
        }
        div.addSeries("KL mean", x, qc.stream().mapToDouble(c -> d((Map<String, Object>) c.get("quality"), "kl_mean")).toArray());
        div.addSeries("KL p99", x, qc.stream().mapToDouble(c -> d((Map<String, Object>) c.get("quality"), "kl_p99")).toArray());
        div.addSeries("perplexity change %", x, qc.stream().mapToDouble(c -> 100 * d((Map<String, Object>) c.get("quality"), "ppl_delta")).toArray());
        for (XYChart ch : new XYChart[]{acc, div}) {
            ch.getStyler().setDefaultSeriesRenderStyle(org.knowm.xchart.XYSeries.XYSeriesRenderStyle.Scatter);
            ch.getStyler().setMarkerSize(9);
            ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        }
        BitmapEncoder.saveBitmap(acc, dir.resolve(base + "-tradeoff").toString(), BitmapEncoder.BitmapFormat.PNG);
        BitmapEncoder.saveBitmap(div, dir.resolve(base + "-divergence").toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    @SuppressWarnings("unchecked")
    private static void recall(StringBuilder md, Path dir, String base, Map<String, Object> r) throws IOException {
        List<Map<String, Object>> ps = (List<Map<String, Object>>) r.get("predictors");
        XYChart ch = new XYChartBuilder().width(900).height(520).title("recall of the next layers' experts vs lookahead")
                .xAxisTitle("lookahead (layers ahead)").yAxisTitle("recall (%)").build();
        md.append(String.format(Locale.ROOT, "Teacher-forced over %s tokens; each predictor names %s experts per predicted layer.%n%n", r.get("tokens"), r.get("width")));
        md.append("| predictor |");
        int depth = ((double[]) ps.get(0).get("recall")).length;
        for (int d = 1; d <= depth; d++) md.append(" lookahead ").append(d).append(" |");
        md.append('\n').append("|---".repeat(depth + 1)).append("|\n");
        for (Map<String, Object> p : ps) {
            double[] rec = (double[]) p.get("recall");
            double[] xs = new double[rec.length], ys = new double[rec.length];
            md.append("| ").append(p.get("predictor")).append(" |");
            for (int i = 0; i < rec.length; i++) {
                xs[i] = i + 1;
                ys[i] = 100 * rec[i];
                md.append(String.format(Locale.ROOT, " %.1f%% |", 100 * rec[i]));
            }
            md.append('\n');
            ch.addSeries(String.valueOf(p.get("predictor")), xs, ys);
        }
        ch.getStyler().setYAxisMin(0.0);
        ch.getStyler().setYAxisMax(100.0);
        ch.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        BitmapEncoder.saveBitmap(ch, dir.resolve(base + "-recall").toString(), BitmapEncoder.BitmapFormat.PNG);
        md.append("\n![recall vs lookahead](").append(base).append("-recall.png)\n\n");
    }

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

    private static String pct(Map<String, Object> m, String k) {
        return m.containsKey(k) ? String.format(Locale.ROOT, "%.1f%%", 100 * d(m, k)) : "-";
    }

    private static String missPct(Map<String, Object> m) {
        return m.containsKey("miss_loaded_rate") ? String.format(Locale.ROOT, "%.1f%%", 100 * (d(m, "miss_loaded_rate") + d(m, "miss_computed_rate"))) : "-";
    }
}
