package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.Parallel;
import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;

/** Dispatch latency of {@link Parallel#forRange}: an almost empty task split over all threads. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class ParallelBench {
    @Param({"1", "2"})
    public int threads;

    private Parallel pool;
    private final long[] sink = new long[64];

    @Setup
    public void setup() {
        pool = new Parallel(threads);
    }

    @TearDown
    public void tearDown() {
        pool.close();
    }

    @Benchmark
    public long forRange() {
        pool.forRange(64, 1, (s, e) -> sink[s] += e);
        return sink[0];
    }
}
