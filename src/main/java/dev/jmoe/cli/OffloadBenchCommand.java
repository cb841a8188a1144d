package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.trace.PolicySimulator;
import dev.jmoe.experts.trace.RoutingTrace;
import dev.jmoe.experts.cache.Substitution;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
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
 * {@code jmoe offload-bench}: the same greedy generation under several expert-memory budgets and policies,
 * side by side in one run — decode time per token, TTFT, hit rates and traffic — next to the fully resident
 * run, plus every eviction policy and the Belady bound replayed on the resident run's routing trace.
 */
@Command(name = "offload-bench", description = "Compare offloading policies and budgets on one prompt, side by side.")
final class OffloadBenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions modelOptions = new ModelOptions();

    @Option(names = {"-f", "--file"}, paramLabel = "TEXT", description = "text whose first tokens are the prompt (default: models/test.txt)")
    Path textFile;

    @Option(names = "--prompt-tokens", paramLabel = "TOKENS", description = "prompt length in tokens (default: ${DEFAULT-VALUE})")
    int promptTokens = 32;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "decode steps per run (default: ${DEFAULT-VALUE})")
    int nPredict = 32;

    @Option(names = "--greedy", description = "decode the model's own greedy tokens instead of the text's next tokens"
            + " (a small model's greedy text soon loops, which flatters every cache)")
    boolean greedy;

    @Option(names = "--expert-memory", split = ",", paramLabel = "BYTES", description = "expert-memory budgets, comma-separated (default: 1/4,1/3,1/2)")
    List<String> budgets = List.of("1/4", "1/3", "1/2");

    @Option(names = "--policy", split = ",", paramLabel = "NAME", description = "policy presets, comma-separated (default: lru-ondemand,exact-smoe,smoe):%n${jmoe.policies}")
    List<String> policies = List.of("lru-ondemand", "exact-smoe", "smoe");

    @Option(names = "--store", paramLabel = "NAME", description = "where every expert lives (default: ${DEFAULT-VALUE}):%n${jmoe.stores}")
    String store = "direct";

    @Option(names = "--link", paramLabel = "LINK", description = "emulated link, BANDWIDTH,LATENCY or a preset (default: ${DEFAULT-VALUE}):%n${jmoe.links}")
    String link = "emmc";

    @Option(names = "--slow-compute", paramLabel = "RATIO", description = "override the link's slow-compute ratio, e.g. 10x")
    String slowCompute;

    @Option(names = "--json", paramLabel = "FILE", description = "write every run's figures as JSON")
    Path json;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", description = "runs per configuration, interleaved; the run with the median decode time is reported (default: ${DEFAULT-VALUE})")
    int repeat = 1;

    @Override
    public Integer call() throws Exception {
        if (promptTokens < 1 || nPredict < 1) throw new IllegalArgumentException("--prompt-tokens and -n must be at least 1");
        if (repeat < 1) throw new IllegalArgumentException("--repetitions must be at least 1");
        Link l = Link.parse(link);
        if (slowCompute != null) l = l.withSlowCompute(Link.parseRatio(slowCompute));
        for (String b : budgets) config(b, policies.get(0)); // every name and budget checked before the model loads
        for (String p : policies) config(budgets.get(0), p);
        PrintWriter out = spec.commandLine().getOut();
        try (Engine engine = Runs.open(modelOptions, null, null, 0, spec.commandLine().getErr())) {
            Model m = engine.model();
            int[] text = prompt(engine);
            int[] prompt = Arrays.copyOf(text, promptTokens);
            forced = greedy ? null : Arrays.copyOfRange(text, promptTokens, promptTokens + nPredict);
            if (prompt.length + nPredict > engine.contextSize()) throw new IllegalArgumentException("prompt + decode exceed --ctx-size " + engine.contextSize());
            ExpertLayout layout = ExpertLayout.of(m);
            out.printf("model %s: %d MoE layers x %d experts (top-%d), %s per expert, %s of experts; prompt %d tokens, decode %d (%s); store %s, link %s%n",
                    engine.info().path().getFileName(), m.hyperparams().nLayer(), layout.nExpert(), m.hyperparams().nExpertUsed(),
                    OffloadStatsBytes.of(layout.maxExpertBytes()), OffloadStatsBytes.of(layout.totalBytes()), prompt.length, nPredict,
                    greedy ? "greedy" : "the text's next tokens", store, l);
            out.flush();

            run(engine, prompt, null, null); // JIT warm-up, not reported: the resident path and every policy's
            for (String p : policies) run(engine, prompt, config(budgets.get(0), p), null);
            RoutingTrace trace = new RoutingTrace(m.hyperparams().nLayer(), m.hyperparams().nExpert(), m.hyperparams().nExpertUsed());
            run(engine, prompt, null, trace);
            // Every configuration `repeat` times, round-robin, so that load from other processes spreads evenly.
            List<String[]> configs = new ArrayList<>();
            configs.add(null);
            for (String b : budgets) for (String p : policies) configs.add(new String[]{b.trim(), p.trim()});
            List<List<Result>> results = new ArrayList<>();
            for (int i = 0; i < configs.size(); i++) results.add(new ArrayList<>());
            for (int rep = 0; rep < repeat; rep++) {
                for (int i = 0; i < configs.size(); i++) {
                    String[] c = configs.get(i);
                    results.get(i).add(run(engine, prompt, c == null ? null : config(c[0], c[1]), null));
                }
            }
            Result resident = median(results.get(0));
            List<Map<String, Object>> rows = new ArrayList<>();
            out.printf("%n%-14s %-8s %9s %9s %7s %7s %7s %7s %7s %7s %7s %10s %9s %6s%n", "policy", "budget", "ms/token", "TTFT ms", "hit%",
                    "exact", "subst", "pref", "loaded", "slow", "wasted", "moved", "stall ms", greedy ? "same" : "top-1=");
            out.printf("%-14s %-8s %9.2f %9.1f %7s %7s %7s %7s %7s %7s %7s %10s %9s %6s%n", "resident", "all", resident.msPerToken(),
                    resident.ttftNanos / 1e6, "100.0", "-", "-", "-", "-", "-", "-", "-", "-", "yes");
            out.flush();
            for (int i = 1; i < configs.size(); i++) {
                {
                    String b = configs.get(i)[0], p = configs.get(i)[1];
                    Result r = median(results.get(i));
                    OffloadStats s = r.stats;
                    int d = OffloadStats.DECODE;
                    int same = greedy ? Same.prefix(resident.tokens, r.tokens) : agreeing(resident.tokens, r.tokens);
                    out.printf(Locale.ROOT, "%-14s %-8s %9.2f %9.1f %7.1f %7d %7d %7d %7d %7d %7d %10s %9.1f %6s%n", p, b, r.msPerToken(), r.ttftNanos / 1e6,
                            100 * s.hitRate(d), s.get(d, Counter.EXACT_HITS), s.get(d, Counter.SUBSTITUTIONS), s.get(d, Counter.PREFETCH_HITS),
                            s.get(d, Counter.MISSES_LOADED), s.get(d, Counter.MISSES_COMPUTED), s.get(d, Counter.PREFETCHES_WASTED),
                            OffloadStatsBytes.of(s.get(d, Counter.BYTES_MOVED)), s.get(d, Counter.STALL_NANOS) / 1e6,
                            same == r.tokens.length ? "yes" : same + "/" + r.tokens.length);
                    out.flush();
                    Map<String, Object> row = new LinkedHashMap<>(s.toMap());
                    row.put("budget", b);
                    row.put("tokens_equal_resident", same);
                    row.put("decode_ms_per_token_runs", results.get(i).stream().mapToDouble(Result::msPerToken).toArray());
                    rows.add(row);
                }
            }
            // The policies alone on the resident run's routing: demand caching, no prefetch, no slow side.
            out.printf("%nreplayed on the resident routing (decode hit rate; demand loads only):%n%-8s %7s", "budget", "slots");
            // every registered eviction policy (offline bounds last), and SMoE's substitution on the score window
            List<String> sims = new ArrayList<>();
            // (policies that look ahead through a predictor are replayed by jmoe replay, which has a predictor model)
            for (var e : EvictionPolicies.REGISTRY.entries()) if (!e.value().offline() && !e.value().usesPredictions()) sims.add(e.name());
            if (sims.contains("score")) sims.add(sims.indexOf("score") + 1, "score+a.25");
            for (var e : EvictionPolicies.REGISTRY.entries()) if (e.value().offline()) sims.add(e.name());
            for (String s : sims) out.printf(" %10s", s);
            out.println();
            List<Map<String, Object>> simRows = new ArrayList<>();
            for (String b : budgets) {
                long budget = OffloadConfig.parseBudget(b.trim(), layout.totalBytes());
                int slots = (int) (budget / ((layout.maxExpertBytes() + 63) / 64 * 64));
                out.printf("%-8s %7d", b, slots);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("budget", b);
                row.put("slots", slots);
                for (String s : sims) {
                    if (slots < 1) {
                        out.printf(" %10s", "-");
                        continue;
                    }
                    boolean subst = s.startsWith("score+");
                    EvictionPolicy pol = EvictionPolicies.create(subst ? "score" : s, new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), 16,
                            trace.keySteps()));
                    OffloadStats st = PolicySimulator.simulate(trace, layout, slots, pol,
                            subst ? new Substitution(0.25, m.spec().renormTopK()) : null, m.spec().renormTopK());
                    double hr = st.uses(OffloadStats.DECODE) == 0 ? 0 : (double) (st.get(OffloadStats.DECODE, Counter.EXACT_HITS)
                            + st.get(OffloadStats.DECODE, Counter.SUBSTITUTIONS)) / st.uses(OffloadStats.DECODE);
                    out.printf(Locale.ROOT, " %9.1f%%", 100 * hr);
                    row.put(s, hr);
                }
                out.println();
                simRows.add(row);
            }
            out.println("(hit% = exact + prefetch hits over decode expert uses; replay hit rates count substitutions as hits, as SMoE does;");
            out.println(greedy ? " " + Same.MEANING + ")" : " top-1= = decode steps whose top-1 token is the resident run's)");
            if (json != null) {
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("model", engine.info().path().toString());
                j.put("prompt_tokens", prompt.length);
                j.put("decode_tokens", nPredict);
                j.put("store", store);
                j.put("link", l.toString());
                j.put("resident_ms_per_token", resident.msPerToken());
                j.put("resident_ttft_ms", resident.ttftNanos / 1e6);
                j.put("runs", rows);
                j.put("replayed", simRows);
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), j);
            }
        }
        return 0;
    }

    private int[] forced;

    /** The first --prompt-tokens + -n tokens of the text. */
    /** The expert runtime of one configuration (a policy preset at a budget, on the command's store and link). */
    private ExpertRuntimeConfig config(String budget, String policy) {
        return ExpertRuntimeConfig.builder().expertMemory(budget.trim()).policy(policy.trim()).store(store).link(link)
                .slowCompute(slowCompute == null ? null : Link.parseRatio(slowCompute)).build();
    }

    private int[] prompt(Engine engine) throws java.io.IOException {
        Path p = textFile != null ? textFile : DefaultModel.home().resolve("models/test.txt");
        String text = Files.isRegularFile(p) ? Files.readString(p, StandardCharsets.UTF_8)
                : "The router scores every expert; the best ones are chosen, and their outputs are mixed with weights that sum to one. "
                  .repeat(8);
        if (textFile != null && !Files.isRegularFile(textFile)) throw new IllegalArgumentException("text file not found: " + textFile);
        // Tokenize only a prefix: enough characters for the wanted tokens.
        int want = promptTokens + nPredict;
        int[] all = engine.tokenizer().encode(text.substring(0, Math.min(text.length(), want * 16)), true, false);
        if (all.length < want) throw new IllegalArgumentException("the text has only " + all.length + " tokens, fewer than --prompt-tokens + -n = " + want);
        return Arrays.copyOf(all, want);
    }

    private record Result(int[] tokens, long ttftNanos, long decodeNanos, OffloadStats stats) {
        double msPerToken() { return decodeNanos / 1e6 / tokens.length; }
    }

    private static Result median(List<Result> rs) {
        List<Result> sorted = new ArrayList<>(rs);
        sorted.sort(java.util.Comparator.comparingLong(Result::decodeNanos));
        return sorted.get(sorted.size() / 2);
    }

    private Result run(Engine engine, int[] prompt, ExpertRuntimeConfig cfg, RoutingTrace trace) throws java.io.IOException {
        try (Session session = engine.newSession(SessionOptions.experts(cfg == null ? ExpertRuntimeConfig.RESIDENT : cfg))) {
            InferenceState st = session.state();
            if (trace != null) st.setRoutingHook((layer, pos, n, probs, routing) -> trace.record(layer, n, probs, routing));
            long t0 = System.nanoTime();
            float[] logits = st.eval(prompt, 0, prompt.length, engine.config().batchSize());
            long ttft = System.nanoTime() - t0;
            int[] tokens = new int[nPredict];
            long t1 = System.nanoTime();
            for (int i = 0; i < nPredict; i++) {
                tokens[i] = argmax(logits);
                logits = st.next(forced != null ? forced[i] : tokens[i]);
            }
            long decode = System.nanoTime() - t1;
            OffloadStats stats = session.offloadStats();
            if (stats != null) stats.timing(prompt.length, ttft, nPredict, decode);
            return new Result(tokens, ttft, decode, stats);
        }
    }

    private static int argmax(float[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
        return b;
    }

    /** Steps whose top-1 token is the resident run's. */
    private static int agreeing(int[] a, int[] b) {
        int n = 0;
        for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] == b[i]) n++;
        return n;
    }

    /** Byte counts as the stats print them. */
    private static final class OffloadStatsBytes {
        static String of(long b) { return Units.bytes(b); }
    }
}
