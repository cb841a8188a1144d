package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.GateLookaheadPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.generate.Sampler;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.experts.predict.PredictorSettings;
import dev.jmoe.model.InferenceState;
import dev.jmoe.tensor.GgmlType;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
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
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe predict-bench}: decode time per token of prediction-driven loading, side by side in one process and
 * interleaved over several rounds (so machine noise hits every configuration alike): fully resident, resident with
 * the shadow running (its cost), OD-MoE just-in-time loading with no / gate / shadow prediction, and at each budget
 * OD-MoE, SMoE with its own next-layer gate, SMoE and exact SMoE prefetching from the shadow.
 */
@Command(name = "predict-bench", description = "Decode speed of prediction-driven expert loading (odmoe, smoe + shadow) next to resident, side by side.")
final class PredictBenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions modelOptions = new ModelOptions();

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "text whose first tokens are the prompt (default: models/test.txt)")
    Path textFile;
    @Option(names = "--prompt-tokens", paramLabel = "TOKENS", description = "prompt length in tokens (default: ${DEFAULT-VALUE})")
    int promptTokens = 32;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "greedy tokens to decode per run (default: ${DEFAULT-VALUE})")
    int nPredict = 32;
    @Option(names = "--expert-memory", split = ",", paramLabel = "BYTES", description = "expert-memory budgets, comma-separated (default: 1/3,1/8)")
    List<String> budgets = List.of("1/3", "1/8");
    @Option(names = "--store", paramLabel = "NAME", description = "where every expert lives (default: ${DEFAULT-VALUE}):%n${jmoe.stores}")
    String store = "host";
    @Option(names = "--link", paramLabel = "LINK", description = "emulated link, BANDWIDTH,LATENCY or a preset (default: ${DEFAULT-VALUE}):%n${jmoe.links}")
    String link = "emmc";
    @Option(names = "--shadow", paramLabel = "TYPE", description = "shadow precision (default: ${DEFAULT-VALUE})")
    String shadowType = "q8_0";
    @Option(names = "--lookahead", paramLabel = "LAYERS", description = "layers ahead (default: ${DEFAULT-VALUE})")
    int lookahead = 2;
    @Option(names = "--shadow-margin", paramLabel = "MARGIN", description = "shadow adaptive width, as for generate (default: ${DEFAULT-VALUE})")
    double shadowMargin = PredictorSettings.DEFAULT_MARGIN;
    @Option(names = "--align-period", paramLabel = "TOKENS[,KV]", description = "shadow alignment (default: ${DEFAULT-VALUE})")
    String alignPeriod = "1,1";
    @Option(names = "--loader-threads", paramLabel = "COUNT", description = "expert loader threads (default: ${DEFAULT-VALUE})")
    int loaderThreads = 1;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", description = "interleaved rounds; the median is reported (default: ${DEFAULT-VALUE})")
    int rounds = 3;
    @Option(names = "--only", split = ",", paramLabel = "NAME", description = "run only these configurations (names as printed)")
    List<String> only;
    @Option(names = "--json", paramLabel = "FILE", description = "write every figure as JSON") Path json;

    /** One configuration: policy (resident, odmoe or a caching preset), predictor and budget (null: resident / working set). */
    private record Config(String name, String policy, String predictor, String budget) {}

    private record Result(int[] tokens, long ttft, long decode, long cpu, long shadowCpu, OffloadStats stats, ShadowPredictor.Stats shadow) {
        double msPerToken() { return decode / 1e6 / tokens.length; }
    }

    @Override
    public Integer call() throws Exception {
        if (promptTokens < 1 || nPredict < 1 || rounds < 1) throw new IllegalArgumentException("--prompt-tokens, -n and --repetitions must be at least 1");
        Link l = Link.parse(link);
        Alignment align = Alignment.parse(alignPeriod);
        GgmlType st = PredictorSettings.parseShadowType(shadowType);
        PrintWriter out = spec.commandLine().getOut();
        List<Config> configs = new ArrayList<>();
        configs.add(new Config("resident", "resident", "none", null));
        configs.add(new Config("resident+shadow", "resident", "shadow", null));
        configs.add(new Config("odmoe+none", "odmoe", "none", null));
        configs.add(new Config("odmoe+gate", "odmoe", "gate", null));
        configs.add(new Config("odmoe+shadow", "odmoe", "shadow", null));
        for (String b : budgets) {
            configs.add(new Config("odmoe+shadow", "odmoe", "shadow", b.trim()));
            configs.add(new Config("smoe", "smoe", "none", b.trim()));
            configs.add(new Config("smoe+shadow", "smoe", "shadow", b.trim()));
            configs.add(new Config("exact-smoe+shadow", "exact-smoe", "shadow", b.trim()));
        }
        if (only != null) configs.removeIf(c -> !only.contains(c.name()) && !c.name().equals("resident"));
        for (Config c : configs) config(c); // every name checked before the model loads
        try (Engine engine = Runs.open(modelOptions, null, null, 0, spec.commandLine().getErr())) {
            if (!engine.info().isMixtureOfExperts()) throw new IllegalArgumentException(engine.info().path() + " has no routed experts");
            engine.shadows().copy(st); // made once, before any timing
            int[] prompt = prompt(engine);
            if (prompt.length + nPredict > engine.contextSize()) throw new IllegalArgumentException("prompt + decode exceed --ctx-size " + engine.contextSize());
            ExpertLayout layout = ExpertLayout.of(engine.model());
            var hp = engine.model().hyperparams();
            out.printf(Locale.ROOT, "model %s: %d layers x %d experts (top-%d), %s per expert, %s of experts; main threads %d, shadow %s (margin %s) on 1 thread, "
                            + "%d loader thread(s); prompt %d, decode %d; store %s, link %s; lookahead %d, alignment %s; median of %d interleaved rounds%n",
                    engine.info().path().getFileName(), hp.nLayer(), hp.nExpert(), hp.nExpertUsed(), Units.bytes(layout.maxExpertBytes()),
                    Units.bytes(layout.totalBytes()), engine.pool().threads(), shadowType, shadowMargin, loaderThreads, prompt.length, nPredict, store, l, lookahead, align, rounds);
            out.flush();
            for (Config c : configs) run(engine, prompt, c); // warm-up round, not reported
            List<List<Result>> results = new ArrayList<>();
            for (int i = 0; i < configs.size(); i++) results.add(new ArrayList<>());
            try (Status status = new Status("predict-bench", modelOptions.quiet)) {
                for (int r = 0; r < rounds; r++) {
                    for (int i = 0; i < configs.size(); i++) {
                        results.get(i).add(run(engine, prompt, configs.get(i)));
                        status.update((long) r * configs.size() + i + 1, (long) rounds * configs.size(), "runs");
                    }
                }
            }
            report(out, configs, results, hp.nLayer(), engine);
        }
        return 0;
    }

    private void report(PrintWriter out, List<Config> configs, List<List<Result>> results, int nLayer, Engine engine) throws java.io.IOException {
        double residentMs = median(results.get(0));
        int[] reference = results.get(0).get(0).tokens();
        out.printf("%n%-18s %-7s %9s %7s %8s %7s %9s %9s %8s %9s %9s %6s%n", "config", "budget", "ms/token", "x res.", "TTFT ms", "hit%", "stall/tok",
                "moved/tok", "shadow%", "shadowCPU", "procCPU", "same");
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < configs.size(); i++) {
            Config c = configs.get(i);
            List<Result> rs = results.get(i);
            Result last = rs.get(rs.size() - 1);
            double ms = median(rs);
            OffloadStats s = last.stats();
            int d = OffloadStats.DECODE;
            String hit = s == null ? "-" : String.format(Locale.ROOT, "%.1f", 100 * s.hitRate(d));
            String stall = s == null ? "-" : String.format(Locale.ROOT, "%.2f", s.get(d, Counter.STALL_NANOS) / 1e6 / nPredict);
            String moved = s == null ? "-" : Units.bytes(s.get(d, Counter.BYTES_MOVED) / nPredict);
            ShadowPredictor.Stats sh = last.shadow();
            String shadowPct = sh == null ? "-" : String.format(Locale.ROOT, "%.1f", 100.0 * sh.served() / Math.max(1, sh.served() + sh.fallbacks()));
            String shadowCpu = sh == null ? "-" : String.format(Locale.ROOT, "%.2f", last.shadowCpu() / 1e6 / nPredict);
            int same = Same.prefix(reference, last.tokens());
            out.printf(Locale.ROOT, "%-18s %-7s %9.2f %7.2f %8.1f %7s %9s %9s %8s %9s %9.2f %6s%n", c.name(), c.budget() == null ? "-" : c.budget(), ms,
                    ms / residentMs, last.ttft() / 1e6, hit, stall, moved, shadowPct, shadowCpu, last.cpu() / 1e6 / nPredict,
                    same == reference.length ? "yes" : same + "/" + reference.length);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("config", c.name());
            row.put("policy", c.policy());
            row.put("predictor", c.predictor());
            row.put("budget", c.budget());
            row.put("ms_per_token_median", ms);
            row.put("ms_per_token_rounds", rs.stream().map(Result::msPerToken).toList());
            row.put("vs_resident", ms / residentMs);
            row.put("ttft_ms", last.ttft() / 1e6);
            row.put("process_cpu_ms_per_token", last.cpu() / 1e6 / nPredict);
            row.put("tokens_equal_resident", same);
            if (sh != null) {
                row.put("shadow_cpu_ms_per_token", last.shadowCpu() / 1e6 / nPredict);
                row.put("shadow", sh);
            }
            if (s != null) row.put("offload", s.report());
            rows.add(row);
        }
        out.println("(ms/token: median decode time; x res.: over resident; hit%: decode expert uses found loaded or arriving; stall/tok: ms waited for loads;"
                + " shadow%: predictions the shadow answered (the rest fell back to gate lookahead); shadowCPU / procCPU: CPU ms per decode token of the"
                + " shadow thread / the whole process; " + Same.MEANING + ")");
        if (json != null) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("model", engine.info().path().toString());
            j.put("prompt_tokens", promptTokens);
            j.put("decode_tokens", nPredict);
            j.put("main_threads", engine.pool().threads());
            j.put("store", store);
            j.put("link", link);
            j.put("shadow", shadowType);
            j.put("lookahead", lookahead);
            j.put("shadow_margin", shadowMargin);
            j.put("align_period", alignPeriod);
            j.put("rounds", rounds);
            j.put("runs", rows);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), j);
        }
    }

    private static double median(List<Result> rs) {
        double[] v = rs.stream().mapToDouble(Result::msPerToken).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    /** The expert runtime of one configuration. */
    private ExpertRuntimeConfig config(Config c) {
        if (c.policy().equals("resident")) return ExpertRuntimeConfig.builder().predictor(c.predictor()).lookahead(lookahead).shadowType(shadowType)
                .shadowMargin(shadowMargin).alignPeriod(alignPeriod).build();
        return ExpertRuntimeConfig.builder().policy(c.policy()).expertMemory(c.budget()).store(store).link(link).loaderThreads(loaderThreads)
                .predictor(c.predictor()).lookahead(lookahead).shadowType(c.predictor().equals("shadow") ? shadowType : null)
                .shadowMargin(c.predictor().equals("shadow") ? shadowMargin : null).alignPeriod(c.predictor().equals("shadow") ? alignPeriod : null).build();
    }

    private Result run(Engine engine, int[] prompt, Config c) throws java.io.IOException, InterruptedException {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (Session session = engine.newSession(SessionOptions.experts(config(c)))) {
            if (!session.awaitPredictorWarm(120)) throw new IllegalStateException("the shadow did not warm up within 120 s");
            InferenceState st = session.state();
            long t0 = System.nanoTime();
            float[] logits = st.eval(prompt, 0, prompt.length, engine.config().batchSize());
            long ttft = System.nanoTime() - t0;
            ShadowPredictor.Stats before = shadowStats(session);
            long shadow0 = before == null ? 0 : before.cpuNanos(), cpu0 = os.getProcessCpuTime();
            int[] tokens = new int[nPredict];
            long t1 = System.nanoTime();
            for (int i = 0; i < nPredict; i++) {
                tokens[i] = Sampler.argmax(logits);
                logits = st.next(tokens[i]);
            }
            long decode = System.nanoTime() - t1;
            long cpu = os.getProcessCpuTime() - cpu0;
            ShadowPredictor.Stats shadowStats = shadowStats(session);
            long shadowCpu = shadowStats == null ? 0 : shadowStats.cpuNanos() - shadow0;
            return new Result(tokens, ttft, decode, cpu, shadowCpu, session.offloadStats(), shadowStats);
        }
    }

    private static ShadowPredictor.Stats shadowStats(Session s) {
        var r = s.predictorReport();
        return r == null ? null : r.shadow();
    }

    private int[] prompt(Engine engine) throws java.io.IOException {
        Path p = textFile != null ? textFile : DefaultModel.home().resolve("models/test.txt");
        if (textFile != null && !Files.isRegularFile(textFile)) throw new IllegalArgumentException("text file not found: " + textFile);
        String text = Files.isRegularFile(p) ? Files.readString(p, StandardCharsets.UTF_8)
                : "The router scores every expert; the best ones are chosen, and their outputs are mixed with weights that sum to one. ".repeat(8);
        int[] all = engine.tokenizer().encode(text.substring(0, Math.min(text.length(), promptTokens * 16)), true, false);
        if (all.length < promptTokens) throw new IllegalArgumentException("the text has only " + all.length + " tokens, fewer than --prompt-tokens " + promptTokens);
        return Arrays.copyOf(all, promptTokens);
    }
}
