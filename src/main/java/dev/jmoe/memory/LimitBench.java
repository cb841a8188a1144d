package dev.jmoe.memory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.experts.store.DirectReadProbe;
import dev.jmoe.experts.store.FileAccess;
import java.io.IOException;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Decode speed inside a memory limit, every configuration in its own freshly created limit ({@link LimitedRun}) and
 * a cold page cache for the model file: jmoe as a user runs it (bin/jmoe generate, so the launcher's plan and heap
 * are part of what is measured) and, if given, llama.cpp's llama-bench on the same file. Rounds alternate the
 * configurations; each cell reports the median decode tokens/s, the paired ratio to llama.cpp, the cgroup's peak
 * usage, OOM kills and file refaults (pages evicted and read again: thrashing), and for jmoe the expert bytes read
 * per token against the disk's O_DIRECT rate (measured in the same round): the I/O bound and the fraction reached.
 */
public final class LimitBench {
    /** What to run. */
    public record Settings(List<Path> models, List<String> limits, List<List<String>> jmoeConfigs, Path llamaBench, int threads, int nGen,
                           String prompt, int ctx, int rounds, Path launcher, Path workDir) {}

    /** One measured run. */
    record Sample(double decodeTokensPerSecond, LimitedRun.Result limit, double neededBytesPerToken, double movedBytesPerToken, String status) {}

    private final Settings s;
    private final PrintWriter out;
    private final ObjectMapper json = new ObjectMapper();

    public LimitBench(Settings s, PrintWriter out) {
        this.s = s;
        this.out = out;
    }

    /** Runs everything and returns the figures (for --json); prints a table per model and limit. */
    public Map<String, Object> run() throws IOException, InterruptedException {
        String why = LimitedRun.unavailableReason();
        if (why != null) throw new IllegalStateException("jmoe bench --memory-limit cannot create a memory limit on this machine: " + why);
        Files.createDirectories(s.workDir());
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("cpu", cpuName());
        List<Map<String, Object>> tables = new ArrayList<>();
        for (Path model : s.models()) {
            long fileBytes = Files.size(model);
            for (String spec : s.limits()) {
                long limit = parseLimit(spec, fileBytes);
                tables.add(table(model, fileBytes, spec, limit));
            }
        }
        all.put("tables", tables);
        // the per-run files were read into the figures; leave nothing behind
        try (var files = Files.list(s.workDir())) {
            for (Path f : files.toList()) Files.deleteIfExists(f);
        }
        Files.deleteIfExists(s.workDir());
        return all;
    }

