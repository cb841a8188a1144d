package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.experts.predict.PredictorSettings;
import dev.jmoe.experts.predict.Predictors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.eval.MultipleChoice;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.PredictionEvaluator;
import dev.jmoe.experts.predict.PredictionMetrics;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
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
 * {@code jmoe bench}: a grid of policy variants × budgets × links × predictors × α over a set of prompts, every
 * configuration measured {@code repeat} times in interleaved rounds after warm-up runs (median and spread), with
 * optional quality figures per configuration (fidelity against the exact run, eval accuracy) and predictor recall
 * per lookahead. Writes a human table, JSON, and with {@code --out} a Markdown report with PNG plots.
 */
@Command(name = "bench", description = "Benchmark a grid of policies x budgets x links x predictors x alpha; JSON, Markdown and PNG plots with --out.")
final class BenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--config", paramLabel = "FILE", description = "JSON grid (see bench/report.json); the grid flags below are ignored when given") Path config;
    @Option(names = "--policy", split = ",", paramLabel = "NAME", description = "policy presets, comma-separated; resident = no offloading"
            + " (default: lru-ondemand,smoe):%n${jmoe.policies}") List<String> policies = List.of("lru-ondemand", "smoe");
    @Option(names = "--expert-memory", split = ",", paramLabel = "BYTES", description = "budgets, comma-separated (default: 1/3)") List<String> budgets = List.of("1/3");
    @Option(names = "--link", split = ";", paramLabel = "LINK", description = "links; repeat the flag or separate with ';' (a link itself may contain a"
            + " comma) (default: emmc):%n${jmoe.links}") List<String> links = List.of("emmc");
    @Option(names = "--predictor", split = ",", paramLabel = "NAME", description = "predictors that drive prefetch or odmoe, comma-separated (default:"
            + " none):%n${jmoe.predictors}") List<String> predictors = List.of("none");
    @Option(names = "--alpha", split = ",", paramLabel = "ALPHA", description = "substitution thresholds to sweep, comma-separated (default: each preset's)") List<Double> alphas;
    @Option(names = "--store", paramLabel = "NAME", description = "where every expert lives (default: ${DEFAULT-VALUE}):%n${jmoe.stores}") String store = "direct";
    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "text for prompts and quality (default: models/test.txt)") Path textFile;
    @Option(names = "--prompts", paramLabel = "COUNT", description = "prompts cut from the text (default: ${DEFAULT-VALUE})") int prompts = 2;
    @Option(names = "--prompt-tokens", paramLabel = "TOKENS", description = "tokens per prompt (default: ${DEFAULT-VALUE})") int promptTokens = 32;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "greedy tokens per prompt (default: ${DEFAULT-VALUE})") int nPredict = 24;
    @Option(names = "--warmup", paramLabel = "COUNT", description = "warm-up runs per configuration (default: ${DEFAULT-VALUE})") int warmup = 1;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", description = "measured runs per configuration, interleaved (default: ${DEFAULT-VALUE})") int repeat = 3;
    @Option(names = "--quality", description = "also measure fidelity against the exact run (and eval accuracy with --eval-task) per configuration") boolean quality;
    @Option(names = "--eval-task", paramLabel = "FILE", description = "multiple-choice task for --quality") Path evalTask;
    @Option(names = "--eval-limit", paramLabel = "COUNT", description = "items of the eval task scored (default: ${DEFAULT-VALUE})") int evalLimit = 40;
    @Option(names = "--out", paramLabel = "DIR", description = "write README.md, bench.json and PNG plots there") Path out;
    @Option(names = "--json", paramLabel = "FILE", description = "write every figure as JSON") Path json;
    @Option(names = "--trace", paramLabel = "FILE", description = "record the resident run's routing on the bench prompts (first model)") Path trace;
    @Option(names = "--memory-limit", split = ",", paramLabel = "SIZE|PCT", description = "run every configuration as bin/jmoe generate inside a memory"
            + " limit created for it (a cgroup as root, else systemd-run), e.g. 400MB or 60%% of the model file; reports decode t/s, peak usage, OOM kills,"
            + " refaults and the I/O bound. Configurations: --expert-memory values (default auto) x --policy values (default the run's own)") List<String> memoryLimits;
    @Option(names = "--llama-bench", paramLabel = "EXE", description = "with --memory-limit: also run llama.cpp's llama-bench in the same limit and rounds") Path llamaBench;

    /** The shadow precision of the experiment being run (null: the default). */
    private String currentShadow;
    /** The lookahead of the experiment being run (null: the default). */
    private Integer currentLookahead;

    /** One grid point. */
    record Cell(BenchConfig.Variant variant, String budget, String link, String predictor, Double alpha, String label) {}

    /** One timed run over all prompts. */
    record Run(double ttftMs, double msPerToken, int[][] tokens, OffloadStats stats) {}

    @Override
    public Integer call() throws Exception {
        if (memoryLimits != null) return limited();
        if (llamaBench != null) throw new IllegalArgumentException("--llama-bench needs --memory-limit (jmoe speed --llama-bench compares without a limit)");
        BenchConfig cfg = config != null ? BenchConfig.read(config) : fromFlags();
        // where the figures come from, taken before the run (the source tree may change while it runs)
        Map<String, Object> provenance = new LinkedHashMap<>(Provenance.of(commandLine()));
        provenance.put("started", Provenance.at("start"));
        PrintWriter o = spec.commandLine().getOut();
        List<Map<String, Object>> modelResults = new ArrayList<>();
        List<String> models = cfg.models().isEmpty() ? Arrays.asList((String) null) : cfg.models();
        if (modelOptions.model != null) models = List.of(modelOptions.model.toString());
        Path text = textFile != null ? textFile : Path.of(cfg.text());
        if (!text.isAbsolute() && !Files.exists(text)) text = DefaultModel.home().resolve(text.toString());
        if (!Files.isRegularFile(text)) throw new IllegalArgumentException("text file not found: " + text);
        String body = Files.readString(text, StandardCharsets.UTF_8);
        List<MultipleChoice.Item> task = cfg.evalTask() == null ? null : MultipleChoice.read(Path.of(cfg.evalTask()));
        boolean first = true;
        for (String model : models) {
            modelOptions.model = model == null ? null : Path.of(model);
            modelOptions.ctxSize = Math.max(Math.max(256, cfg.qualityCtx()), cfg.promptTokens() + cfg.nPredict());
            String key = model;
            if (cfg.experiments().stream().noneMatch(e -> e.runsOn(key))) continue;
            try (Engine engine = Runs.open(modelOptions, null, null, 0, spec.commandLine().getErr())) {
                modelResults.add(benchModel(engine, cfg, body, task, first ? trace : null, o, key));
            }
            first = false;
        }
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("command", commandLine());
        provenance.put("finished", Provenance.at("finish"));
        all.put("provenance", provenance);
        all.put("machine", machine());
        all.put("settings", settings(cfg));
        all.put("models", modelResults);
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        if (json != null) om.writeValue(json.toFile(), all);
        if (out != null) {
            Files.createDirectories(out);
            om.writeValue(out.resolve("bench.json").toFile(), all);
            BenchReport.write(out, all, cfg);
            o.println("report: " + out.resolve("README.md"));
        }
        return 0;
    }

    /** --memory-limit: each configuration in its own limit, as a child bin/jmoe generate (dev.jmoe.memory.LimitBench). */
    private Integer limited() throws Exception {
        var pr = spec.commandLine().getParseResult();
        if (modelOptions.model == null) throw new IllegalArgumentException("--memory-limit needs -m MODEL");
        List<List<String>> configs = new ArrayList<>();
        List<String> bs = pr.hasMatchedOption("--expert-memory") ? budgets : List.of("auto");
        List<String> ps = pr.hasMatchedOption("--policy") ? policies : Arrays.asList((String) null);
        for (String b : bs) {
            for (String p : ps) {
                List<String> c = new ArrayList<>(List.of("--expert-memory", b));
                if (p != null) c.addAll(List.of("--policy", p));
                if (pr.hasMatchedOption("--store")) c.addAll(List.of("--store", store));
                configs.add(c);
            }
        }
        int gen = pr.hasMatchedOption("-n") ? nPredict : 64;
        int ctx = modelOptions.ctxSize != null ? modelOptions.ctxSize : 256;
        var settings = new dev.jmoe.memory.LimitBench.Settings(List.of(modelOptions.model), memoryLimits, configs, llamaBench, modelOptions.threadCount(),
                gen, "Once upon a time", ctx, repeat, DefaultModel.home().resolve("bin/jmoe"), Files.createTempDirectory("jmoe-limit-bench"));
        Map<String, Object> res = new dev.jmoe.memory.LimitBench(settings, spec.commandLine().getOut()).run();
        res.put("command", commandLine());
        if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), res);
        return 0;
    }

    private BenchConfig fromFlags() {
        List<BenchConfig.Variant> vs = new ArrayList<>();
        for (String p : policies) vs.add(BenchConfig.variant(p, "--policy"));
        List<Double> as = alphas == null ? List.of() : alphas;
        var e = new BenchConfig.Experiment("bench", "", vs, budgets, links, predictors, as, quality, null);
        return new BenchConfig(List.of(), textFile != null ? textFile.toString() : "models/test.txt", prompts, promptTokens, nPredict, warmup, repeat, store,
                128, 2, evalTask == null ? null : evalTask.toString(), evalLimit, List.of(e)).validated("flags");
    }

    private Map<String, Object> benchModel(Engine engine, BenchConfig cfg, String body, List<MultipleChoice.Item> task, Path tracePath, PrintWriter o,
                                           String modelKey) throws Exception {
        var lmModel = engine.model();
        var tokenizer = engine.tokenizer();
        int bos = tokenizer.addBos() ? tokenizer.bos() : -1;
        int need = (cfg.promptTokens() + 1) * cfg.prompts() + cfg.qualityCtx() * cfg.qualityChunks() + 1024;
        int[] tokens = tokenizer.encode(body.substring(0, Math.min(body.length(), need * 8)), true, false);
        int[][] ps = TextPrompts.cut(tokens, cfg.prompts(), cfg.promptTokens(), bos);
        Map<String, Object> res = new LinkedHashMap<>();
        res.put("model", engine.info().path().toString());
        res.put("architecture", lmModel.spec().name());
        res.put("layers", lmModel.hyperparams().nLayer());
        res.put("experts", lmModel.hyperparams().nExpert());
        res.put("experts_used", lmModel.hyperparams().nExpertUsed());
        res.put("expert_bytes", dev.jmoe.experts.store.ExpertLayout.of(lmModel).totalBytes());
        o.printf("%n== %s: %d layers, %d experts (top-%d); %s x %d prompt tokens, %d decoded, warm-up %d, repeat %d, store %s%n", engine.info().path().getFileName(),
                lmModel.hyperparams().nLayer(), lmModel.hyperparams().nExpert(), lmModel.hyperparams().nExpertUsed(), TextPrompts.describe(ps).split(" ")[0],
                cfg.promptTokens(), cfg.nPredict(), cfg.warmup(), cfg.repeat(), cfg.store());
        o.flush();
        if (tracePath != null) {
            try (Session s = engine.newSession(SessionOptions.experts(ExpertRuntimeConfig.RESIDENT).withRoutingTrace(tracePath))) {
                run(engine, s.state(), ps, cfg.nPredict());
            }
        }
        int[][] residentTokens = null;
        Session exact = null;
        Double residentEval = null;
        List<Map<String, Object>> exps = new ArrayList<>();
        for (BenchConfig.Experiment e : cfg.experiments()) {
            if (!e.runsOn(modelKey)) continue;
            Map<String, Object> em = new LinkedHashMap<>();
            em.put("name", e.name());
            em.put("description", e.description());
            if (e.recall() != null) {
                em.put("recall", recall(engine, e.recall(), tokens));
                exps.add(em);
                continue;
            }
            if (residentTokens == null) {
                try (Session s = engine.newSession(SessionOptions.experts(ExpertRuntimeConfig.RESIDENT))) {
                    residentTokens = run(engine, s.state(), ps, cfg.nPredict()).tokens();
                }
            }
            List<Cell> cells = cells(e);
            currentShadow = e.shadow();
            currentLookahead = e.lookahead() == null ? null : e.lookahead() == 0 ? lmModel.hyperparams().nLayer() : e.lookahead();
            List<List<Run>> runs = new ArrayList<>();
            for (int i = 0; i < cells.size(); i++) runs.add(new ArrayList<>());
            // without timing (models too small for timings to mean anything) one run gives the hit rates and tokens
            int warmup = e.timing() ? cfg.warmup() : 0, repeat = e.timing() ? cfg.repeat() : 1;
            int total = cells.size() * (warmup + repeat), done = 0;
            em.put("timing", e.timing());
            em.put("load_average_before", Provenance.loadAverage());
            try (Status status = new Status("bench " + e.name(), modelOptions.quiet)) {
                for (int round = 0; round < warmup + repeat; round++) {
                    // interleaved: every configuration once per round, so load from other processes spreads evenly
                    for (int i = 0; i < cells.size(); i++) {
                        Run r = measured(engine, cells.get(i), cfg, ps);
                        if (round >= warmup) runs.get(i).add(r);
                        status.update(++done, total, cells.get(i).label());
                    }
                }
            }
            em.put("load_average_after", Provenance.loadAverage());
            int ref = reference(cells, e);
            em.put("reference", e.comparesWithPrevious() ? "the configuration above" : cells.get(ref).label());
            List<Map<String, Object>> cellMaps = new ArrayList<>();
            for (int i = 0; i < cells.size(); i++) {
                Map<String, Object> cm = summary(cells.get(i), runs.get(i), residentTokens, cfg);
                int against = e.comparesWithPrevious() ? Math.max(0, i - 1) : ref;
                if (e.timing()) compare(cm, runs.get(i), runs.get(against), i == against);
                else timingRemoved(cm);
                if (e.quality()) {
                    if (exact == null) exact = engine.newSession(SessionOptions.experts(ExpertRuntimeConfig.RESIDENT));
                    cm.put("quality", quality(engine, cells.get(i), cfg, tokens, bos, exact, task));
                }
                cellMaps.add(cm);
            }
            if (e.quality() && task != null && residentEval == null) {
                try (Session s = engine.newSession(SessionOptions.experts(ExpertRuntimeConfig.RESIDENT))) {
                    residentEval = (Double) EvalCommand.measure(engine, s, task, cfg.evalLimit(), true).get("accuracy");
                }
            }
            if (residentEval != null) em.put("resident_eval_accuracy", residentEval);
            em.put("cells", cellMaps);
            exps.add(em);
            BenchReport.printTable(o, e, cellMaps);
        }
        res.put("experiments", exps);
        return res;
    }

    private List<Cell> cells(BenchConfig.Experiment e) {
        List<Cell> out = new ArrayList<>();
        List<Double> as = e.alphas().isEmpty() ? Arrays.asList((Double) null) : e.alphas();
        for (BenchConfig.Variant v : e.variants()) {
            if (v.resident()) {
                out.add(new Cell(v, "all", "-", "none", null, v.label()));
                continue;
            }
            for (String b : e.budgets()) for (String l : e.links()) for (String p : e.predictors()) for (Double a : as) {
                if (v.odmoe() && a != null && a > 0) continue; // OD-MoE computes exactly the routed experts
                StringBuilder label = new StringBuilder(v.label());
                if (e.budgets().size() > 1) label.append(" @").append(b);
                if (e.links().size() > 1) label.append(" ").append(l);
                String pred = v.odmoe() && p.equals("none") ? "shadow" : p;
                if (!pred.equals("none") && (e.predictors().size() > 1 || v.odmoe())) label.append(" +").append(pred);
                if (a != null && !v.odmoe()) label.append(String.format(Locale.ROOT, " a=%.2f", a));
                out.add(new Cell(v, b, l, pred, v.odmoe() ? null : a, label.toString()));
            }
        }
        return out;
    }

    private Run measured(Engine engine, Cell c, BenchConfig cfg, int[][] ps) throws Exception {
        try (Session session = engine.newSession(SessionOptions.experts(runtime(c, cfg, currentShadow, currentLookahead)))) {
            if (!session.awaitPredictorWarm(120)) throw new IllegalStateException(c.predictor() + " did not warm up within 120 s");
            Run r = run(engine, session.state(), ps, cfg.nPredict());
            OffloadStats s = session.offloadStats();
            if (s != null) s.timing(ps[0].length, (long) (r.ttftMs() * 1e6), cfg.nPredict() - 1, (long) (r.msPerToken() * 1e6 * (cfg.nPredict() - 1)));
            return new Run(r.ttftMs(), r.msPerToken(), r.tokens(), s);
        }
    }

    /** The cell others are compared with: the experiment's named reference, else the first. */
    private static int reference(List<Cell> cells, BenchConfig.Experiment e) {
        if (e.reference() != null) {
            for (int i = 0; i < cells.size(); i++) if (cells.get(i).variant().label().equals(e.reference())) return i;
        }
        return 0;
    }

    /** The cell's time against the reference's, paired by round (they ran side by side), with its 95% interval. */
    private static void compare(Map<String, Object> cm, List<Run> runs, List<Run> ref, boolean isReference) {
        double[] ms = runs.stream().mapToDouble(Run::msPerToken).toArray();
        double[] mean = Intervals.geometric(ms);
        cm.put("ms_per_token_mean", mean[0]);
        cm.put("ms_per_token_ci95", new double[]{mean[1], mean[2]});
        if (isReference) return;
        double[] r = Intervals.pairedRatio(ms, ref.stream().mapToDouble(Run::msPerToken).toArray());
        cm.put("ratio_to_reference", r[0]);
        cm.put("ratio_to_reference_ci95", new double[]{r[1], r[2]});
        cm.put("distinguishable_from_reference", Intervals.distinguishable(r));
    }

    /** Without timing, the figures that come from wall time are left out (the hit rates and tokens stay). */
    private static void timingRemoved(Map<String, Object> cm) {
        for (String k : List.of("ms_per_token", "ms_per_token_min", "ms_per_token_max", "ms_per_token_runs", "tokens_per_s", "ttft_ms", "stall_ms")) cm.remove(k);
    }

    /** The expert runtime a cell describes (resident: none). */
    private static ExpertRuntimeConfig runtime(Cell c, BenchConfig cfg, String shadow, Integer lookahead) {
        if (c.variant().resident()) return ExpertRuntimeConfig.RESIDENT;
        BenchConfig.Variant v = c.variant();
        boolean usesShadow = c.predictor().equals("shadow");
        ExpertRuntimeConfig.Builder b = ExpertRuntimeConfig.builder().policy(v.policy()).expertMemory(c.budget()).store(cfg.store()).link(c.link())
                .slowCompute(cfg.slowCompute())
                .predictor(c.predictor()).alignPeriod(usesShadow ? "1,1" : null).shadowType(usesShadow ? shadow : null)
                .lookahead(c.predictor().equals("none") && !v.odmoe() ? null : v.lookahead() != null ? v.lookahead() : lookahead);
        if (!v.odmoe()) {
            b.eviction(v.eviction()).prefetch(v.prefetch()).balance(v.balance()).prefetchRule(v.prefetchRule()).balanceSplit(v.balanceSplit())
                    .slowOverlap(v.slowOverlap());
            Double alpha = c.alpha() != null ? c.alpha() : v.alpha();
            b.alpha(alpha);
        }
        return b.build();
    }

    /** Greedy decoding from every prompt: TTFT is the mean prompt time, time per token over all decode steps. */
    private static Run run(Engine engine, InferenceState st, int[][] ps, int n) {
        long ttft = 0, decode = 0;
        int steps = 0;
        int[][] toks = new int[ps.length][n];
        for (int p = 0; p < ps.length; p++) {
            st.rewind(0);
            long t0 = System.nanoTime();
            float[] logits = st.eval(ps[p], 0, ps[p].length, engine.config().batchSize());
            long t1 = System.nanoTime();
            ttft += t1 - t0;
            for (int i = 0; i < n; i++) {
                toks[p][i] = dev.jmoe.generate.Sampler.argmax(logits);
                if (i + 1 < n) {
                    logits = st.next(toks[p][i]);
                    steps++;
                }
            }
            decode += System.nanoTime() - t1;
        }
        return new Run(ttft / 1e6 / ps.length, steps == 0 ? 0 : decode / 1e6 / steps, toks, null);
    }

    private static Map<String, Object> summary(Cell c, List<Run> runs, int[][] resident, BenchConfig cfg) {
        // the rounds in the order they ran, so any two configurations' times can be paired round by round from bench.json
        double[] rounds = runs.stream().mapToDouble(Run::msPerToken).toArray();
        double[] ms = rounds.clone();
        java.util.Arrays.sort(ms);
        double med = median(ms);
        Run mid = runs.stream().min((a, b) -> Double.compare(Math.abs(a.msPerToken() - med), Math.abs(b.msPerToken() - med))).orElseThrow();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("label", c.label());
        m.put("policy", c.variant().policy());
        m.put("variant", c.variant().label());
        m.put("budget", c.budget());
        m.put("link", c.link());
        m.put("predictor", c.predictor());
        m.put("alpha", c.alpha() != null ? c.alpha() : c.variant().alpha());
        m.put("ms_per_token", med);
        m.put("ms_per_token_min", ms[0]);
        m.put("ms_per_token_max", ms[ms.length - 1]);
        m.put("ms_per_token_runs", rounds);
        m.put("tokens_per_s", med == 0 ? 0 : 1000 / med);
        m.put("ttft_ms", median(runs.stream().mapToDouble(Run::ttftMs).sorted().toArray()));
        int same = 0, all = 0;
        for (int p = 0; p < resident.length; p++) {
            same += Same.prefix(resident[p], mid.tokens()[p]);
            all += resident[p].length;
        }
        m.put("greedy_identical_tokens", same);
        m.put("greedy_tokens", all);
        OffloadStats s = mid.stats();
        if (s != null) {
            int d = OffloadStats.DECODE;
            double u = Math.max(1, s.uses(d));
            m.put("exact_hit_rate", s.get(d, Counter.EXACT_HITS) / u);
            m.put("substitution_rate", s.get(d, Counter.SUBSTITUTIONS) / u);
            m.put("prefetch_hit_rate", s.get(d, Counter.PREFETCH_HITS) / u);
            m.put("miss_loaded_rate", s.get(d, Counter.MISSES_LOADED) / u);
            m.put("miss_computed_rate", s.get(d, Counter.MISSES_COMPUTED) / u);
            m.put("bytes_moved", s.total(Counter.BYTES_MOVED));
            int decodeTokens = cfg.prompts() * (cfg.nPredict() - 1);
            m.put("decode_bytes_per_token", decodeTokens == 0 ? 0.0 : (double) s.get(d, Counter.BYTES_MOVED) / decodeTokens);
            m.put("stall_ms", s.total(Counter.STALL_NANOS) / 1e6);
            m.put("peak_resident_expert_bytes", s.peakResidentBytes());
            m.put("offload", s.report());
        }
        return m;
    }

    private Map<String, Object> quality(Engine engine, Cell c, BenchConfig cfg, int[] tokens, int bos, Session exact,
                                        List<MultipleChoice.Item> task) throws Exception {
        try (Session approx = engine.newSession(SessionOptions.experts(runtime(c, cfg, currentShadow, currentLookahead)))) {
            Map<String, Object> q = FidelityCommand.measure(engine, exact, approx, tokens, bos, cfg.qualityCtx(), cfg.qualityChunks(), 0, 1, 1, true);
            if (task != null) {
                Map<String, Object> ev = EvalCommand.measure(engine, approx, task, cfg.evalLimit(), true);
                q.put("eval_accuracy", ev.get("accuracy"));
                q.put("eval_accuracy_norm", ev.get("accuracy_norm"));
                q.put("eval_items", ev.get("items"));
            }
            return q;
        }
    }

    /**
     * Recall (and precision) of each predictor per lookahead, teacher-forced over the text, shadows inline (their quality
     * without timing effects). Each shadow is scored at every margin asked for: at 0 it names exactly k experts (recall at
     * width k, the papers' metric), above 0 it adds runners-up, so its precision is reported beside.
     */
    private Map<String, Object> recall(Engine engine, BenchConfig.Recall r, int[] tokens) throws Exception {
        var model = engine.model();
        int nLayer = model.hyperparams().nLayer(), k = model.hyperparams().nExpertUsed(), nExpert = model.hyperparams().nExpert();
        int depth = Math.min(r.maxLookahead(), nLayer);
        int[] seq = Arrays.copyOf(tokens, Math.min(tokens.length, Math.min(r.tokens(), engine.contextSize())));
        InferenceState st = model.newState(engine.contextSize(), engine.pool());
        List<ExpertPredictor> preds = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<Double> margins = new ArrayList<>();
        List<Integer> widths = new ArrayList<>();
        try {
            for (String spec : r.predictors()) {
                boolean shadow = spec.startsWith("shadow");
                for (double margin : shadow ? r.margins() : List.of(0.0)) {
                    PredictorSettings settings = PredictorSettings.DEFAULTS.withMargin(margin);
                    String name = spec;
                    if (spec.startsWith("shadow-")) settings = settings.withShadowType(PredictorSettings.parseShadowType(spec.substring(7)));
                    ExpertPredictor p = Predictors.create(shadow ? "shadow" : name, new Predictors.Context(st, engine.shadows(), settings,
                            Predictors.Mode.EVALUATE_INLINE, NextTokenRule.text(seq)));
                    preds.add(p);
                    names.add(shadow && margin > 0 ? spec + " +margin " + margin : spec);
                    margins.add(margin);
                    // each predictor is asked for as many experts as it names in a run: k, or up to 2k with a margin
                    widths.add(Predictors.width(p, k, nExpert));
                }
            }
        } catch (RuntimeException | java.io.IOException e) {
            preds.forEach(ExpertPredictor::close);
            throw e;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokens", seq.length);
        m.put("k", k);
        m.put("main_model_type", mainType(model));
        try (PredictionEvaluator ev = new PredictionEvaluator(st, preds, depth, widths.stream().mapToInt(Integer::intValue).toArray());
             Status status = new Status("recall", modelOptions.quiet)) {
            for (int i = 0; i < seq.length; i++) {
                st.next(seq[i]);
                status.update(i + 1, seq.length, "tokens");
            }
            List<Map<String, Object>> ps = new ArrayList<>();
            List<PredictionMetrics> metrics = ev.metrics();
            for (int i = 0; i < metrics.size(); i++) {
                PredictionMetrics pm = metrics.get(i);
                Map<String, Object> pmap = new LinkedHashMap<>();
                pmap.put("predictor", names.get(i));
                pmap.put("margin", margins.get(i));
                double[] rec = new double[depth], prec = new double[depth];
                for (int d = 1; d <= depth; d++) {
                    rec[d - 1] = pm.recall(d);
                    prec[d - 1] = pm.precision(d);
                }
                pmap.put("recall", rec);
                pmap.put("precision", prec);
                ps.add(pmap);
            }
            m.put("predictors", ps);
        } finally {
            preds.forEach(ExpertPredictor::close);
        }
        return m;
    }

    /** The type of the main model's routed experts (what a shadow is compared with: it must be of lower precision). */
    private static String mainType(dev.jmoe.model.Model model) {
        for (dev.jmoe.model.StackedExperts s : model.stackedExperts()) if (s != null) return s.gate().type().name();
        return "?";
    }

    static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private String commandLine() {
        return "jmoe " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
    }

    private static Map<String, Object> machine() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("processor", Provenance.processor());
        m.put("cores", Runtime.getRuntime().availableProcessors());
        m.put("java", System.getProperty("java.version"));
        m.put("jdk", System.getProperty("java.vm.vendor") + " " + System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        m.put("max_heap_mib", Runtime.getRuntime().maxMemory() >> 20);
        return m;
    }



    private static Map<String, Object> settings(BenchConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("text", c.text());
        m.put("prompts", c.prompts());
        m.put("prompt_tokens", c.promptTokens());
        m.put("n_predict", c.nPredict());
        m.put("warmup", c.warmup());
        m.put("repeat", c.repeat());
        m.put("store", c.store());
        m.put("slow_compute", c.slowCompute());
        m.put("quality_ctx", c.qualityCtx());
        m.put("quality_chunks", c.qualityChunks());
        m.put("eval_task", c.evalTask());
        m.put("eval_limit", c.evalLimit());
        return m;
    }
}
