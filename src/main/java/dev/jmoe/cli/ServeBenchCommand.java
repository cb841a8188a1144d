package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.Engine;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.server.LoadDriver;
import dev.jmoe.server.OpenAiServer;
import dev.jmoe.server.ServerSettings;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe serve-bench}: aggregate generation speed of {@code jmoe serve} under 1, 4, 16… concurrent streaming
 * clients, side by side with llama.cpp's llama-server on the same GGUF, slots and threads (rounds alternate which server
 * goes first; medians and ratios reported), and — with an expert budget — the expert bytes moved per generated token at
 * each concurrency. Both servers run on 127.0.0.1 and stop with the command.
 */
@Command(name = "serve-bench", description = {"Tokens/s of jmoe serve under concurrent streaming clients, side by side with llama-server"
        + " (bench/get-llama-server fetches one), and expert bytes moved per token with --expert-memory."})
final class ServeBenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--llama-server", paramLabel = "EXE", description = "also measure llama.cpp's llama-server on the same file, slots and threads")
    Path llamaServer;
    @Option(names = "--clients", paramLabel = "COUNT[,COUNT…]", split = ",", description = "concurrent streaming clients per measurement (default: 1,4,16)")
    int[] clients = {1, 4, 16};
    @Option(names = {"-np", "--parallel"}, paramLabel = "SLOTS", description = "slots of both servers (default: the most clients)")
    Integer parallel;
    @Option(names = "--prompt-words", paramLabel = "WORDS", description = "words per prompt (default: ${DEFAULT-VALUE})")
    int promptWords = 16;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "tokens generated per request (end of text ignored; default: ${DEFAULT-VALUE})")
    int genTokens = 64;
    @Option(names = "--requests", paramLabel = "COUNT", description = "requests per client per measurement (default: ${DEFAULT-VALUE})")
    int requestsPerClient = 2;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", description = "measured rounds, alternating which server goes first (default: ${DEFAULT-VALUE})")
    int rounds = 3;
    @Option(names = "--json", paramLabel = "FILE", description = "write the figures as JSON")
    Path json;
    @Option(names = "--llama-args", paramLabel = "ARGS", description = "more llama-server arguments, space-separated (e.g. \"--poll 0\")")
    String llamaArgs;

    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    private static final String[] WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they"
            + " you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only"
            + " other new some could time these two may then do first any my now such like our over man me even most made after also did many before"
            + " must through back years where much your way well down should because each just those people how too little state good very make world"
            + " still own see men work long get here between both life being under never day same another know while last might us great old year off"
            + " come since against go came right used take three town river history morning country city water house church war").split(" ");

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (clients.length == 0 || Arrays.stream(clients).anyMatch(c -> c < 1 || c > BatchConfig.MAX_SLOTS)) {
            throw new IllegalArgumentException("--clients must list numbers between 1 and " + BatchConfig.MAX_SLOTS);
        }
        if (promptWords < 1 || genTokens < 1 || requestsPerClient < 1 || rounds < 1) {
            throw new IllegalArgumentException("--prompt-words, -n/--n-predict, --requests and -r/--repetitions must be at least 1");
        }
        if (llamaServer != null && !Files.isExecutable(llamaServer)) throw new IllegalArgumentException("--llama-server " + llamaServer + " is not an executable");
        Runs.checkWritable(json, "--json");
        int slots = parallel != null ? parallel : Arrays.stream(clients).max().orElse(1);
        int ctx = model.ctxSize != null ? model.ctxSize : Math.max(256, 2 * (genTokens + 4 * promptWords));
        int threads = model.threadCount();
        model.threads = threads;
        Process llama = null;
        Path llamaLog = null;
        try (Engine engine = Runs.open(model, memory, prediction, ctx, err);
             BatchScheduler scheduler = engine.newScheduler(new BatchConfig(slots, ctx, 0, 4 * slots, 64));
             OpenAiServer jmoe = OpenAiServer.start(engine, scheduler, new ServerSettings("127.0.0.1", 0, null, "bench", 1 << 20, genTokens, 1000))) {
            String llamaUrl = null;
            if (llamaServer != null) {
                int port;
                try (ServerSocket s = new ServerSocket(0)) {
                    port = s.getLocalPort();
                }
                llamaLog = Files.createTempFile("jmoe-llama-server", ".log");
                List<String> cmd = new ArrayList<>(List.of(llamaServer.toString(), "-m", engine.info().path().toString(), "-t", Integer.toString(threads), "-tb",
                        Integer.toString(threads), "-np", Integer.toString(slots), "-c", Integer.toString(slots * ctx), "--host", "127.0.0.1", "--port",
                        Integer.toString(port)));
                if (llamaArgs != null && !llamaArgs.isBlank()) cmd.addAll(Arrays.asList(llamaArgs.strip().split("\\s+")));
                llama = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(llamaLog.toFile()).start();
                Process started = llama;
                // Ctrl-C or a kill of this command must not leave llama-server running
                Runtime.getRuntime().addShutdownHook(new Thread(started::destroy, "jmoe-serve-bench-llama"));
                llamaUrl = "http://127.0.0.1:" + port;
                awaitHealthy(llamaUrl, llama, llamaLog);
            }
            Map<String, LoadDriver> servers = new LinkedHashMap<>();
            servers.put("jmoe", new LoadDriver(jmoe.url(), null, Duration.ofMinutes(30)));
            if (llamaUrl != null) servers.put("llama-server", new LoadDriver(llamaUrl, null, Duration.ofMinutes(30)));
            SplittableRandom rnd = new SplittableRandom(1);
            for (LoadDriver d : servers.values()) d.run(requests(rnd, 2), 2, null); // warm both up (JIT, caches)
            OffloadStats offload = scheduler.offloadStats();
            Map<Integer, Map<String, List<double[]>>> figures = new LinkedHashMap<>(); // clients -> server -> rounds of {t/s, ttft p50, bytes/token}
            out.printf(Locale.ROOT, "serve-bench: %s, %d slots, %d threads, %d words per prompt, %d tokens per request, %d requests per client, %s%s%s%n",
                    engine.info().path().getFileName(), slots, threads, promptWords, genTokens, requestsPerClient, cpu(),
                    model.int8Activations ? ", jmoe --int8-activations" : "", llamaArgs != null ? ", llama-server " + llamaArgs.strip() : "");
            for (int round = 0; round < rounds; round++) {
                for (int c : clients) {
                    List<LoadDriver.Request> work = requests(rnd, c * requestsPerClient);
                    List<String> order = new ArrayList<>(servers.keySet());
                    if (round % 2 == 1) java.util.Collections.reverse(order); // alternate who goes first
                    for (String name : order) {
                        long bytes0 = offload == null ? 0 : offload.total(OffloadStats.Counter.BYTES_MOVED);
                        long tokens0 = scheduler.metrics().generatedTokens();
                        long[] wall = new long[1];
                        List<LoadDriver.Outcome> outcomes = servers.get(name).run(work, c, wall);
                        LoadDriver.Summary s = LoadDriver.Summary.of(outcomes, wall[0]);
                        if (s.errors() > 0) {
                            String first = outcomes.stream().filter(o -> o.error() != null).findFirst().map(LoadDriver.Outcome::error).orElse("");
                            throw new IllegalStateException(name + ": " + s.errors() + " of " + s.requests() + " requests failed, e.g. " + first);
                        }
                        double perToken = -1;
                        if (name.equals("jmoe") && offload != null) {
                            long t = scheduler.metrics().generatedTokens() - tokens0;
                            perToken = t == 0 ? 0 : (double) (offload.total(OffloadStats.Counter.BYTES_MOVED) - bytes0) / t;
                        }
                        figures.computeIfAbsent(c, k -> new LinkedHashMap<>()).computeIfAbsent(name, k -> new ArrayList<>())
                                .add(new double[] {s.tokensPerSecond(), s.ttftP50Millis(), perToken});
                        err.printf(Locale.ROOT, "  round %d, %2d clients, %-12s %8.1f tokens/s%s (load %s)%n", round + 1, c, name, s.tokensPerSecond(),
                                perToken >= 0 ? String.format(Locale.ROOT, ", %s moved per token", OffloadStats.bytes((long) perToken)) : "", loadAverage());
                        err.flush();
                    }
                }
            }
            report(out, figures, servers.keySet(), offload != null);
        } finally {
            if (llama != null) {
                llama.destroy();
                if (!llama.waitFor(10, TimeUnit.SECONDS)) llama.destroyForcibly();
            }
            if (llamaLog != null) Files.deleteIfExists(llamaLog);
        }
        return 0;
    }

    private List<LoadDriver.Request> requests(SplittableRandom rnd, int n) {
        List<LoadDriver.Request> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < promptWords; w++) sb.append(w == 0 ? "" : " ").append(WORDS[rnd.nextInt(WORDS.length)]);
            out.add(new LoadDriver.Request(false, sb.toString(), genTokens, true));
        }
        return out;
    }

    private void report(PrintWriter out, Map<Integer, Map<String, List<double[]>>> figures, java.util.Set<String> names, boolean offloads) throws IOException {
        boolean both = names.size() > 1;
        out.println();
        out.printf("| clients | jmoe tokens/s (median, min–max) |%s%s jmoe TTFT p50 ms |%n", both ? " llama-server tokens/s | jmoe / llama-server |" : "",
                offloads ? " expert bytes moved per token |" : "");
        out.printf("|---|---|%s%s---|%n", both ? "---|---|" : "", offloads ? "---|" : "");
        Map<String, Object> jsonOut = new LinkedHashMap<>();
        for (Map.Entry<Integer, Map<String, List<double[]>>> e : figures.entrySet()) {
            List<double[]> j = e.getValue().get("jmoe"), l = e.getValue().get("llama-server");
            double[] jt = column(j, 0);
            StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %d | %s |", e.getKey(), spread(jt)));
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("jmoe_tokens_per_s", jt);
            if (both) {
                double[] lt = column(l, 0), ratios = new double[jt.length];
                for (int i = 0; i < jt.length; i++) ratios[i] = jt[i] / lt[i];
                row.append(String.format(Locale.ROOT, " %s | %.2f× (%.2f–%.2f) |", spread(lt), median(ratios), min(ratios), max(ratios)));
                entry.put("llama_server_tokens_per_s", lt);
                entry.put("ratio_per_round", ratios);
            }
            if (offloads) {
                double[] b = column(j, 2);
                row.append(" ").append(OffloadStats.bytes((long) median(b))).append(" |");
                entry.put("expert_bytes_moved_per_token", b);
            }
            row.append(String.format(Locale.ROOT, " %.0f |", median(column(j, 1))));
            out.println(row);
            jsonOut.put(Integer.toString(e.getKey()), entry);
        }
        out.flush();
        if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), jsonOut);
    }

    private static double[] column(List<double[]> rows, int i) {
        return rows.stream().mapToDouble(r -> r[i]).toArray();
    }

    private static String spread(double[] v) {
        return String.format(Locale.ROOT, "%.1f (%.1f–%.1f)", median(v), min(v), max(v));
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double min(double[] v) { return Arrays.stream(v).min().orElse(0); }

    private static double max(double[] v) { return Arrays.stream(v).max().orElse(0); }

    /** The processor's name (Linux), for every figure printed. */
    static String cpu() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).strip();
            }
        } catch (IOException | RuntimeException notLinux) {
            // fall through
        }
        return System.getProperty("os.arch");
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException e) {
            return "?";
        }
    }

    private static void awaitHealthy(String url, Process p, Path log) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) throw new IllegalStateException("llama-server exited with " + p.exitValue() + ": " + tail(log));
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url + "/health")).timeout(Duration.ofSeconds(5)).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) return;
            } catch (IOException notYet) {
                // still starting
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException("llama-server did not become healthy within 300 s: " + tail(log));
    }

    private static String tail(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
    }
}
