package dev.jmoe.tensor.bench;

import dev.jmoe.tensor.Parallel;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Collection;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The machine's streaming read bandwidth, the ceiling of a decode step (which reads every used weight once): a
 * vector sum over 512 MiB, split over the {@link Parallel} pool the kernels use, from a Java array (where packed
 * copies live) and from native memory (where a mapped model file's rows are read). Decode's bytes per token divided
 * by its time per token is compared with this figure.
 *
 * <p>{@code ops} adds that many vector instructions per 32 bytes read (integer multiplies and adds on the loaded
 * data, as a kernel would do) and {@code bits} picks 256- or 512-bit loads: a core keeps only as many loads in
 * flight as its reorder window holds instructions, so a kernel with more instructions per byte can fall below the
 * machine's bandwidth even while its arithmetic units have room.
 *
 * <pre>bench/jmh StreamBench [JMH options]</pre>
 * prints a GB/s table after the JMH run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 8, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx2g",
        "-XX:+UseTransparentHugePages"})
public class StreamBench {
    static final int BYTES = 512 << 20;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    @Param({"1", "2"})
    public int threads;

    /** heap: an int[]; native: an off-heap segment. */
    @Param({"heap", "native"})
    public String memory;

    /** Vector instructions per 32 bytes on top of the load and add (0, or as many as a decode kernel spends). */
    @Param({"0"})
    public int ops;

    @Param({"256"})
    public int bits;

    /**
     * Sequential streams each thread reads at once (heap, 256-bit, ops 0): its share cut into this many parts walked
     * side by side, as a packed kernel walks two groups' quants and their scales. 1 is one stream per thread. Two
     * threads read 35.8, 37.5, 37.2 and 37.3 GB/s with 1, 2, 4 and 8 streams each, 31.0 with 16 (AMD EPYC, 2026-12-07
     * 09:40 UTC): the kernels' four streams per thread cost the prefetchers nothing.
     */
    @Param({"1"})
    public int streams;

    private Parallel pool;
    private int[] heap;
    private MemorySegment seg;
    private Arena arena;
    /** One result per chunk, so no chunk's sum can be dropped as unused. */
    private final AtomicIntegerArray sums = new AtomicIntegerArray(64);