    private Map<String, Object> table(Path model, long fileBytes, String spec, long limit) throws IOException, InterruptedException {
        List<String> labels = new ArrayList<>();
        if (s.llamaBench() != null) labels.add("llama.cpp (mmap)");
        for (List<String> c : s.jmoeConfigs()) labels.add("jmoe " + String.join(" ", c));
        int n = labels.size();
        List<List<Sample>> samples = new ArrayList<>();
        for (int i = 0; i < n; i++) samples.add(new ArrayList<>());
        double[] disk = new double[s.rounds()], sequential = new double[s.rounds()];
        dev.jmoe.experts.store.ExpertLayout layout;
        try (dev.jmoe.gguf.GgufFile f = dev.jmoe.gguf.GgufFile.open(model)) {
            layout = dev.jmoe.experts.store.ExpertLayout.of(dev.jmoe.model.Model.load(f));
        }
        out.printf(Locale.ROOT, "%n== %s (%s) in a memory limit of %s (%s); %d rounds, tg%d, %d threads, %s%n", model.getFileName(), Bytes.format(fileBytes),
                Bytes.format(limit), spec, s.rounds(), s.nGen(), s.threads(), cpuName());
        out.flush();
        for (int r = 0; r < s.rounds(); r++) {
            // The disk's O_DIRECT rate this round (the page cache plays no part): for the access pattern of expert loads
            // (every expert part once, shuffled; the bound decode can reach) and for one sequential pass over the file.
            disk[r] = DirectReadProbe.measureExpertRanges(model, layout, 2, 1L << 20, r).bytesPerSecond();
            sequential[r] = DirectReadProbe.measure(model, 0, fileBytes, 2, 1L << 20).bytesPerSecond();
            for (int i = 0; i < n; i++) {
                // alternate the order per round so neither side always runs right after the disk probe
                int k = r % 2 == 0 ? i : n - 1 - i;
                boolean llama = s.llamaBench() != null && k == 0;
                Sample x = llama ? llama(model, limit, r) : jmoe(model, limit, s.jmoeConfigs().get(k - (s.llamaBench() != null ? 1 : 0)), r);
                samples.get(k).add(x);
                System.err.printf(Locale.ROOT, "jmoe bench: round %d/%d %s: %.2f t/s; %s%n", r + 1, s.rounds(), labels.get(k), x.decodeTokensPerSecond(),
                        x.limit().summary());
            }
        }
        double diskMedian = median(disk);
        out.printf(Locale.ROOT, "disk O_DIRECT rate, 2 x 1 MiB reads in flight: expert parts in shuffled order %.2f GB/s median (%.2f-%.2f),"
                + " sequential %.2f GB/s (%.2f-%.2f)%n", diskMedian / 1e9, min(disk) / 1e9, max(disk) / 1e9, median(sequential) / 1e9, min(sequential) / 1e9,
                max(sequential) / 1e9);
        out.printf(Locale.ROOT, "%-44s %14s %12s %10s %9s %4s %10s %11s %9s %8s%n", "configuration", "decode t/s", "runs", "vs llama", "peak", "OOM",
                "refaults", "needed/tok", "I/O bound", "fraction");
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            List<Sample> xs = samples.get(i);
            double[] tps = xs.stream().mapToDouble(Sample::decodeTokensPerSecond).toArray();
            double med = median(tps);
            double ratio = Double.NaN;
            if (s.llamaBench() != null && i > 0) {
                double[] rr = new double[xs.size()];
                for (int r = 0; r < rr.length; r++) rr[r] = xs.get(r).decodeTokensPerSecond() / samples.get(0).get(r).decodeTokensPerSecond();
                ratio = median(rr);
            }
            long peak = xs.stream().mapToLong(x -> x.limit().peak()).max().orElse(-1);
            long oom = xs.stream().mapToLong(x -> x.limit().oomKills()).sum();
            long refaults = xs.stream().mapToLong(x -> x.limit().refaults()).max().orElse(-1);
            double needed = median(xs.stream().mapToDouble(Sample::neededBytesPerToken).toArray());
            double moved = median(xs.stream().mapToDouble(Sample::movedBytesPerToken).toArray());
            // per round: tokens/s over the tokens/s the disk allows for the bytes that had to be read (both measured that round)
            double[] frac = new double[xs.size()];
            for (int r = 0; r < frac.length; r++) {
                Sample x = xs.get(r);
                frac[r] = x.neededBytesPerToken() > 0 ? x.decodeTokensPerSecond() * x.neededBytesPerToken() / disk[r] : Double.NaN;
            }
            double bound = needed > 0 ? diskMedian / needed : Double.NaN;
            out.printf(Locale.ROOT, "%-44s %8.2f ± %-4.2f %12s %10s %9s %4d %10s %11s %9s %8s%n", trim(labels.get(i), 44), med, spread(tps), runs(tps),
                    Double.isNaN(ratio) ? "" : String.format(Locale.ROOT, "%.2fx", ratio), peak < 0 ? "?" : Bytes.format(peak), oom,
                    refaults < 0 ? "?" : Long.toString(refaults), needed > 0 ? Bytes.format((long) needed) : "", needed > 0 ? String.format(Locale.ROOT, "%.1f t/s", bound) : "",
                    needed > 0 ? String.format(Locale.ROOT, "%.0f%%", 100 * median(frac)) : "");
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("configuration", labels.get(i));
            row.put("decode_tokens_per_s", med);
            row.put("decode_runs", tps);
            if (!Double.isNaN(ratio)) row.put("ratio_to_llama_cpp", ratio);
            row.put("peak_bytes", peak);
            row.put("oom_kills", oom);
            row.put("max_file_refaults", refaults);
            row.put("exits", xs.stream().mapToInt(x -> x.limit().exit()).toArray());
            if (needed > 0) {
                row.put("needed_expert_bytes_per_token", needed);
                row.put("moved_expert_bytes_per_token", moved);
                row.put("io_bound_tokens_per_s", bound);
                row.put("io_bound_fraction", median(frac));
                row.put("io_bound_fraction_runs", frac);
            }
            row.put("status", xs.get(xs.size() - 1).status());
            row.put("limit_mechanism", xs.get(0).limit().how().replaceAll("-[0-9]+-[0-9]+$", ""));
            rows.add(row);
        }
        out.println("needed/tok: expert bytes per decoded token that were not resident when used (prefetched or loaded on demand);"
                + " I/O bound = expert-part disk rate / needed/tok; fraction = decode t/s / I/O bound (per round, median)");
        for (int i = 0; i < n; i++) {
            String st = samples.get(i).get(samples.get(i).size() - 1).status();
            if (st != null) out.println("  " + labels.get(i) + ": " + st);
        }
        out.flush();
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("model", model.toString());
        t.put("model_bytes", fileBytes);
        t.put("limit", spec);
        t.put("limit_bytes", limit);
        t.put("disk_bytes_per_s", diskMedian);
        t.put("disk_runs", disk);
        t.put("disk_sequential_bytes_per_s", median(sequential));
        t.put("disk_sequential_runs", sequential);
        t.put("rows", rows);
        return t;
    }

    private Sample jmoe(Path model, long limit, List<String> config, int round) throws IOException, InterruptedException {
        Path stats = s.workDir().resolve("jmoe-stats-" + round + ".json");
        Path err = s.workDir().resolve("jmoe-stderr.txt");
        Files.deleteIfExists(stats);
        List<String> cmd = new ArrayList<>(List.of(s.launcher().toString(), "generate", "-m", model.toAbsolutePath().toString(), "-p", s.prompt(),
                "-n", Integer.toString(s.nGen() + 1), "--ignore-eos", "-t", Integer.toString(s.threads()), "-c", Integer.toString(s.ctx()),
                "--stats-json", stats.toString()));
        cmd.addAll(config);
        FileAccess.dropCache(model); // a cold start: nothing of the model in the page cache
        LimitedRun.Result r = LimitedRun.run(cmd, limit, null, err, 1800);
        String status = null;
        for (String line : Files.readAllLines(err, StandardCharsets.UTF_8)) {
            if (line.startsWith("jmoe: expert memory") || line.startsWith("jmoe: memory plan")) status = line.substring("jmoe: ".length());
        }
        if (r.exit() != 0 || !Files.isRegularFile(stats)) {
            List<String> lines = Files.readAllLines(err, StandardCharsets.UTF_8);
            String tail = String.join(" | ", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
            return new Sample(0, r, 0, 0, "failed (exit " + r.exit() + (r.oomKills() > 0 ? ", OOM-killed" : "") + "): " + tail);
        }
        JsonNode j = json.readTree(stats.toFile());
        double tps = j.path("decode_tokens_per_s").asDouble(0);
        long tokens = j.path("decode_tokens").asLong(0);
        JsonNode d = j.path("offload").path("decode");
        double needed = 0, moved = 0;
        if (!d.isMissingNode() && tokens > 0) {
            long uses = d.path("expert_uses").asLong(), exact = d.path("exact_hits").asLong(), subs = d.path("substitutions").asLong();
            long slot = j.path("offload").path("slot_bytes").asLong();
            needed = (double) (uses - exact - subs) * slot / tokens;
            moved = d.path("bytes_moved").asDouble() / tokens;
        }
        return new Sample(tps, r, needed, moved, status);
    }

    private Sample llama(Path model, long limit, int round) throws IOException, InterruptedException {
        Path o = s.workDir().resolve("llama-bench-" + round + ".json");
        Path err = s.workDir().resolve("llama-bench-stderr.txt");
        List<String> cmd = List.of(s.llamaBench().toString(), "-m", model.toAbsolutePath().toString(), "-t", Integer.toString(s.threads()), "-p", "0",
                "-n", Integer.toString(s.nGen()), "-r", "1", "-o", "json");
        FileAccess.dropCache(model);
        LimitedRun.Result r = LimitedRun.run(cmd, limit, o, err, 3600);
        double tg = 0;
        String status = null;
        try {
            JsonNode root = json.readTree(o.toFile());
            for (JsonNode t : root) {
                if (t.path("n_gen").asInt() == s.nGen()) tg = t.path("avg_ts").asDouble(0);
                if (t.has("build_number")) status = "llama.cpp build " + t.path("build_number").asText();
            }
        } catch (IOException e) {
            status = "failed (exit " + r.exit() + (r.oomKills() > 0 ? ", OOM-killed" : "") + ")";
        }
        return new Sample(tg, r, 0, 0, status);
    }

    private static final Pattern SIZE = Pattern.compile("\\s*([0-9]*\\.?[0-9]+)\\s*([kKmMgG]?)(i?)[bB]?\\s*");

    /** {@code 400MB}, {@code 512MiB}, {@code 2G} or a percentage of the model file's size ({@code 60%}). */
    public static long parseLimit(String spec, long modelBytes) {
        String t = spec == null ? "" : spec.trim();
        if (t.endsWith("%")) {
            double p;
            try {
                p = Double.parseDouble(t.substring(0, t.length() - 1).trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("cannot parse --memory-limit '" + spec + "': expected a size (400MB, 512MiB) or a percentage of the model (60%)");
            }
            if (!(p > 0)) throw new IllegalArgumentException("--memory-limit percentage must be positive, got '" + spec + "'");
            return (long) (modelBytes * p / 100);
        }
        Matcher m = SIZE.matcher(t);
        if (!m.matches()) throw new IllegalArgumentException("cannot parse --memory-limit '" + spec + "': expected a size (400MB, 512MiB) or a percentage of the model (60%)");
        boolean bin = !m.group(3).isEmpty();
        double unit = switch (m.group(2).toLowerCase(Locale.ROOT)) {
            case "k" -> bin ? 1024.0 : 1e3;
            case "m" -> bin ? 1048576.0 : 1e6;
            case "g" -> bin ? 1073741824.0 : 1e9;
            default -> 1;
        };
        long v = (long) (Double.parseDouble(m.group(1)) * unit);
        if (v < (16L << 20)) throw new IllegalArgumentException("--memory-limit '" + spec + "' is below 16 MiB: no JVM runs in that");
        return v;
    }

    static String cpuName() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException ignored) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }

    private static String runs(double[] v) {
        return v.length == 0 ? "" : String.format(Locale.ROOT, "%.2f-%.2f", min(v), max(v));
    }

    private static String trim(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    static double median(double[] v) {
        if (v.length == 0) return Double.NaN;
        double[] x = v.clone();
        Arrays.sort(x);
        return x.length % 2 == 1 ? x[x.length / 2] : (x[x.length / 2 - 1] + x[x.length / 2]) / 2;
    }

    private static double spread(double[] v) {
        return v.length == 0 ? 0 : (max(v) - min(v)) / 2;
    }

    private static double min(double[] v) {
        return Arrays.stream(v).min().orElse(Double.NaN);
    }

    private static double max(double[] v) {
        return Arrays.stream(v).max().orElse(Double.NaN);
    }
}
