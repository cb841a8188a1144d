package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.Parallel;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.lang.foreign.Arena;
import java.util.Collection;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Batched product (prompt processing, tokens grouped by expert), against the same number of separate matVecs:
 * a Mixtral-like expert's gate (3584×1024) and a Qwen3-MoE-like one's (768×1024, about 8 tokens per expert in a
 * 64-token prompt). {@code packed=true} runs Q4_0, Q4_K, Q6_K and Q8_0 on their {@link Packing packed} copies (the layout
 * the products' rounding picks, {@code q8act}). {@code ws=stream} rotates through enough copies of the matrix (256 MB) that its weights come from memory, as
 * a prompt's experts do (native copies of the file's rows on 4 KB pages, like a model's mapping; packed copies on the
 * heap's huge pages); {@code ws=hot} reuses one copy. GFLOP/s = 2·rows·cols·batch / time, printed after the JMH run.
 *
 * <pre>bench/jmh MatMulBench [JMH options]</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx2g",
        "-XX:+UseTransparentHugePages"})
public class MatMulBench {
    @Param({"Q8_0", "Q4_0", "Q4_K", "Q6_K", "F16"})
    public String type;

    @Param({"3584x1024", "768x1024"})
    public String shape;

    @Param({"4", "8", "16", "64"})
    public int batch;

    @Param({"1", "2"})
    public int threads;

    /**
     * true: activations rounded to 8 bits and integer products at every batch size ({@link Kernels#withActivationQuantization},
     * bound around each measured call): {@code matMul} then takes the packed copies' batch kernels, {@code matVecs} one vector at a time.
     */
    @Param({"false"})
    public boolean q8act;

    @Param({"true"})
    public boolean packed;

    @Param({"hot"})
    public String ws;

    private int rows, cols;
    private Parallel pool;
    private WorkingSet weights;
    private float[] x, out;
    private Arena arena;

    @Setup
    public void setup() {
        GgmlType t = GgmlType.valueOf(type);
        String[] sh = shape.split("x");
        rows = Integer.parseInt(sh[0]);
        cols = Integer.parseInt(sh[1]);
        Random rnd = new Random(1);
        float[] src = new float[rows * cols];
        for (int i = 0; i < src.length; i++) src[i] = (float) rnd.nextGaussian() * 0.05f;
        arena = Arena.ofShared();
        Arena a = arena;
        // packed as the engine packs them: under the products' rounding, which picks the copy's layout (Packing.pack;
        // before session 45 this packed the float-scale copies for 8-bit products too)
        weights = Kernels.withActivationQuantization(q8act, () -> new WorkingSet(a, t, src, rows, cols, ws, packed));
        x = new float[cols * batch];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        out = new float[rows * batch];
        pool = new Parallel(threads);
    }

    @TearDown
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public float matMul() {
        Matrix w = weights.next();
        Kernels.withActivationQuantization(q8act, () -> Kernels.matMul(pool, w, x, cols, batch, out, rows));
        return out[0];
    }

    @Benchmark
    public float matVecs() {
        Matrix w = weights.next();
        Kernels.withActivationQuantization(q8act, () -> {
            for (int b = 0; b < batch; b++) Kernels.matVec(pool, w, x, b * cols, out, b * rows);
        });
        return out[0];
    }

    public static void main(String[] args) throws Exception {
        Options opts = new OptionsBuilder().parent(new CommandLineOptions(args)).include(MatMulBench.class.getName()).build();
        Collection<RunResult> results = new Runner(opts).run();
        System.out.println();
        System.out.printf("%-9s %-6s %-10s %-5s %-3s %-6s %-6s %10s %8s%n", "bench", "type", "shape", "batch", "thr", "packed", "ws", "us/op", "GFLOP/s");
        for (RunResult r : results) {
            var p = r.getParams();
            String[] sh = p.getParam("shape").split("x");
            double flops = 2.0 * Long.parseLong(sh[0]) * Long.parseLong(sh[1]) * Integer.parseInt(p.getParam("batch"));
            double us = r.getPrimaryResult().getScore();
            String name = r.getParams().getBenchmark();
            System.out.printf("%-9s %-6s %-10s %-5s %-3s %-6s %-6s %10.1f %8.1f%n", name.substring(name.lastIndexOf('.') + 1), p.getParam("type"),
                    p.getParam("shape"), p.getParam("batch"), p.getParam("threads"), p.getParam("packed"), p.getParam("ws"), us, flops / (us * 1e3));
        }
    }
}
