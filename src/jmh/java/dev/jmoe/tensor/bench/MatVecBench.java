package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.PackedMatrix;
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
 * Decode-step matrix × vector throughput per weight format, in weight bytes per second.
 * {@code ws=stream} rotates through enough copies of the matrix to defeat the caches (what decoding a
 * real model does); {@code ws=hot} reuses one copy (the kernel's compute ceiling). {@code q8act=true}
 * rounds the activations to 8 bits first and runs the integer dots ({@link Kernels#withActivationQuantization},
 * bound around each measured call);
 * {@code packed=true} runs Q4_0, Q4_K, Q6_K and Q8_0 on their {@link PackedMatrix} copies, laid out for the rounding as the engine
 * lays them out (bytes still counted in the file's layout).
 *
 * <pre>bench/jmh MatVecBench [JMH options]</pre>
 * prints a GB/s table after the JMH run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
// huge pages for the heap: streaming packed copies over 4 KB pages measured 10-20% slower here. bin/jmoe no longer asks
// for them (session 36): in the full program each young collection then cleared fresh 2 MB pages mid-decode, and
// decode was no faster with them on any row; these forks keep them so figures stay comparable with earlier sessions'.
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx2g",
        "-XX:+UseTransparentHugePages"})
public class MatVecBench {
    @Param({"Q8_0", "Q4_0", "Q4_K", "Q6_K", "F16"})
    public String type;

    @Param({"3584x1024", "1024x3584"})
    public String shape;

    @Param({"1", "2"})
    public int threads;

    @Param({"stream"})
    public String ws;

    @Param({"false", "true"})
    public boolean q8act;

    /** Q4_0, Q4_K and Q6_K only: run on a {@link PackedMatrix} copy (the layout generate and speed use by default). */
    @Param({"false", "true"})
    public boolean packed;

    private Parallel pool;
    private WorkingSet weights;
    private float[] x, out;
    private Arena arena;

    @Setup
    public void setup() {
        GgmlType t = GgmlType.valueOf(type);
        String[] s = shape.split("x");
        int rows = Integer.parseInt(s[0]), cols = Integer.parseInt(s[1]);
        Random rnd = new Random(1);
        float[] src = new float[rows * cols];
        for (int i = 0; i < src.length; i++) src[i] = (float) rnd.nextGaussian() * 0.05f;
        arena = Arena.ofShared();
        Arena a = arena;
        // packed as the engine packs them: under the products' rounding, which picks the copy's layout (Packing.pack)
        weights = Kernels.withActivationQuantization(q8act, () -> new WorkingSet(a, t, src, rows, cols, ws, packed));
        x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float) rnd.nextGaussian();
        out = new float[rows];
        pool = new Parallel(threads);
    }

    @TearDown
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public float matVec() {
        Matrix m = weights.next();
        Kernels.withActivationQuantization(q8act, () -> Kernels.matVec(pool, m, x, 0, out, 0));
        return out[0];
    }

    public static void main(String[] args) throws Exception {
        Options opts = new OptionsBuilder().parent(new CommandLineOptions(args)).include(MatVecBench.class.getName()).build();
        Collection<RunResult> results = new Runner(opts).run();
        System.out.println();
        System.out.printf("%-6s %-10s %-7s %-3s %-6s %-6s %10s %8s%n", "type", "shape", "ws", "thr", "q8act", "packed", "us/op", "GB/s");
        for (RunResult r : results) {
            var p = r.getParams();
            GgmlType t = GgmlType.valueOf(p.getParam("type"));
            String[] s = p.getParam("shape").split("x");
            long bytes = Long.parseLong(s[0]) * t.bytesFor(Long.parseLong(s[1]));
            double us = r.getPrimaryResult().getScore();
            System.out.printf("%-6s %-10s %-7s %-3s %-6s %-6s %10.1f %8.2f%n", t, p.getParam("shape"), p.getParam("ws"),
                    p.getParam("threads"), p.getParam("q8act"), p.getParam("packed"), us, bytes / (us * 1e3));
        }
    }
}
