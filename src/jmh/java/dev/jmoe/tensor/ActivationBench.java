package dev.jmoe.tensor;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/**
 * Rounding activations to 8 bits and laying them out for the packed integer kernels ({@code --int8-activations}):
 * {@link PackedQ4.Activation#prepare} for the Q4 and the Q6 kernels over a batch of 1024-value vectors (a prompt's
 * tokens routed to one expert), and {@link QuantizedActivation#quantizeQ8_K} against its scalar definition. Each runs
 * once per vector and product before the products, on data that is in cache (a few vectors), so only hot working sets
 * are measured. Scores are per call; divide by batch × 1024 for a value. The rounding alone does not depend on
 * {@code precision} (its rows repeat).
 *
 * <pre>bench/jmh ActivationBench [JMH options]</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class ActivationBench {
    private static final int COLS = 1024;

    @Param({"BITS_8", "Q6_BITS_8"})
    public String precision;

    @Param({"1", "8"})
    public int batch;

    private float[] x;
    private final PackedQ4.Activation activation = new PackedQ4.Activation();
    private byte[] q;
    private float[] d;
    private PackedQ4.Precision layout;

    @Setup
    public void setUp() {
        Random r = new Random(42);
        x = new float[COLS * batch];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * 3f;
        q = new byte[COLS * batch];
        d = new float[COLS * batch / 256];
        layout = PackedQ4.Precision.valueOf(precision);
    }

    @Benchmark
    public short[] prepare() {
        activation.prepare(layout, QuantizedActivation.Scheme.Q8_K, x, 0, COLS, batch, COLS);
        return activation.v;
    }

    @Benchmark
    public byte[] quantizeQ8_K() {
        QuantizedActivation.quantizeQ8_K(x, 0, x.length, q, 0, d, 0);
        return q;
    }

    @Benchmark
    public byte[] quantizeQ8_KScalar() {
        QuantizedActivation.quantizeQ8_KScalar(x, 0, x.length, q, 0, d, 0);
        return q;
    }
}
