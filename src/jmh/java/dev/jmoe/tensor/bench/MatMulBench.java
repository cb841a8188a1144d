package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Parallel;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Batched product (prompt processing, tokens grouped by expert) of a 3584×1024 matrix, against the
 * same number of separate matVecs. GFLOP/s = 2·rows·cols·batch / time.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class MatMulBench {
    @Param({"Q8_0", "Q4_0", "Q4_K", "F16"})
    public String type;

    @Param({"4", "16", "64"})
    public int batch;

    @Param({"1", "2"})
    public int threads;

    /** true: activations rounded to 8 bits and integer dots at every batch size ({@link Kernels#withActivationQuantization}, bound around each measured call). */
    @Param({"false"})
    public boolean q8act;

    private static final int ROWS = 3584, COLS = 1024;
    private Parallel pool;
    private Matrix w;
    private float[] x, out;
    private Arena arena;

    @Setup
    public void setup() {
        GgmlType t = GgmlType.valueOf(type);
        Random rnd = new Random(1);
        float[] src = new float[ROWS * COLS];
        for (int i = 0; i < src.length; i++) src[i] = (float) rnd.nextGaussian() * 0.05f;
        arena = Arena.ofShared();
        long rowBytes = t.bytesFor(COLS);
        MemorySegment seg = arena.allocate(ROWS * rowBytes, 64);
        for (int r = 0; r < ROWS; r++) Kernels.forType(t).quantizeRow(src, r * COLS, COLS, seg, r * rowBytes);
        w = new Matrix(t, seg, ROWS, COLS);
        x = new float[COLS * batch];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        out = new float[ROWS * batch];
        pool = new Parallel(threads);
    }

    @TearDown
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public float matMul() {
        Kernels.withActivationQuantization(q8act, () -> Kernels.matMul(pool, w, x, COLS, batch, out, ROWS));
        return out[0];
    }

    @Benchmark
    public float matVecs() {
        Kernels.withActivationQuantization(q8act, () -> {
            for (int b = 0; b < batch; b++) Kernels.matVec(pool, w, x, b * COLS, out, b * ROWS);
        });
        return out[0];
    }
}
