package dev.jmoe.model;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/**
 * The forward pass's small float operations ({@link Ops}) at the sizes of the mid-size bench shapes: SwiGLU's
 * {@code siluTimes} over an expert's hidden row (ff 3584, Mixtral-like; 768, Qwen3-MoE-like), the attention softmax's
 * exp, and an attention head's scores and weighted value rows over a 512-position context (head size 128, four query
 * heads per KV head). {@code ws=hot} reuses one set of arrays (in cache, as a decode step has them); {@code ws=stream}
 * rotates through 64 MiB of them, so every call reads its inputs from memory.
 *
 * <pre>bench/jmh OpsBench [JMH options]</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class OpsBench {
    private static final long STREAM_BYTES = 64L << 20;
    private static final int HEAD = 128, CONTEXT = 512;

    /** Length of the SwiGLU row and of the softmax. */
    @Param({"3584", "768"})
    public int n;

    @Param({"hot", "stream"})
    public String ws;

    private float[][] gate, up, scores, keys, values, queries, outs;
    private float[][] headScores;
    private float[] work;
    private int next;

    @Setup
    public void setUp() {
        Random r = new Random(42);
        long perSet = 4L * (3L * n + 2L * CONTEXT * HEAD + 8L * HEAD); // gate, up, scores; keys, values; queries, outs
        int sets = ws.equals("hot") ? 1 : (int) Math.max(2, STREAM_BYTES / perSet);
        gate = new float[sets][];
        up = new float[sets][];
        scores = new float[sets][];
        keys = new float[sets][];
        values = new float[sets][];
        queries = new float[sets][];
        outs = new float[sets][];
        for (int s = 0; s < sets; s++) {
            gate[s] = random(r, n, 4f);
            up[s] = random(r, n, 1f);
            scores[s] = random(r, n, 8f);
            keys[s] = random(r, CONTEXT * HEAD, 1f);
            values[s] = random(r, CONTEXT * HEAD, 1f);
            queries[s] = random(r, 4 * HEAD, 1f);
            outs[s] = new float[4 * HEAD];
        }
        headScores = new float[4][CONTEXT];
        work = new float[n];
    }

    private static float[] random(Random r, int len, float scale) {
        float[] a = new float[len];
        for (int i = 0; i < len; i++) a[i] = (float) r.nextGaussian() * scale;
        return a;
    }

    private int set() {
        int s = next;
        next = s + 1 == gate.length ? 0 : s + 1;
        return s;
    }

    /**
     * silu(gate)·up over one expert's hidden row, in place in a copy of the gate row (rewriting the same row call after
     * call would drift towards zeros and subnormals, which time differently); the copy is part of every variant's time.
     */
    @Benchmark
    public float siluTimes() {
        int s = set();
        System.arraycopy(gate[s], 0, work, 0, n);
        Ops.siluTimes(work, 0, up[s], 0, n);
        return work[n - 1];
    }

    /** The attention softmax (max, vector exp, sum, scale) over n scores (in place: after the first call they are probabilities). */
    @Benchmark
    public float attentionSoftmax() {
        int s = set();
        Ops.attentionSoftmax(scores[s], 0, n);
        return scores[s][0];
    }

    /** Four query heads against 512 keys, then their weighted sums of 512 value rows. */
    @Benchmark
    public float attentionHead4() {
        int s = set();
        Ops.scores4(queries[s], 0, HEAD, keys[s], 0, HEAD, CONTEXT, HEAD, 0.088f, headScores);
        Ops.weightedRows4(headScores, CONTEXT, values[s], 0, HEAD, HEAD, outs[s], 0, HEAD);
        return outs[s][0];
    }
}
