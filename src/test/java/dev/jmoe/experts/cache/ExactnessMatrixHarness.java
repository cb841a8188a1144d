package dev.jmoe.experts.cache;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.model.FileType;
import dev.jmoe.model.RandomModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Child-JVM side of {@link ExactnessMatrixTest}. Each argument is one case {@code TYPE|ARCH|STORE|RUNTIME}, RUNTIME being
 * {@code key=value} pairs separated by {@code ;} for {@link ExpertRuntimeConfig} (policy, budget, eviction, predictor,
 * prefetch, prefetch-rule, balance, overlap, split, lookahead, link, shadow). For each type and architecture it writes a
 * tiny random model, opens it as every command does (weights packed where the type packs, 16-bit activations), runs the
 * resident reference twice (prompt in batches of 4, 4 and 3, then greedy decode), then every case: prompt logits of every
 * position and every decode step's logits must equal the resident run's bit for bit, with the same greedy tokens. Prints
 * {@code RESULT case OK} or {@code RESULT case FAIL why}.
 */
public final class ExactnessMatrixHarness {
    static final int[] PROMPT = {1, 17, 42, 99, 7, 250, 3, 64, 128, 5, 33};
    static final int DECODE = 8;

    record Run(float[] logits, int[] tokens, OffloadStats stats) {}

    /** The tiny shapes: K-quant rows need 256 values, packing needs 16-row groups, so everything is 256 wide. */
    static RandomModel.Shape shape(String arch) {
        return switch (arch) {
            case "llama" -> new RandomModel.Shape("llama", 2, 256, 4, 2, 64, 8, 2, 256, 0, 300, 64, 1e6f, 1e-5f, false, 21);
            case "qwen2moe" -> new RandomModel.Shape("qwen2moe", 2, 256, 4, 2, 64, 8, 2, 256, 256, 300, 64, 1e6f, 1e-6f, false, 22);
            default -> throw new IllegalArgumentException("unknown arch " + arch);
        };
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("jmoe-exactness");
        Map<String, Engine> engines = new LinkedHashMap<>();
        Map<String, Run> resident = new LinkedHashMap<>();
        try {
            for (String c : args) {
                String[] p = c.split("\\|", 4);
                String why;
                try {
                    String key = p[0] + "|" + p[1];
                    Engine engine = engines.get(key);
                    if (engine == null) {
                        Path file = dir.resolve(p[0] + "-" + p[1] + ".gguf");
                        RandomModel.write(shape(p[1]), FileType.parse(p[0]), file);
                        engine = Engine.open(EngineConfig.builder(file).threads(2).batchSize(4).contextSize(64).warmup(false).build());
                        engines.put(key, engine);
                        Run ref = run(engine, ExpertRuntimeConfig.RESIDENT);
                        Run again = run(engine, ExpertRuntimeConfig.RESIDENT);
                        if (!Arrays.equals(ref.logits(), again.logits())) throw new AssertionError("two resident runs differ in this JVM");
                        resident.put(key, ref);
                    }
                    ExpertRuntimeConfig cfg = config(p[2], p[3]);
                    Run r = run(engine, cfg);
                    why = compare(resident.get(key), r, cfg);
                    if (r.stats() != null) {
                        OffloadStats st = r.stats();
                        int d = OffloadStats.DECODE;
                        System.out.printf("STATS %s decode: hits %d, prefetch hits %d, loaded %d, computed aside %d%n", c,
                                st.get(d, OffloadStats.Counter.EXACT_HITS), st.get(d, OffloadStats.Counter.PREFETCH_HITS),
                                st.get(d, OffloadStats.Counter.MISSES_LOADED), st.get(d, OffloadStats.Counter.MISSES_COMPUTED));
                    }
                } catch (Throwable t) {
                    why = t.toString().replace('\n', ' ');
                }
                System.out.println("RESULT " + c + " " + (why == null ? "OK" : "FAIL " + why));
                System.out.flush();
            }
        } finally {
            for (Engine e : engines.values()) e.close();
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        }
    }

    static ExpertRuntimeConfig config(String store, String spec) {
        ExpertRuntimeConfig.Builder b = ExpertRuntimeConfig.builder().store(store);
        for (String kv : spec.split(";")) {
            if (kv.isBlank()) continue;
            String[] e = kv.split("=", 2);
            String v = e[1];
            switch (e[0]) {
                case "policy" -> b.policy(v);
                case "budget" -> b.expertMemory(v);
                case "eviction" -> b.eviction(v);
                case "predictor" -> b.predictor(v);
                case "lookahead" -> b.lookahead(Integer.parseInt(v));
                case "prefetch" -> b.prefetch(Boolean.parseBoolean(v));
                case "balance" -> b.balance(Boolean.parseBoolean(v));
                case "link" -> b.link(v);
                case "slow" -> b.slowCompute(Double.parseDouble(v));
                case "shadow" -> b.shadowType(v);
                case "prefetch-rule" -> b.prefetchRule(v);
                case "split" -> b.balanceSplit(v);
                case "overlap" -> b.slowOverlap(Boolean.parseBoolean(v));
                default -> throw new IllegalArgumentException("unknown key " + e[0]);
            }
        }
        return b.build();
    }

    static Run run(Engine engine, ExpertRuntimeConfig cfg) throws Exception {
        try (Session s = engine.newSession(SessionOptions.experts(cfg))) {
            int v = engine.info().vocabulary();
            float[] prompt = s.evaluateAll(PROMPT);
            float[] all = Arrays.copyOf(prompt, prompt.length + DECODE * v);
            int[] tokens = new int[DECODE];
            float[] last = Arrays.copyOfRange(prompt, prompt.length - v, prompt.length);
            for (int i = 0; i < DECODE; i++) {
                tokens[i] = ExactnessHarness.argmax(last);
                last = s.next(tokens[i]);
                System.arraycopy(last, 0, all, prompt.length + i * v, v);
            }
            OffloadStats st = s.offloadStats();
            return new Run(all, tokens, st);
        }
    }

    static String compare(Run resident, Run off, ExpertRuntimeConfig cfg) {
        if (!Arrays.equals(resident.tokens(), off.tokens())) {
            return "greedy tokens differ: " + Arrays.toString(resident.tokens()) + " vs " + Arrays.toString(off.tokens());
        }
        int v = resident.logits().length / (PROMPT.length + DECODE);
        for (int i = 0; i < resident.logits().length; i++) {
            if (Float.floatToRawIntBits(resident.logits()[i]) != Float.floatToRawIntBits(off.logits()[i])) {
                int pos = i / v;
                return (pos < PROMPT.length ? "prompt" : "decode") + " position " + pos + " logit " + i % v + " differs: " + resident.logits()[i]
                        + " vs " + off.logits()[i] + " (|d| " + Math.abs(resident.logits()[i] - off.logits()[i]) + ")";
            }
        }
        OffloadStats s = off.stats();
        if (cfg.offloads()) {
            if (s == null) return "no offload statistics";
            if (s.total(OffloadStats.Counter.SUBSTITUTIONS) != 0) return "substitutions in an exact run";
            if (s.uses(OffloadStats.DECODE) <= 0) return "no decode expert uses counted";
            var r = s.report();
            if (r.peakResidentExpertBytes() > r.budgetBytes()) return "peak resident " + r.peakResidentExpertBytes() + " above the budget " + r.budgetBytes();
        }
        return null;
    }
}
