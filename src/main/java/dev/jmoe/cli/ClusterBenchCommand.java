package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.net.ClusterConfig;
import dev.jmoe.net.ClusterSimulator;
import dev.jmoe.net.ClusterStats;
import dev.jmoe.net.NodeSecurity;
import dev.jmoe.net.NodeProcess;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe cluster-bench}: starts N workers and a shadow node as separate processes on 127.0.0.1, then measures
 * in this process, alternating rounds, the resident run, single-node OD-MoE and distributed OD-MoE on the same prompt
 * (greedy, same tokens), and prints decode tok/s, TTFT, network bytes per token, prediction recall, stalls and every
 * node's peak RSS, with the simulator's prediction for the measured cluster beside it.
 */
@Command(name = "cluster-bench", description = {"Measures distributed OD-MoE against the resident run and single-node OD-MoE, with local worker",
        "and shadow processes (docs/distributed.md)."})
final class ClusterBenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "the main model (GGUF); every worker reads its experts from it")
    Path model;

    @Option(names = "--workers", paramLabel = "COUNT", description = "worker processes to start (default ${DEFAULT-VALUE})")
    int workers = 8;

    @Option(names = "--group-size", paramLabel = "WORKERS", description = "workers per group (default: the model's k)")
    Integer groupSize;

    @Option(names = "--link", paramLabel = "LINK", description = "each worker's own emulated store link, and single-node odmoe's (default ${DEFAULT-VALUE})")
    String link = "emmc";

    @Option(names = "--worker-memory", paramLabel = "BYTES", description = "each worker's expert memory (default: two experts' worth)")
    String workerMemory;

    @Option(names = "--store", paramLabel = "NAME", description = "the workers' and single-node odmoe's store (default ${DEFAULT-VALUE})")
    String store = "direct";

    @Option(names = "--net", paramLabel = "BANDWIDTH[,LATENCY]", description = "network emulated in the transport, e.g. 1Gb/s,100us (default: loopback, not emulated)")
    String net;

    @Option(names = "--netns", paramLabel = "RATE[,DELAY]",
            description = "a real network: workers and the shadow node in network namespaces behind veth pairs and a bridge, every port shaped"
                    + " with tc, e.g. 1gbit,100us (needs root; without netem in the kernel only the rate is shaped)")
    String netns;

    @Option(names = "--shadow-to-workers", description = "also measure distributed odmoe with the shadow node sending load commands straight to the workers")
    boolean shadowToWorkers;

    @Option(names = "--shadow", paramLabel = "TYPE", description = "the shadow node's precision (default ${DEFAULT-VALUE})")
    String shadowType = "q4_0";

    @Option(names = "--prompt-tokens", paramLabel = "TOKENS", description = "prompt tokens (default ${DEFAULT-VALUE})")
    int promptTokens = 16;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "decoded tokens per run (default ${DEFAULT-VALUE})")
    int tokens = 32;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", description = "alternated rounds of the three runs (default ${DEFAULT-VALUE})")
    int rounds = 2;

    @Option(names = {"-t", "--threads"}, paramLabel = "COUNT", description = "main node compute threads (default ${DEFAULT-VALUE})")
    int threads = 1;

    @Option(names = "--no-single", description = "skip the single-node odmoe run")
    boolean noSingle;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the results as JSON")
    Path json;

    private static final String DIRECT = "distributed, shadow->workers";


    private record Proc(String role, Process process, String host, int port) {}

    private NetNamespaces namespaces; // --netns, else null

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (workers < 1 || workers > 64) throw new IllegalArgumentException("--workers must be between 1 and 64");
        if (rounds < 1 || tokens < 2 || promptTokens < 1) throw new IllegalArgumentException("-r/--repetitions must be at least 1, -n/--n-predict at least 2 and --prompt-tokens at least 1");
        Link.parse(link);
        Runs.checkWritable(json, "--json");
        List<Proc> procs = java.util.Collections.synchronizedList(new ArrayList<>());
        NetNamespaces ns = netns != null ? new NetNamespaces(netns) : null;
        Thread hook = new Thread(() -> {
            synchronized (procs) {
                procs.forEach(p -> p.process().destroyForcibly());
                procs.forEach(p -> {
                    try {
                        p.process().waitFor(5, TimeUnit.SECONDS);
                    } catch (InterruptedException ignored) {
                        // shutting down
                    }
                });
            }
            if (ns != null) ns.close(); // Ctrl-C or kill: the namespaces go too
        });
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            if (ns != null) {
                ns.create(workers + 1);
                namespaces = ns;
            }
            for (int i = 0; i < workers; i++) {
                String host = ns != null ? ns.address(i) : "127.0.0.1";
                List<String> a = new ArrayList<>(List.of("worker", "--listen", host + ":0", "-m", model.toString(), "--link", link, "--store", store));
                if (workerMemory != null) a.addAll(List.of("--expert-memory", workerMemory));
                procs.add(start("worker-" + i, ns != null ? ns.exec(i) : List.of(), host, a, "-Xmx160m"));
            }
            String shadowHost = ns != null ? ns.address(workers) : "127.0.0.1";
            procs.add(start("shadow", ns != null ? ns.exec(workers) : List.of(), shadowHost,
                    List.of("shadow", "--listen", shadowHost + ":0", "-m", model.toString(), "--shadow", shadowType), "-Xmx3g"));
            out.println("cluster-bench: " + workers + " worker processes and a shadow node (" + shadowType + "); worker link " + link + "; network "
                    + networkMode());
            out.flush();
            return measure(out, procs);
        } finally {
            for (Proc p : procs) p.process().destroyForcibly();
            for (Proc p : procs) p.process().waitFor(10, TimeUnit.SECONDS);
            if (ns != null) ns.close();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // shutting down
            }
        }
    }

    /** Which network the run used, for every report line. */
    private String networkMode() {
        String real = namespaces != null ? namespaces.describe() : "loopback on 127.0.0.1";
        return net == null ? real + ", not emulated" : real + "; plus emulated in the transport: " + net;
    }

    private int measure(PrintWriter out, List<Proc> procs) throws Exception {
        List<ClusterConfig.Endpoint> eps = new ArrayList<>();
        ClusterConfig.Endpoint shadowEp = null;
        for (Proc p : procs) {
            ClusterConfig.Endpoint ep = new ClusterConfig.Endpoint(p.host(), p.port());
            if (p.role().equals("shadow")) shadowEp = ep;
            else eps.add(ep);
        }
        ClusterConfig cluster = new ClusterConfig(eps, shadowEp, groupSize, NodeSecurity.NONE, net == null ? null : Link.parse(net),
                ClusterConfig.DEFAULT_CALL_TIMEOUT, 10);
        Map<String, ExpertRuntimeConfig> runs = new LinkedHashMap<>();
        runs.put("resident", ExpertRuntimeConfig.RESIDENT);
        if (!noSingle) runs.put("single-node odmoe", ExpertRuntimeConfig.builder().policy("odmoe").link(link).store(store).build());
        runs.put("distributed odmoe", ExpertRuntimeConfig.builder().cluster(cluster).build());
        if (shadowToWorkers) runs.put(DIRECT, ExpertRuntimeConfig.builder().cluster(cluster.withShadowToWorkers(true)).build());
        int[] prompt = new int[promptTokens];
        Map<String, List<double[]>> results = new LinkedHashMap<>(); // run -> [ttft s, decode tok/s] per round
        Map<String, int[]> outputs = new LinkedHashMap<>();
        ClusterStats.Snapshot clusterTotals = null, directTotals = null;
        long decodeTokensDistributed = 0, decodeTokensDirect = 0;
        double decodeSecondsDistributed = 0;
        for (int r = 0; r < rounds; r++) {
            for (var e : runs.entrySet()) {
                EngineConfig cfg = EngineConfig.builder(model).threads(threads).contextSize(promptTokens + tokens + 8).experts(e.getValue()).build();
                try (Engine engine = Engine.open(cfg); Session s = engine.newSession()) {
                    int vocab = engine.model().hyperparams().nVocab();
                    for (int i = 0; i < promptTokens; i++) prompt[i] = 1 + (int) ((i * 7919L) % (vocab - 1));
                    s.awaitPredictorWarm(30);
                    ClusterStats.Snapshot before = s.clusterStats() == null ? null : s.clusterStats().snapshot();
                    long t0 = System.nanoTime();
                    float[] logits = s.evaluate(prompt);
                    long t1 = System.nanoTime();
                    int[] gen = new int[tokens];
                    ClusterStats.Snapshot afterPrompt = s.clusterStats() == null ? null : s.clusterStats().snapshot();
                    for (int i = 0; i < tokens; i++) {
                        gen[i] = argmax(logits);
                        logits = s.next(gen[i]);
                    }
                    long t2 = System.nanoTime();
                    results.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(new double[]{(t1 - t0) / 1e9, tokens / ((t2 - t1) / 1e9)});
                    int[] prev = outputs.putIfAbsent(e.getKey(), gen);
                    outputs.put(e.getKey(), gen);
                    if (s.clusterStats() != null && e.getKey().equals(DIRECT)) {
                        ClusterStats.Snapshot d = s.clusterStats().snapshot().minus(afterPrompt);
                        directTotals = directTotals == null ? d : add(directTotals, d);
                        decodeTokensDirect += tokens;
                    } else if (s.clusterStats() != null) {
                        ClusterStats.Snapshot d = s.clusterStats().snapshot().minus(afterPrompt);
                        clusterTotals = clusterTotals == null ? d : add(clusterTotals, d);
                        decodeTokensDistributed += tokens;
                        decodeSecondsDistributed += (t2 - t1) / 1e9;
                    }
                    if (before != null && prev != null && !java.util.Arrays.equals(prev, gen)) out.println("warning: " + e.getKey() + " changed its output between rounds");
                }
            }
        }
        boolean same = outputs.values().stream().allMatch(g -> java.util.Arrays.equals(g, outputs.get("resident")));
        double resident = median(results.get("resident"), 1);
        out.printf(Locale.ROOT, "%n%-30s %12s %12s %10s%n", "run", "decode tok/s", "TTFT s", "vs resident");
        for (var e : results.entrySet()) {
            double d = median(e.getValue(), 1);
            out.printf(Locale.ROOT, "%-30s %12.2f %12.3f %9.1f%%   (rounds: %s)%n", e.getKey(), d, median(e.getValue(), 0), 100 * d / resident,
                    spread(e.getValue()));
        }
        out.println("greedy outputs identical across runs: " + same);
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("model", model.toString());
        report.put("workers", workers);
        report.put("worker_link", link);
        report.put("network", networkMode());
        report.put("outputs_identical", same);
        Map<String, Object> rs = new LinkedHashMap<>();
        for (var e : results.entrySet()) rs.put(e.getKey(), Map.of("decode_tok_s_median", median(e.getValue(), 1), "ttft_s_median", median(e.getValue(), 0),
                "rounds", e.getValue()));
        report.put("runs", rs);
        if (clusterTotals != null) {
            double perToken = (double) (clusterTotals.bytesSent() + clusterTotals.bytesReceived() + clusterTotals.shadowBytesSent()
                    + clusterTotals.shadowBytesReceived()) / decodeTokensDistributed;
            out.printf(Locale.ROOT, "distributed decode: %.1f KB network per token, prediction recall %.3f, %.1f%% of calls found their expert loaded,"
                            + " worker load waits %.1f ms per token, failovers %d%n", perToken / 1e3, orZero(clusterTotals.recall()),
                    100 * orZero(clusterTotals.readyRate()), clusterTotals.loadWaitMillis() / decodeTokensDistributed, clusterTotals.failovers());
            report.put("distributed_decode", clusterTotals);
            report.put("network_bytes_per_token", perToken);
            report.put("simulator", simulate(out, clusterTotals, decodeTokensDistributed, decodeSecondsDistributed, cluster));
        }
        if (directTotals != null) {
            double perToken = (double) (directTotals.bytesSent() + directTotals.bytesReceived() + directTotals.shadowBytesSent()
                    + directTotals.shadowBytesReceived()) / decodeTokensDirect;
            out.printf(Locale.ROOT, "shadow->workers decode: %.1f KB main-node network per token, load commands from the main node %d, prediction recall %.3f,"
                            + " %.1f%% of calls found their expert loaded, worker load waits %.1f ms per token%n", perToken / 1e3, directTotals.prefetchMessages(),
                    orZero(directTotals.recall()), 100 * orZero(directTotals.readyRate()), directTotals.loadWaitMillis() / decodeTokensDirect);
            report.put("shadow_to_workers_decode", directTotals);
        }
        report.put("memory", memory(out, procs));
        if (json != null) {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), report);
            out.println("wrote " + json);
        }
        return 0;
    }

    /** The simulator calibrated from this run (main layer time, worker compute per expert), against the measured decode. */
    private Map<String, Object> simulate(PrintWriter out, ClusterStats.Snapshot c, long decodeTokens, double decodeSeconds, ClusterConfig cluster)
            throws Exception {
        try (GgufFile f = GgufFile.open(model)) {
            Model m = Model.load(f);
            var hp = m.hyperparams();
            ExpertLayout layout = ExpertLayout.of(m);
            double perToken = decodeSeconds / decodeTokens;
            double mainLayer = Math.max(0, (decodeSeconds - c.layerWaitMillis() / 1e3) / decodeTokens / hp.nLayer());
            double expert = c.workerComputeMillis() / 1e3 / Math.max(1, c.computeCalls());
            Link l = Link.parse(link);
            Link n = net != null ? Link.parse(net) : namespaces != null
                    ? new Link("netns", namespaces.bytesPerSecond(), 30_000 + namespaces.appliedDelayNanos(), 1)
                    : new Link("loopback", 2e9, 30_000, 1); // loopback: ~2 GB/s, ~30 us per gRPC call here
            ClusterSimulator sim = new ClusterSimulator(hp.nLayer(), hp.nExpertUsed(), workers, cluster.groupSizeFor(hp.nExpertUsed()), mainLayer, expert,
                    layout.maxExpertBytes(), l.bytesPerSecond(), l.latencyNanos() / 1e9, n.bytesPerSecond(), n.latencyNanos() / 1e9,
                    hp.nEmbd() * 4.0 + 64,
                    Math.min(hp.nLayer(), Math.max(ExpertRuntimeConfig.DEFAULT_LOOKAHEAD, (workers + cluster.groupSizeFor(hp.nExpertUsed()) - 1)
                            / cluster.groupSizeFor(hp.nExpertUsed()))), orZero(c.recall()));
            ClusterSimulator.Result r = sim.run(64);
            out.printf(Locale.ROOT, "simulator (calibrated: main %.2f ms/layer, worker %.2f ms/expert, recall %.3f): %s; measured %.2f tok/s (%.0f%%)%n",
                    mainLayer * 1e3, expert * 1e3, orZero(c.recall()), r, 1 / perToken, 100 * r.tokensPerSecond() * perToken);
            return Map.of("predicted_tok_s", r.tokensPerSecond(), "measured_tok_s", 1 / perToken, "main_layer_ms", mainLayer * 1e3,
                    "worker_expert_ms", expert * 1e3);
        }
    }

    /** Peak RSS of every node, and the fast-memory accounting of the distributed deployment against the resident one. */
    private Map<String, Object> memory(PrintWriter out, List<Proc> procs) throws Exception {
        Map<String, Object> mem = new LinkedHashMap<>();
        long maxWorker = 0;
        for (Proc p : procs) {
            long hwm = peakRss(p.process().pid());
            mem.put(p.role() + "_peak_rss_bytes", hwm);
            if (p.role().startsWith("worker")) maxWorker = Math.max(maxWorker, hwm);
        }
        long self = peakRss(ProcessHandle.current().pid());
        mem.put("bench_process_peak_rss_bytes", self);
        out.printf(Locale.ROOT, "peak RSS: workers up to %.0f MB each, shadow node %.0f MB, this process (all three runs) %.0f MB%n", maxWorker / 1e6,
                (long) mem.get("shadow_peak_rss_bytes") / 1e6, self / 1e6);
        try (GgufFile f = GgufFile.open(model)) {
            Model m = Model.load(f);
            ExpertLayout layout = ExpertLayout.of(m);
            long modelBytes = Files.size(model), experts = layout.totalBytes(), nonExpert = modelBytes - experts;
            long slot = (layout.maxExpertBytes() + 63) / 64 * 64;
            long workerSlots = workerMemory != null ? dev.jmoe.experts.cache.OffloadConfig.parseBudget(workerMemory, experts) / slot * slot : 2 * slot;
            double shadowRatio = switch (shadowType.toLowerCase(Locale.ROOT)) {
                case "q4_0" -> 18.0 / 32;
                case "q8_0" -> 34.0 / 32;
                default -> Double.NaN;
            };
            double bytesPerWeight = m.stackedExperts().stream().filter(java.util.Objects::nonNull).findFirst()
                    .map(se -> (double) se.gate().byteSize() / ((long) se.gate().rows() * se.gate().cols())).orElse(4.0);
            long shadowBytes = (long) (modelBytes / bytesPerWeight * shadowRatio);
            long total = nonExpert + shadowBytes + workers * workerSlots;
            out.printf(Locale.ROOT, "fast memory: main node %.0f MB (non-expert weights) + shadow %.0f MB (whole %s copy) + %d workers x %.0f MB = %.0f MB"
                            + " = %.1f%% of the resident model's %.0f MB%n", nonExpert / 1e6, shadowBytes / 1e6, shadowType, workers, workerSlots / 1e6,
                    total / 1e6, 100.0 * total / modelBytes, modelBytes / 1e6);
            mem.put("fast_memory_total_bytes", total);
            mem.put("resident_model_bytes", modelBytes);
            mem.put("fast_memory_share", (double) total / modelBytes);
        }
        return mem;
    }

    static long peakRss(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (Exception ignored) {
            // not Linux, or the process is gone
        }
        return -1;
    }

    private Proc start(String role, List<String> prefix, String host, List<String> args, String heap) throws Exception {
        NodeProcess.Started n = NodeProcess.start(role, NodeProcess.javaCommand(prefix, List.of(heap), Main.class.getName(), args), Duration.ofSeconds(300));
        return new Proc(role, n.process(), host, n.port());
    }

    private static ClusterStats.Snapshot add(ClusterStats.Snapshot a, ClusterStats.Snapshot b) {
        return new ClusterStats.Snapshot(a.bytesSent() + b.bytesSent(), a.bytesReceived() + b.bytesReceived(), a.computeCalls() + b.computeCalls(),
                a.prefetchMessages() + b.prefetchMessages(), a.failovers() + b.failovers(), a.workersLost() + b.workersLost(),
                a.decodeExpertUses() + b.decodeExpertUses(), a.decodePredicted() + b.decodePredicted(), a.readyOnArrival() + b.readyOnArrival(),
                a.loadWaitMillis() + b.loadWaitMillis(), a.layerWaitMillis() + b.layerWaitMillis(), a.layers() + b.layers(),
                a.shadowBytesSent() + b.shadowBytesSent(), a.shadowBytesReceived() + b.shadowBytesReceived(), a.workerComputeMillis() + b.workerComputeMillis(),
                a.miniBatched() + b.miniBatched());
    }

    private static double orZero(Double d) { return d == null ? 0 : d; }

    private static int argmax(float[] l) {
        int b = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[b]) b = i;
        return b;
    }

    private static double median(List<double[]> rows, int col) {
        double[] v = rows.stream().mapToDouble(r -> r[col]).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static String spread(List<double[]> rows) {
        return String.join(" ", rows.stream().map(r -> String.format(Locale.ROOT, "%.2f", r[1])).toList());
    }
}
