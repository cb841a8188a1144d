package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe replay --trace FILE}: eviction policies and the Belady bound on a recorded routing trace. */
@Command(name = "replay", description = "Replay eviction policies and the offline Belady bound on a routing trace recorded with --trace.")
final class ReplayCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Option(names = "--trace", required = true, paramLabel = "FILE", description = "trace written by --trace") Path traceFile;
    @Option(names = {"-m", "--model"}, paramLabel = "FILE", description = "the model the trace was recorded with, for expert sizes (default: the path in the trace)") Path model;
    @Option(names = "--expert-memory", split = ",", paramLabel = "BYTES", description = "budgets, comma-separated (default: 1/4,1/3,1/2)") List<String> budgets = List.of("1/4", "1/3", "1/2");
    @Option(names = "--eviction", split = ",", paramLabel = "NAME", description = "eviction policies to replay, comma-separated (default: all of them):%n${jmoe.evictions}") List<String> evictions;
    @Option(names = "--alpha", paramLabel = "ALPHA", description = "SMoE substitution threshold applied during the replay, 0 = off (default: ${DEFAULT-VALUE})") double alpha = 0;
    @Option(names = "--score-window", paramLabel = "STEPS", description = "decode steps the score eviction averages over (default: ${DEFAULT-VALUE})") int scoreWindow = 16;
    @Option(names = "--json", paramLabel = "FILE", description = "write every replay's counters as JSON") Path json;

    private static String percent(double rate, long uses) {
        return uses == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * rate);
    }

    @Override
    public Integer call() throws Exception {
        if (alpha < 0 || alpha >= 1) throw new IllegalArgumentException("--alpha must be in [0, 1), got " + alpha);
        List<String> policies = evictions != null ? evictions : dev.jmoe.experts.cache.EvictionPolicies.REGISTRY.names();
        for (String e : policies) dev.jmoe.experts.cache.EvictionPolicies.REGISTRY.require(e); // named before the trace is read
        RoutingTraceFile.Loaded t = RoutingTraceFile.read(traceFile);
        Path mp = model != null ? model : t.model() == null ? null : Path.of(t.model());
        if (mp == null) throw new IllegalArgumentException("the trace names no model; give it with -m");
        if (!java.nio.file.Files.isRegularFile(mp)) throw new IllegalArgumentException("model file not found: " + mp + " (give the trace's model with -m)");
        PrintWriter out = spec.commandLine().getOut();
        List<Replay.Row> rows;
        try (GgufFile f = GgufFile.open(mp)) {
            Model m = Model.load(f);
            rows = Replay.run(t.trace(), ExpertLayout.of(m), t.renormalize(), budgets, policies, alpha, scoreWindow);
        }
        out.printf(Locale.ROOT, "%s: %d steps, %d layers x %d experts, top-%d; alpha %.2f%n", traceFile, t.trace().steps().size(), t.trace().nLayer(),
                t.trace().nExpert(), t.trace().k(), alpha);
        out.printf("%-8s %6s %-8s %12s %11s %9s %9s %9s %10s%n", "budget", "slots", "eviction", "prefill hit%", "decode hit%", "exact", "subst", "loads", "moved");
        List<Map<String, Object>> list = new ArrayList<>();
        for (Replay.Row r : rows) {
            OffloadStats s = r.stats();
            int d = OffloadStats.DECODE;
            out.printf(Locale.ROOT, "%-8s %6d %-8s %12s %11s %9d %9d %9d %10s%n", r.budget(), r.slots(), r.eviction(), percent(s.hitRate(OffloadStats.PREFILL),
                    s.uses(OffloadStats.PREFILL)), percent(r.decodeHitRate(), s.uses(d)), s.total(Counter.EXACT_HITS), s.total(Counter.SUBSTITUTIONS),
                    s.total(Counter.LOADS), Units.bytes(s.total(Counter.BYTES_MOVED)));
            list.add(r.toMap());
        }
        out.println("(decode hit% counts substitutions as hits; counts are both phases; demand loads only, no prefetch)");
        if (json != null) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("trace", traceFile.toString());
            j.put("model", mp.toString());
            j.put("replays", list);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), j);
        }
        return 0;
    }
}
