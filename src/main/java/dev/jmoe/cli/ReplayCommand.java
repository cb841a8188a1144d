package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe replay --trace FILE}: eviction policies and the Belady bound on a recorded routing trace. */
@Command(name = "replay", description = {"Replay eviction policies and the offline Belady bound on a routing trace: one recorded with --trace, or one"
        + " recorded elsewhere (JSON Lines or text, expert ids in rank order, optionally the selected experts' weights; docs/trace-format.md).",
        "Policies that look ahead (predictive) are driven by a predictor model that sees --lookahead layer steps ahead with --recall, and,"
        + " on a trace with a real predictor's recorded predictions (jmoe predict-eval --trace), by those."})
final class ReplayCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Option(names = "--trace", required = true, paramLabel = "FILE", description = "the routing trace") Path traceFile;
    @Option(names = {"-m", "--model"}, paramLabel = "FILE", description = "the model the trace was recorded with, for expert sizes (default: the path in"
            + " a jmoe trace; without one, experts count one unit each and budgets are fractions)") Path model;
    @Option(names = "--expert-memory", split = ",", paramLabel = "BYTES", description = "budgets, comma-separated (default: 1/4,1/3,1/2)") List<String> budgets = List.of("1/4", "1/3", "1/2");
    @Option(names = "--eviction", split = ",", paramLabel = "NAME", description = "eviction policies to replay, comma-separated (default: all of them):%n${jmoe.evictions}") List<String> evictions;
    @Option(names = "--alpha", paramLabel = "ALPHA", description = "SMoE substitution threshold applied during the replay, 0 = off (default: ${DEFAULT-VALUE}; needs router probabilities)") double alpha = 0;
    @Option(names = "--score-window", paramLabel = "STEPS", description = "decode steps the score eviction averages over (default: ${DEFAULT-VALUE})") int scoreWindow = 16;
    @Option(names = "--lookahead", split = ",", paramLabel = "STEPS", description = "predictor model for look-ahead policies: layer steps it sees ahead,"
            + " comma-separated (default: 1 and the layer count, i.e. the next layer and the next token)") List<Integer> lookaheads;
    @Option(names = "--recall", split = ",", paramLabel = "RECALL", description = "predictor model: share of the true experts it names (the rest are wrong"
            + " experts drawn with --seed), comma-separated (default: 1,0.95)") List<Double> recalls = List.of(1.0, 0.95);
    @Option(names = "--seed", paramLabel = "SEED", description = "seed of the predictor model's mispredictions (default: ${DEFAULT-VALUE})") long seed = 1;
    @Option(names = "--json", paramLabel = "FILE", description = "write every replay's counters as JSON") Path json;

    private static String percent(double rate, long uses) {
        return uses == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * rate);
    }

    @Override
    public Integer call() throws Exception {
        if (alpha < 0 || alpha >= 1) throw new IllegalArgumentException("--alpha must be in [0, 1), got " + alpha);
        if (scoreWindow < 1) throw new IllegalArgumentException("--score-window must be at least 1, got " + scoreWindow);
        for (double r : recalls) if (!(r >= 0 && r <= 1)) throw new IllegalArgumentException("--recall must be in [0, 1], got " + r);
        if (lookaheads != null) for (int h : lookaheads) if (h < 1) throw new IllegalArgumentException("--lookahead must be at least 1, got " + h);
        List<String> policies = evictions != null ? evictions : EvictionPolicies.REGISTRY.names();
        for (String e : policies) EvictionPolicies.REGISTRY.require(e); // named before the trace is read
        RoutingTraceFile.Loaded t = RoutingTraceFile.read(traceFile);
        var trace = t.trace();
        Path mp = model != null ? model : t.model() == null ? null : Path.of(t.model());
        if (model != null && !Files.isRegularFile(model)) throw new IllegalArgumentException("model file not found: " + model);
        PrintWriter out = spec.commandLine().getOut();
        Replay.Sizes sizes;
        if (mp != null && Files.isRegularFile(mp)) {
            try (GgufFile f = GgufFile.open(mp)) {
                ExpertLayout layout = ExpertLayout.of(Model.load(f));
                if (layout.nExpert() != trace.nExpert() || layout.layerCount() != trace.nLayer()) {
                    throw new IllegalArgumentException("the trace has " + trace.nLayer() + " layers x " + trace.nExpert() + " experts but the model "
                            + layout.layerCount() + " x " + layout.nExpert() + "; give the model the trace was recorded with");
                }
                long[] per = new long[trace.nLayer()];
                for (int l = 0; l < per.length; l++) per[l] = layout.hasExperts(l) ? layout.expertBytes(l) : 0;
                sizes = new Replay.Sizes(per, layout.maxExpertBytes(), true);
            }
        } else {
            if (mp != null) out.println("note: the trace's model " + mp + " is not here; experts count one unit each (give the model with -m for bytes)");
            long[] per = new long[trace.nLayer()];
            Arrays.fill(per, 1);
            sizes = new Replay.Sizes(per, 1, false);
        }
        List<Integer> hs = lookaheads != null ? lookaheads : trace.nLayer() == 1 ? List.of(1) : List.of(1, trace.nLayer());
        List<Replay.Row> rows = Replay.run(trace, sizes, t.renormalize(), budgets, policies, alpha, scoreWindow, new Replay.PredictorModels(hs, recalls, seed, t));
        out.printf(Locale.ROOT, "%s (%s trace, %s): %d steps, %d layers x %d experts, top-%d; alpha %.2f%n", traceFile, t.format(),
                trace.detail().name().toLowerCase(Locale.ROOT).replace('_', ' '), trace.steps().size(), trace.nLayer(), trace.nExpert(), trace.k(), alpha);
        for (String n : t.notes()) out.println("note: " + n);
        if (t.predictions() != null) {
            out.printf(Locale.ROOT, "recorded predictions: %s, 1..%d layer steps ahead (rows \"recorded\"; at lookaheads within that depth)%n",
                    t.predictions().predictor(), t.predictions().depth());
        }
        int w = 10;
        for (Replay.Row r : rows) w = Math.max(w, r.label().length());
        String fmt = "%-8s %6s %-" + w + "s %12s %11s %9s %9s %9s %10s%n";
        out.printf(fmt, "budget", "slots", "eviction", "prefill hit%", "decode hit%", "exact", "subst", "loads", sizes.bytes() ? "moved" : "moved (experts)");
        List<Map<String, Object>> list = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        for (Replay.Row r : rows) {
            OffloadStats s = r.stats();
            int d = OffloadStats.DECODE;
            long moved = s.total(Counter.BYTES_MOVED);
            out.printf(Locale.ROOT, fmt, r.budget(), Integer.toString(r.slots()), r.label(), percent(s.hitRate(OffloadStats.PREFILL), s.uses(OffloadStats.PREFILL)),
                    percent(r.decodeHitRate(), s.uses(d)), Long.toString(s.total(Counter.EXACT_HITS)), Long.toString(s.total(Counter.SUBSTITUTIONS)),
                    Long.toString(s.total(Counter.LOADS)), sizes.bytes() ? Units.bytes(moved) : Long.toString(moved));
            if (r.note() != null && !notes.contains(r.note())) notes.add(r.note());
            list.add(r.toMap());
        }
        out.println("(decode hit% counts substitutions as hits; counts are both phases; demand loads only, no prefetch;");
        out.println(" H = layer steps the predictor model sees ahead, r = its recall; belady knows the whole trace)");
        for (String n : notes) out.println("note: " + n);
        if (json != null) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("trace", traceFile.toString());
            j.put("trace_format", t.format());
            j.put("trace_detail", trace.detail().name().toLowerCase(Locale.ROOT));
            j.put("model", mp == null ? null : mp.toString());
            j.put("seed", seed);
            j.put("notes", t.notes());
            if (t.predictions() != null) {
                j.put("recorded_predictor", t.predictions().predictor());
                j.put("recorded_prediction_depth", t.predictions().depth());
            }
            j.put("replays", list);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), j);
        }
        return 0;
    }
}
