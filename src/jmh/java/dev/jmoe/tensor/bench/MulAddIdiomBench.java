package dev.jmoe.tensor.bench;

import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.util.Collection;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Whether C2's own vectorisation of 16-bit multiply-adds could beat the packed Q4 kernels. The Vector API has no
 * instruction that multiplies 8- or 16-bit lanes into wider sums (VNNI's {@code vpdpbusd}/{@code vpdpwssd},
 * {@code vpmaddwd}); C2 emits {@code vpdpwssd} only for the scalar loop {@code out[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1]}
 * (its MulAddS2I idiom; check with {@code bench/asm}). A matrix-vector product in that shape keeps one output lane
 * per row, so every step loads and stores the outputs and reads activations repeated once per row; the dot-product
 * shape (one sum per row) is not vectorised at all.
 *
 * <p>Hot 16-bit rows × columns (L1/L2-resident), one thread; the table after the JMH run gives products per
 * nanosecond. Compare with {@code MatVecBench -p type=Q4_0 -p packed=true -p q8act=false -p ws=hot -p threads=1}:
 * its kernel forms two 16-bit products per weight (a high and a low activation byte).
 *
 * <pre>bench/jmh MulAddIdiomBench [JMH options]</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g"})
public class MulAddIdiomBench {
    /** Rows × columns of 16-bit weights. */
    @Param({"1024x64", "256x256", "64x1024"})
    public String shape;

    private int rows, cols;
    private short[] weights, repeated, x;
    private int[] lanes, sums;

    @Setup
    public void setup() {
        String[] s = shape.split("x");
        rows = Integer.parseInt(s[0]);
        cols = Integer.parseInt(s[1]);
        SplittableRandom random = new SplittableRandom(7);
        weights = new short[rows * cols];
        repeated = new short[rows * cols];
        x = new short[cols];
        for (int i = 0; i < weights.length; i++) weights[i] = (short) (random.nextInt(16) - 8);
        for (int i = 0; i < cols; i++) x[i] = (short) random.nextInt(-32512, 32513);
        // column pair p's activations (x[2p], x[2p+1]) once per row, where the idiom's lanes want them
        for (int p = 0; p < cols / 2; p++) {
            for (int r = 0; r < rows; r++) {
                repeated[p * 2 * rows + 2 * r] = x[2 * p];
                repeated[p * 2 * rows + 2 * r + 1] = x[2 * p + 1];
            }
        }
        lanes = new int[rows];
        sums = new int[rows];
    }

    /** Lanes are rows: weights column pair by column pair, w[p][2r], w[p][2r + 1] (C2 emits vpdpwssd here). */
    @Benchmark
    public int rowLanes() {
        short[] w = weights, xr = repeated;
        int[] out = lanes;
        java.util.Arrays.fill(out, 0);
        for (int p = 0; p < cols / 2; p++) {
            int o = p * 2 * rows;
            for (int r = 0; r < rows; r++) out[r] += w[o + 2 * r] * xr[o + 2 * r] + w[o + 2 * r + 1] * xr[o + 2 * r + 1];
        }
        return out[rows - 1];
    }

    /** One sum per row over its columns, row-major weights (C2 leaves this reduction scalar). */
    @Benchmark
    public int rowDots() {
        short[] w = weights, v = x;
        for (int r = 0; r < rows; r++) {
            int sum = 0, o = r * cols;
            for (int c = 0; c < cols / 2; c++) sum += w[o + 2 * c] * v[2 * c] + w[o + 2 * c + 1] * v[2 * c + 1];
            sums[r] = sum;
        }
        return sums[rows - 1];
    }

    public static void main(String[] args) throws Exception {
        Options opts = new OptionsBuilder().parent(new CommandLineOptions(args)).include(MulAddIdiomBench.class.getName()).build();
        Collection<RunResult> results = new Runner(opts).run();
        System.out.println();
        System.out.printf("%-10s %-8s %10s %14s%n", "form", "shape", "us/op", "products/ns");
        for (RunResult r : results) {
            String shape = r.getParams().getParam("shape");
            String[] s = shape.split("x");
            double products = (double) Integer.parseInt(s[0]) * Integer.parseInt(s[1]);
            double us = r.getPrimaryResult().getScore();
            String form = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            System.out.printf("%-10s %-8s %10.2f %14.2f%n", form, shape, us, products / (us * 1e3));
        }
    }
}