    @Setup
    public void setup() {
        pool = new Parallel(threads);
        if (memory.equals("heap")) {
            heap = new int[BYTES / 4];
            for (int i = 0; i < heap.length; i++) heap[i] = i;
        } else {
            arena = Arena.ofShared();
            seg = arena.allocate(BYTES, 4096);
            for (long i = 0; i < BYTES / 4; i++) seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, i, (int) i);
        }
    }

    @TearDown
    public void tearDown() {
        pool.close();
        if (arena != null) arena.close();
    }

    /** Units of 64 KB; each thread sums whole units of the array. */
    private static final int UNIT = 64 << 10;

    @Benchmark
    public int read() {
        int units = BYTES / UNIT;
        pool.forRange(units, 1, (u0, u1) -> {
            int s;
            if (heap == null) s = sumNative(seg, (long) u0 * UNIT, (long) u1 * UNIT);
            else if (bits == 512) s = sumHeap512(heap, u0 * (UNIT / 4), u1 * (UNIT / 4));
            else if (streams > 1) s = sumHeapStreams(heap, u0 * (UNIT / 4), u1 * (UNIT / 4), streams);
            else if (ops > 0) s = workHeap(heap, u0 * (UNIT / 4), u1 * (UNIT / 4), ops);
            else s = sumHeap(heap, u0 * (UNIT / 4), u1 * (UNIT / 4));
            sums.set(u0 & 63, s);
        });
        return sums.get(0);
    }

    /** Four accumulators: the loads, not the adds' latency, set the pace. */
    private static int sumHeap(int[] a, int from, int to) {
        IntVector s0 = IntVector.zero(I), s1 = s0, s2 = s0, s3 = s0;
        for (int i = from; i < to; i += 32) {
            s0 = s0.add(IntVector.fromArray(I, a, i));
            s1 = s1.add(IntVector.fromArray(I, a, i + 8));
            s2 = s2.add(IntVector.fromArray(I, a, i + 16));
            s3 = s3.add(IntVector.fromArray(I, a, i + 24));
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }

    /** {@link #sumHeap} over [from, to) cut into {@code k} parts read side by side, 128 bytes of each in turn. */
    private static int sumHeapStreams(int[] a, int from, int to, int k) {
        IntVector s0 = IntVector.zero(I), s1 = s0, s2 = s0, s3 = s0;
        int part = (to - from) / k / 32 * 32;
        for (int i = 0; i < part; i += 32) {
            for (int j = 0, b = from + i; j < k; j++, b += part) {
                s0 = s0.add(IntVector.fromArray(I, a, b));
                s1 = s1.add(IntVector.fromArray(I, a, b + 8));
                s2 = s2.add(IntVector.fromArray(I, a, b + 16));
                s3 = s3.add(IntVector.fromArray(I, a, b + 24));
            }
        }
        for (int i = from + part * k; i + 8 <= to; i += 8) s0 = s0.add(IntVector.fromArray(I, a, i));
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }

    private static int sumHeap512(int[] a, int from, int to) {
        IntVector s0 = IntVector.zero(IntVector.SPECIES_512), s1 = s0;
        for (int i = from; i < to; i += 32) {
            s0 = s0.add(IntVector.fromArray(IntVector.SPECIES_512, a, i));
            s1 = s1.add(IntVector.fromArray(IntVector.SPECIES_512, a, i + 16));
        }
        return s0.add(s1).reduceLanes(VectorOperators.ADD);
    }

    /** Per 32 bytes: the load, then {@code ops} multiplies and adds on four independent chains. */
    private static int workHeap(int[] a, int from, int to, int ops) {
        IntVector s0 = IntVector.zero(I), s1 = s0, s2 = s0, s3 = s0;
        for (int i = from; i < to; i += 32) {
            IntVector v0 = IntVector.fromArray(I, a, i), v1 = IntVector.fromArray(I, a, i + 8);
            IntVector v2 = IntVector.fromArray(I, a, i + 16), v3 = IntVector.fromArray(I, a, i + 24);
            for (int k = 0; k < ops; k += 2) {
                v0 = v0.mul(v0).add(v0);
                v1 = v1.mul(v1).add(v1);
                v2 = v2.mul(v2).add(v2);
                v3 = v3.mul(v3).add(v3);
            }
            s0 = s0.add(v0);
            s1 = s1.add(v1);
            s2 = s2.add(v2);
            s3 = s3.add(v3);
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }

    private static int sumNative(MemorySegment m, long from, long to) {
        MemorySegment r = m.asSlice(from, to - from);
        long n = to - from;
        IntVector s0 = IntVector.zero(I), s1 = s0, s2 = s0, s3 = s0;
        for (long p = 0; p < n; p += 128) {
            s0 = s0.add(IntVector.fromMemorySegment(I, r, p, ByteOrder.LITTLE_ENDIAN));
            s1 = s1.add(IntVector.fromMemorySegment(I, r, p + 32, ByteOrder.LITTLE_ENDIAN));
            s2 = s2.add(IntVector.fromMemorySegment(I, r, p + 64, ByteOrder.LITTLE_ENDIAN));
            s3 = s3.add(IntVector.fromMemorySegment(I, r, p + 96, ByteOrder.LITTLE_ENDIAN));
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }

    public static void main(String[] args) throws Exception {
        Options opts = new OptionsBuilder().parent(new CommandLineOptions(args)).include(StreamBench.class.getName()).build();
        Collection<RunResult> results = new Runner(opts).run();
        System.out.println();
        System.out.printf("%-3s %-7s %-4s %-4s %-7s %10s %8s%n", "thr", "memory", "ops", "bits", "streams", "ms/op", "GB/s");
        for (RunResult r : results) {
            var p = r.getParams();
            double ms = r.getPrimaryResult().getScore();
            System.out.printf("%-3s %-7s %-4s %-4s %-7s %10.2f %8.2f%n", p.getParam("threads"), p.getParam("memory"), p.getParam("ops"), p.getParam("bits"), p.getParam("streams"), ms,
                    BYTES / (ms * 1e6));
        }
    }
}
