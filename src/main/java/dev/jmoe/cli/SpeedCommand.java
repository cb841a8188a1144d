package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import java.io.PrintWriter;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe speed}: llama-bench's two figures — prompt processing (pp: N tokens in one batch) and text
 * generation (tg: N single-token steps) in tokens/s — for one or more models in one process, measured
 * round-robin so every model sees the same machine conditions, with the median of the repetitions.
 * Several formats in one process share the JIT's profiles of the kernel call sites and can read lower than each
 * alone; per-model figures come from one model per run.
 */
@Command(name = "speed", description = "Prompt and decode tokens/s of one or more models, side by side (like llama-bench).")
final class SpeedCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "model file (repeat for several)") List<Path> models;
    @Option(names = {"-p", "--n-prompt"}, paramLabel = "TOKENS", defaultValue = "64", description = "prompt tokens (default: ${DEFAULT-VALUE})") int nPrompt;
    @Option(names = {"-n", "--n-gen"}, paramLabel = "TOKENS", defaultValue = "32", description = "generated tokens (default: ${DEFAULT-VALUE})") int nGen;
    @Option(names = {"-t", "--threads"}, paramLabel = "COUNT", description = "compute threads (default, or 0: available cores)") Integer threads;
    @Option(names = {"-r", "--repetitions"}, paramLabel = "COUNT", defaultValue = "5", description = "measured rounds (default: ${DEFAULT-VALUE})") int reps;
    @Option(names = "--warmup", paramLabel = "COUNT", defaultValue = "2", description = "unmeasured rounds first, for the JIT (default: ${DEFAULT-VALUE}); "
            + "more follow, up to " + MAX_EXTRA_WARMUP + ", while the JIT is still compiling (none with 0)") int warmup;
    @Option(names = "--json", paramLabel = "FILE", description = "write the figures as JSON") Path json;
    @Option(names = "--no-pack", description = "keep Q4_0, Q4_K and Q6_K matrices in the file's layout (float products)") boolean noPack;
    @Option(names = "--int8-activations", description = "round activations to 8 bits inside quantized products, as llama.cpp does") boolean int8Activations;
    @Option(names = "--both-layouts", description = "measure each model twice, packed and with --no-pack, side by side") boolean bothLayouts;
    @Option(names = "--llama-bench", paramLabel = "EXE", description = "also run llama.cpp's llama-bench on each file, interleaved with"
            + " jmoe's rounds, and print jmoe / llama.cpp ratios (bench/get-llama-bench fetches one)") Path llamaBench;

    @Override
    public Integer call() throws Exception {
        if (nPrompt < 1 || nGen < 1 || reps < 1 || warmup < 0) throw new IllegalArgumentException("-p, -n and -r must be at least 1, --warmup at least 0");
        // resolved here (0: every core) so the table and llama-bench get the real count
        int nThreads = dev.jmoe.generate.RunChecks.threadsOrEveryCore(threads);
        PrintWriter out = spec.commandLine().getOut();
        if (noPack && bothLayouts) throw new IllegalArgumentException("--no-pack and --both-layouts exclude each other");
        LlamaBench llama = llamaBench != null ? new LlamaBench(llamaBench, nThreads, nPrompt, nGen) : null;
        List<Engine> loaded = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<Boolean> packed = new ArrayList<>();
        List<Path> sources = new ArrayList<>();
        try {
            for (Path p : models) {
                if (!Files.isRegularFile(p)) throw new IllegalArgumentException("model file not found: " + p);
                // one engine per model and layout, each with its own activation rounding; the warm-up rounds below warm the kernels
                EngineConfig.Builder cfg = EngineConfig.builder(p).threads(nThreads).contextSize(nPrompt + nGen + 1).batchSize(nPrompt)
                        .int8Activations(int8Activations).warmup(false).autoExpertMemory(false);
                if (!noPack) {
                    loaded.add(Engine.open(cfg.packWeights(true).build()));
                    names.add(p.getFileName().toString());
                    packed.add(true);
                    sources.add(p);
                }
                if (noPack || bothLayouts) {
                    loaded.add(Engine.open(cfg.packWeights(false).build()));
                    names.add(p.getFileName() + (bothLayouts ? " --no-pack" : ""));
                    packed.add(false);
                    sources.add(p);
                }
            }
            double[][] pp = new double[loaded.size()][reps], tg = new double[loaded.size()][reps];
            // llama.cpp's figures per file, measured in the same rounds (one llama-bench run per file and round)
            List<Path> distinctFiles = models.stream().distinct().toList();
            double[][] lpp = new double[distinctFiles.size()][reps], ltg = new double[distinctFiles.size()][reps];
            int steps = loaded.size() + (llama != null ? distinctFiles.size() : 0);
            int warmupRounds = 0;
            try (Status status = new Status("speed", false)) {
                // --warmup rounds, then more while the JIT is still compiling (see jitStillCompiling)
                boolean compiling = true;
                while (warmupRounds < warmup || (warmup > 0 && compiling && warmupRounds < warmup + MAX_EXTRA_WARMUP)) {
                    long jit0 = jitMillis(), t0 = System.nanoTime();
                    for (int i = 0; i < loaded.size(); i++) {
                        status.update((long) warmupRounds * steps + i, (long) (Math.max(warmup, warmupRounds + 1) + reps) * steps, names.get(i) + " (warm-up)");
                        once(loaded.get(i), warmupRounds);
                    }
                    warmupRounds++;
                    compiling = jitStillCompiling(jit0, jitMillis(), (System.nanoTime() - t0) / 1e6);
                }
                int rounds = warmupRounds + reps;
                for (int round = warmupRounds; round < rounds; round++) {
                    for (int i = 0; i < loaded.size(); i++) {
                        status.update((long) round * steps + i, (long) rounds * steps, names.get(i));
                        double[] r = once(loaded.get(i), round);
                        pp[i][round - warmupRounds] = r[0];
                        tg[i][round - warmupRounds] = r[1];
                    }
                    if (llama != null) {
                        for (int j = 0; j < distinctFiles.size(); j++) {
                            status.update((long) round * steps + loaded.size() + j, (long) rounds * steps, "llama-bench " + distinctFiles.get(j).getFileName());
                            double[] r = llama.run(distinctFiles.get(j));
                            lpp[j][round - warmupRounds] = r[0];
                            ltg[j][round - warmupRounds] = r[1];
                        }
                    }
                }
            }
            out.printf("%-40s %8s %14s %14s%s%n", "model", "threads", "pp" + nPrompt + " t/s", "tg" + nGen + " t/s",
                    llama != null ? String.format(" %16s %16s", "pp vs llama.cpp", "tg vs llama.cpp") : "");
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int i = 0; i < loaded.size(); i++) {
                double ppMed = median(pp[i]), tgMed = median(tg[i]);
                int j = distinctFiles.indexOf(sources.get(i));
                double ppRatio = llama != null ? pairedRatio(pp[i], lpp[j]) : Double.NaN, tgRatio = llama != null ? pairedRatio(tg[i], ltg[j]) : Double.NaN;
                out.printf("%-40s %8d %8.1f ± %-4.0f %8.1f ± %-4.0f%s%n", names.get(i), nThreads, ppMed, spread(pp[i]), tgMed, spread(tg[i]),
                        llama != null ? String.format(" %15.2fx %15.2fx", ppRatio, tgRatio) : "");
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("model", names.get(i));
                row.put("int8_activations", int8Activations);
                row.put("packed", packed.get(i));
                row.put("threads", nThreads);
                row.put("n_prompt", nPrompt);
                row.put("n_gen", nGen);
                row.put("warmup_rounds", warmupRounds);
                row.put("prompt_tokens_per_s", ppMed);
                row.put("decode_tokens_per_s", tgMed);
                row.put("prompt_runs", pp[i]);
                row.put("decode_runs", tg[i]);
                if (llama != null) {
                    row.put("llama_cpp", llama.version());
                    row.put("llama_cpp_prompt_tokens_per_s", median(lpp[j]));
                    row.put("llama_cpp_decode_tokens_per_s", median(ltg[j]));
                    row.put("llama_cpp_prompt_runs", lpp[j]);
                    row.put("llama_cpp_decode_runs", ltg[j]);
                    row.put("prompt_ratio", ppRatio);
                    row.put("decode_ratio", tgRatio);
                }
                rows.add(row);
            }
            if (warmupRounds > warmup) {
                out.printf("warm-up: %d rounds (the JIT was still compiling after %d)%n", warmupRounds, warmup);
            }
            if (llama != null) {
                out.printf("llama.cpp: %s; ratios are medians of jmoe / llama.cpp within each round%n", llama.version());
            }
            if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), rows);
        } finally {
            for (Engine e : loaded) e.close();
        }
        return 0;
    }

    /** Warm-up rounds added at most after the --warmup ones while the JIT is still compiling. */
    private static final int MAX_EXTRA_WARMUP = 20;

    /** Milliseconds the JIT's compiler threads have spent so far, or -1 where this JVM does not count them. */
    private static long jitMillis() {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        return jit != null && jit.isCompilationTimeMonitoringSupported() ? jit.getTotalCompilationTime() : -1;
    }

    /**
     * Whether the JIT compiled for more than 5% of a warm-up round of {@code roundMillis}, given {@link #jitMillis} at
     * its start and end (false where the JVM does not count compilation time). A compiler thread busy during timed rounds takes a core from the compute threads:
     * on 2 cores with 2 threads, after the 2 default warm-up rounds C2 compiled for 641 ms during the last 112 timed
     * decode tokens (683 ms), 19 of the 23 tokens it overlapped were slow, and Qwen3-like Q8_0 decode read 176 t/s
     * (± 42) against 238 (± 5) with 10 warm-up rounds (36 ms compiled then). One thread leaves the compiler a core.
     */
    static boolean jitStillCompiling(long jit0, long jit1, double roundMillis) {
        if (jit0 < 0 || jit1 < 0) return false;
        return jit1 - jit0 > 0.05 * roundMillis;
    }

    private final java.util.Map<Engine, InferenceState[]> states = new java.util.IdentityHashMap<>();

    /** One pp run and one tg run from empty caches; returns {pp tokens/s, tg tokens/s}. */
    private double[] once(Engine engine, int round) {
        Model m = engine.model();
        Parallel pool = engine.pool();
        int vocab = m.hyperparams().nVocab();
        SplittableRandom rnd = new SplittableRandom(round);
        int[] prompt = new int[nPrompt];
        for (int i = 0; i < nPrompt; i++) prompt[i] = rnd.nextInt(vocab);
        // One prompt state and one decode state per model, rewound each round, as llama-bench keeps one context and
        // clears its cache: fresh KV and scratch arrays every round measured the kernel faulting in new heap pages.
        InferenceState[] kept = states.computeIfAbsent(engine, e -> new InferenceState[]{
                m.newState(nPrompt + nGen + 1, pool), m.newState(nGen + 1, pool)});
        InferenceState st = kept[0];
        st.rewind(0);
        long t0 = System.nanoTime();
        st.eval(prompt, 0, nPrompt, nPrompt);
        long t1 = System.nanoTime();
        // tg as llama-bench measures it: single-token steps from an (almost) empty cache
        InferenceState g = kept[1];
        g.rewind(0);
        int tok = prompt[0];
        long t2 = System.nanoTime();
        for (int i = 0; i < nGen; i++) {
            float[] logits = g.next(tok);
            tok = argmax(logits);
        }
        long t3 = System.nanoTime();
        return new double[]{nPrompt / ((t1 - t0) / 1e9), nGen / ((t3 - t2) / 1e9)};
    }

    /** Median over rounds of a[r] / b[r]: each round's two runs saw the same machine conditions. */
    private static double pairedRatio(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) r[i] = a[i] / b[i];
        return median(r);
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** Half the range between the second-lowest and second-highest run (all of it with few runs). */
    private static double spread(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int k = s.length >= 5 ? 1 : 0;
        return (s[s.length - 1 - k] - s[k]) / 2;
    }
}
