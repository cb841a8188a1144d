package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * A step over several sequences ({@link Model#forward(InferenceState, Batch, float[])}) gives each sequence exactly the
 * logits it gets alone, bit for bit, whatever else is in the batch and however its prompt is cut into chunks; and a
 * decode row gets exactly what the single-sequence decode path gives.
 */
class BatchForwardTest {
    private static final Parallel pool = new Parallel(2); // daemon workers: no teardown

    static Path model(String name) {
        return switch (name) {
            case "qwen2moe" -> TestModels.qwen2moe(); // Q8_0 (unpacked), shared expert, 16 experts top-4
            case "mixtral" -> TestModels.mixtral();   // Q4_0 (packed), 8 experts top-2
            case "mixtral-k" -> TestModels.get("mixtral-k", new RandomModel.Shape("llama", 2, 256, 4, 2, 64, 8, 2, 256, 0, 300, 256, 1e6f,
                    1e-5f, false, 13), FileType.Q4_K_M); // packed Q4_K with Q6_K parts
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** What one sequence does: its prompt, cut into chunks of these sizes (repeated), then greedy decode steps. */
    record Plan(int[] prompt, int[] chunks, int decode) {}

    /**
     * Runs the plans together, one step at a time: each step every unfinished sequence adds its next prompt chunk or its
     * next decode token (sequence i joins at step {@code joinAt[i]}). Returns per sequence the logits of every row that
     * sampled (the last prompt row, then each decode row), concatenated.
     */
    static List<float[]> run(Model m, List<Plan> plans, int[] joinAt) {
        int v = m.hyperparams().nVocab();
        KvCache memory = m.newKvCache(256);
        InferenceState runtime = m.newState(1, pool);
        int n = plans.size();
        InferenceState[] seq = new InferenceState[n];
        int[] fed = new int[n], chunkIndex = new int[n], decoded = new int[n], next = new int[n];
        List<List<float[]>> out = new ArrayList<>();
        int base = 0;
        for (int i = 0; i < n; i++) {
            int need = plans.get(i).prompt().length + plans.get(i).decode() + 1;
            seq[i] = m.newState(memory.region(base, need), pool);
            base += need + 3;
            out.add(new ArrayList<>());
        }
        Batch batch = new Batch();
        float[] logits = new float[n * v];
        for (int step = 0; ; step++) {
            batch.clear();
            int[] index = new int[n];
            Arrays.fill(index, -1);
            boolean any = false;
            for (int i = 0; i < n; i++) {
                Plan p = plans.get(i);
                if (step < joinAt[i]) {
                    any = true;
                    continue;
                }
                if (fed[i] < p.prompt().length) {
                    int c = Math.min(p.chunks()[chunkIndex[i]++ % p.chunks().length], p.prompt().length - fed[i]);
                    boolean last = fed[i] + c == p.prompt().length;
                    index[i] = batch.add(seq[i], p.prompt(), fed[i], c, last);
                    fed[i] += c;
                    if (!last) index[i] = -1;
                    any = true;
                } else if (decoded[i] < p.decode()) {
                    index[i] = batch.add(seq[i], new int[] {next[i]}, 0, 1, true);
                    decoded[i]++;
                    any = true;
                }
            }
            if (!any) break;
            if (batch.rows() == 0) continue;
            Arrays.fill(logits, Float.NaN);
            m.forward(runtime, batch, logits);
            for (int i = 0; i < n; i++) {
                if (index[i] < 0) continue;
                float[] l = Arrays.copyOfRange(logits, index[i] * v, index[i] * v + v);
                out.get(i).add(l);
                next[i] = argmax(l);
            }
        }
        List<float[]> result = new ArrayList<>();
        for (List<float[]> rows : out) {
            float[] all = new float[rows.size() * v];
            for (int r = 0; r < rows.size(); r++) System.arraycopy(rows.get(r), 0, all, r * v, v);
            result.add(all);
        }
        return result;
    }

    static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static int[] tokens(Random rnd, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = rnd.nextInt(300);
        return t;
    }

    @ParameterizedTest
    @CsvSource({"qwen2moe,false", "qwen2moe,true", "mixtral,false", "mixtral,true", "mixtral-k,false", "mixtral-k,true"})
    void aSequenceGetsTheSameLogitsAloneAndInAnyBatch(String name, boolean int8) throws Exception {
        try (GgufFile f = GgufFile.open(model(name))) {
            Model m = Model.load(f).withPackedWeights().withActivationQuantization(int8);
            Random rnd = new Random(3);
            List<Plan> plans = List.of(new Plan(tokens(rnd, 13), new int[] {5}, 6), new Plan(tokens(rnd, 9), new int[] {2, 7}, 8),
                    new Plan(tokens(rnd, 3), new int[] {3}, 5), new Plan(tokens(rnd, 21), new int[] {16}, 4));
            List<float[]> together = run(m, plans, new int[] {0, 0, 2, 5});
            for (int i = 0; i < plans.size(); i++) {
                Plan p = plans.get(i);
                // alone, with its prompt fed in other chunks (one token at a time, then all at once)
                float[] oneByOne = run(m, List.of(new Plan(p.prompt(), new int[] {1}, p.decode())), new int[] {0}).getFirst();
                float[] whole = run(m, List.of(new Plan(p.prompt(), new int[] {64}, p.decode())), new int[] {0}).getFirst();
                assertEquals((p.decode() + 1) * m.hyperparams().nVocab(), together.get(i).length);
                assertArrayEquals(oneByOne, together.get(i), name + (int8 ? " int8" : "") + ": sequence " + i + " alone vs in the batch");
                assertArrayEquals(oneByOne, whole, name + (int8 ? " int8" : "") + ": sequence " + i + " prompt in one chunk vs token by token");
            }
        }
    }

    /**
     * A MoE layer's gathering of each expert's rows, spreading of its outputs to their slots and weighted sums over a
     * batch, shared by the pool's threads (as prompts of real size do), give the bits the calling thread gives alone.
     */
    @ParameterizedTest
    @CsvSource({"qwen2moe,false", "mixtral,true", "mixtral-k,false", "mixtral-k,true"})
    void sharingTheMoeCopiesAndSumsOverThreadsChangesNoBit(String name, boolean int8) throws Exception {
        long was = Model.spreadMinValues;
        try (GgufFile f = GgufFile.open(model(name))) {
            Model m = Model.load(f).withPackedWeights().withActivationQuantization(int8);
            Random rnd = new Random(4);
            List<Plan> plans = List.of(new Plan(tokens(rnd, 40), new int[] {40}, 3), new Plan(tokens(rnd, 17), new int[] {9}, 4),
                    new Plan(tokens(rnd, 5), new int[] {5}, 2));
            Model.spreadMinValues = Long.MAX_VALUE;
            List<float[]> alone = run(m, plans, new int[] {0, 1, 1});
            Model.spreadMinValues = 0;
            List<float[]> shared = run(m, plans, new int[] {0, 1, 1});
            for (int i = 0; i < plans.size(); i++) {
                assertArrayEquals(alone.get(i), shared.get(i), name + (int8 ? " int8" : "") + ": sequence " + i + " with the copies shared");
            }
        } finally {
            Model.spreadMinValues = was;
        }
    }

    /** Decode rows of a batch take exactly the arithmetic of the single-sequence decode path (fused expert dispatch included). */
    @ParameterizedTest
    @CsvSource({"qwen2moe,false", "mixtral,false", "mixtral,true", "mixtral-k,false"})
    void batchRowsMatchTheSingleTokenPath(String name, boolean int8) throws Exception {
        try (GgufFile f = GgufFile.open(model(name))) {
            Model m = Model.load(f).withPackedWeights().withActivationQuantization(int8);
            int[] prompt = tokens(new Random(9), 11);
            int steps = 5;
            InferenceState classic = m.newState(64, pool);
            float[] l = null;
            for (int t : prompt) l = classic.next(t);
            List<float[]> want = new ArrayList<>();
            want.add(l);
            for (int s = 0; s < steps; s++) {
                l = classic.next(argmax(l));
                want.add(l);
            }
            int v = m.hyperparams().nVocab();
            float[] wantAll = new float[want.size() * v];
            for (int r = 0; r < want.size(); r++) System.arraycopy(want.get(r), 0, wantAll, r * v, v);
            float[] got = run(m, List.of(new Plan(prompt, new int[] {4}, steps)), new int[] {0}).getFirst();
            assertArrayEquals(wantAll, got, name + ": batched rows vs InferenceState.next");
        }
    }

    @Test
    void regionsOfOneMemoryDoNotOverlapAndMoveIntact() throws Exception {
        try (GgufFile f = GgufFile.open(model("mixtral"))) {
            Model m = Model.load(f);
            KvCache memory = m.newKvCache(64);
            KvCache a = memory.region(10, 8), b = memory.region(30, 8);
            InferenceState sa = m.newState(a, pool), sb = m.newState(b, pool);
            Batch batch = new Batch();
            int[] ta = tokens(new Random(1), 6), tb = tokens(new Random(2), 6);
            batch.add(sa, ta, 0, 6, true);
            batch.add(sb, tb, 0, 6, true);
            int v = m.hyperparams().nVocab();
            float[] logits = new float[2 * v];
            m.forward(m.newState(1, pool), batch, logits);
            // move b left over free space, then continue both: same as an untouched run
            b.moveTo(0, 6, memory);
            assertEquals(0, b.offset(0));
            batch.clear();
            batch.add(sa, new int[] {7}, 0, 1, true);
            batch.add(sb, new int[] {7}, 0, 1, true);
            float[] moved = new float[2 * v];
            m.forward(m.newState(1, pool), batch, moved);

            InferenceState ra = m.newState(16, pool), rb = m.newState(16, pool);
            Batch ref = new Batch();
            ref.add(ra, ta, 0, 6, false);
            ref.add(rb, tb, 0, 6, false);
            m.forward(m.newState(1, pool), ref, null);
            ref.clear();
            ref.add(ra, new int[] {7}, 0, 1, true);
            ref.add(rb, new int[] {7}, 0, 1, true);
            float[] want = new float[2 * v];
            m.forward(m.newState(1, pool), ref, want);
            assertArrayEquals(want, moved);
            assertFalse(Arrays.equals(Arrays.copyOf(want, v), Arrays.copyOfRange(want, v, 2 * v)), "two different sequences");

            assertThrows(IllegalArgumentException.class, () -> memory.region(60, 8));
            Batch twice = new Batch();
            twice.add(sa, ta, 0, 1, false);
            assertThrows(IllegalArgumentException.class, () -> twice.add(sa, ta, 0, 1, false));
            Batch full = new Batch();
            assertThrows(IllegalStateException.class, () -> full.add(sa, new int[9], 0, 9, false), "past the region's 8 positions");
            assertTrue(sa.position() == 7 && sb.position() == 7);
        }
    }
}
