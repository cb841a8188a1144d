package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.testutil.TestModels;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.Link;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Child-JVM side of {@link OffloadExactnessTest}: for each combo "model|policy|budget|store|link" runs a prompt
 * (two batches, all logits) and greedy decode offloaded, compares every logit bit with the resident run, and
 * prints {@code RESULT combo OK} or {@code RESULT combo FAIL why}.
 */
public final class ExactnessHarness {
    static final int[] PROMPT = {1, 17, 42, 99, 7, 250, 3, 64, 128, 5};
    static final int DECODE = 10;

    record Run(float[] logits, int[] tokens, OffloadStats stats) {}

    public static void main(String[] args) throws Exception {
        Map<String, GgufFile> files = new HashMap<>();
        Map<String, Model> models = new HashMap<>();
        Map<String, Run> resident = new HashMap<>();
        try (Parallel pool = new Parallel(2)) {
            for (String combo : args) {
                String[] c = combo.split("\\|");
                String why;
                try {
                    Model m = models.computeIfAbsent(c[0], name -> {
                        try {
                            GgufFile f = GgufFile.open(model(name));
                            files.put(name, f);
                            return Model.load(f);
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    });
                    Run ref = resident.get(c[0]);
                    if (ref == null) {
                        ref = run(m, pool, null);
                        Run again = run(m, pool, null);
                        if (!Arrays.equals(ref.logits(), again.logits())) {
                            throw new AssertionError("two resident runs differ: the kernels are not deterministic in this JVM");
                        }
                        resident.put(c[0], ref);
                    }
                    OffloadConfig cfg = OffloadConfig.preset(c[1], budget(m, c[2]), c[3], Link.parse(c[4]));
                    why = compare(m, ref, run(m, pool, cfg), c[2]);
                } catch (Throwable t) {
                    why = t.toString().replace('\n', ' ');
                }
                System.out.println("RESULT " + combo + " " + (why == null ? "OK" : "FAIL " + why));
            }
        } finally {
            for (GgufFile f : files.values()) f.close();
        }
    }

    private static String compare(Model m, Run resident, Run off, String budget) {
        if (!Arrays.equals(resident.tokens(), off.tokens())) {
            return "greedy tokens differ: " + Arrays.toString(resident.tokens()) + " vs " + Arrays.toString(off.tokens());
        }
        for (int i = 0; i < resident.logits().length; i++) {
            if (Float.floatToRawIntBits(resident.logits()[i]) != Float.floatToRawIntBits(off.logits()[i])) {
                return "logit " + i + " differs: " + resident.logits()[i] + " vs " + off.logits()[i];
            }
        }
        OffloadStats s = off.stats();
        ExpertLayout layout = ExpertLayout.of(m);
        long limit = OffloadConfig.parseBudget(budget(m, budget), layout.totalBytes());
        if (s.total(OffloadStats.Counter.SUBSTITUTIONS) != 0) return "substitutions with alpha 0";
        if (s.peakResidentBytes() > limit || s.peakResidentBytes() <= 0) return "peak resident " + s.peakResidentBytes() + " vs budget " + limit;
        long uses = s.uses(OffloadStats.DECODE), max = (long) DECODE * m.hyperparams().nLayer() * m.hyperparams().nExpertUsed();
        if (uses <= 0 || uses > max) return "decode expert uses " + uses + " outside (0, " + max + "]";
        return null;
    }

    static Run run(Model m, Parallel pool, OffloadConfig cfg) {
        InferenceState st = m.newState(64, pool);
        OffloadRuntime rt = cfg == null ? null : OffloadRuntime.install(st, cfg, null);
        try {
            int v = m.hyperparams().nVocab();
            float[] prompt = st.evalAll(PROMPT, 0, PROMPT.length, 6);
            float[] all = new float[prompt.length + DECODE * v];
            System.arraycopy(prompt, 0, all, 0, prompt.length);
            int[] tokens = new int[DECODE];
            float[] last = Arrays.copyOfRange(prompt, prompt.length - v, prompt.length);
            for (int i = 0; i < DECODE; i++) {
                tokens[i] = argmax(last);
                last = st.next(tokens[i]);
                System.arraycopy(last, 0, all, prompt.length + i * v, v);
            }
            return new Run(all, tokens, rt == null ? null : rt.stats());
        } finally {
            if (rt != null) rt.close();
        }
    }

    public static int argmax(float[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
        return b;
    }

    static Path model(String name) {
        return name.equals("mixtral") ? TestModels.mixtral() : TestModels.qwen2moe();
    }

    /** "slots:N" = room for exactly N experts (N = "layers": one per MoE layer); anything else is passed through. */
    static String budget(Model m, String b) {
        if (!b.startsWith("slots:")) return b;
        ExpertLayout layout = ExpertLayout.of(m);
        String n = b.substring(6);
        int slots = n.equals("layers") ? m.hyperparams().nLayer() : Integer.parseInt(n);
        long slot = (layout.maxExpertBytes() + 63) / 64 * 64;
        return Long.toString(slots * slot + slot - 1);
    }
}
