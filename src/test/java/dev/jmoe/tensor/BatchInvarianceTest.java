package dev.jmoe.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Under {@link Kernels#withBatchInvariance}, a batched product gives every vector exactly what {@link Kernels#matVec}
 * gives it alone, for every batch size, weight type and layout, with float or 8-bit activations: the forward pass over
 * several sequences relies on it for "a sequence's tokens do not depend on the batch".
 */
class BatchInvarianceTest {
    private static final Parallel pool2 = new Parallel(2); // daemon workers: no teardown

    private static Matrix random(GgmlType type, int rows, int cols, Random rnd, boolean pack) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        Matrix m = new Matrix(type, TypeKernelTest.quantize(type, src, rows, cols), rows, cols);
        return pack ? Packing.packed(m) : m;
    }

    private static Matrix[] matrices(Random rnd) {
        int cols = 512;
        return new Matrix[] {
                random(GgmlType.Q4_0, 96, cols, rnd, true), random(GgmlType.Q4_K, 48, cols, rnd, true),
                random(GgmlType.Q6_K, 64, cols, rnd, true), random(GgmlType.Q4_0, 40, cols, rnd, false),
                random(GgmlType.Q8_0, 72, cols, rnd, false), random(GgmlType.F16, 40, cols, rnd, false),
                random(GgmlType.F32, 24, cols, rnd, false), random(GgmlType.Q4_K, 40, cols, rnd, false)};
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void everyVectorOfABatchIsItsMatVec(boolean int8) {
        Random rnd = new Random(5);
        Matrix[] ms = matrices(rnd);
        int cols = 512;
        int maxBatch = 17;
        float[] x = TypeKernelTest.gaussian(rnd, maxBatch * (cols + 3), 1f);
        for (Matrix w : ms) {
            int rows = w.rows();
            float[][] alone = new float[maxBatch][rows];
            Kernels.withActivationQuantization(int8, () -> {
                for (int b = 0; b < maxBatch; b++) Kernels.matVec(pool2, w, x, b * (cols + 3), alone[b], 0);
            });
            for (int batch : new int[] {2, 3, 4, 5, 6, 7, 13, 14, 15, 16, 17}) {
                float[] out = new float[batch * (rows + 1)];
                Arrays.fill(out, Float.NaN);
                Kernels.withActivationQuantization(int8, () -> Kernels.withBatchInvariance(true,
                        () -> Kernels.matMul(pool2, w, x, cols + 3, batch, out, rows + 1)));
                for (int b = 0; b < batch; b++) {
                    float[] got = Arrays.copyOfRange(out, b * (rows + 1), b * (rows + 1) + rows);
                    assertArrayEquals(alone[b], got, w.type() + (w.packed() != null ? " packed" : "") + (int8 ? " int8" : "")
                            + ": vector " + b + " of a batch of " + batch + " bit for bit");
                }
            }
        }
    }

    /** A set of batched products gives every vector of every product what matVec / gatedMatVec give it alone. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(MatVecSetTest.Mode.class)
    void aMatMulSetIsItsMatVecsVectorByVector(MatVecSetTest.Mode mode) {
        Kernels.Gate silu = new Kernels.Gate() {
            @Override public float combine(float g, float u) { return g / (1f + (float) Math.exp(-g)) * u; }
        };
        mode.run(() -> {
            Random rnd = new Random(8);
            int cols = 512, batch = 5;
            Matrix[] singles = matrices(rnd);
            // gated pairs: packed Q4_0, packed Q4_K, unpacked Q8_0
            Matrix[][] pairs = {
                    {random(GgmlType.Q4_0, 48, cols, rnd, true), random(GgmlType.Q4_0, 48, cols, rnd, true)},
                    {random(GgmlType.Q4_K, 32, cols, rnd, true), random(GgmlType.Q4_K, 32, cols, rnd, true)},
                    {random(GgmlType.Q8_0, 40, cols, rnd, false), random(GgmlType.Q8_0, 40, cols, rnd, false)}};
            float[] x = TypeKernelTest.gaussian(rnd, 3 + batch * (cols + 2), 1f);
            for (Parallel pool : new Parallel[] {pool2, null}) {
                MatMulSet set = MatMulSet.begin();
                int n = singles.length + pairs.length;
                float[][] outs = new float[n][];
                for (int i = 0; i < n; i++) {
                    Matrix w = i < singles.length ? singles[i] : pairs[i - singles.length][1];
                    outs[i] = new float[1 + batch * (w.rows() + 1)];
                    java.util.Arrays.fill(outs[i], Float.NaN);
                    if (i < singles.length) set.add(w, x, 3, cols + 2, batch, outs[i], 1, w.rows() + 1);
                    else set.addGated(pairs[i - singles.length][0], w, silu, x, 3, cols + 2, batch, outs[i], 1, w.rows() + 1);
                }
                set.run(pool);
                for (int i = 0; i < n; i++) {
                    Matrix w = i < singles.length ? singles[i] : pairs[i - singles.length][1];
                    for (int b = 0; b < batch; b++) {
                        float[] want = new float[w.rows()];
                        if (i < singles.length) Kernels.matVec(pool, w, x, 3 + b * (cols + 2), want, 0);
                        else Kernels.gatedMatVec(pool, pairs[i - singles.length][0], w, silu, x, 3 + b * (cols + 2), want, 0);
                        int o = 1 + b * (w.rows() + 1);
                        assertArrayEquals(want, java.util.Arrays.copyOfRange(outs[i], o, o + w.rows()),
                                mode + " " + w.type() + (w.packed() != null ? " packed" : "") + (i >= singles.length ? " gated" : "") + " vector " + b);
                    }
                    assertTrue(Float.isNaN(outs[i][0]), "nothing written before the first vector");
                }
            }
        });
    }

    /** The binding matters: without it a float batch of 16 on a packed or quantized matrix takes other arithmetic. */
    @Test
    void withoutTheBindingLargeBatchesDiffer() {
        Random rnd = new Random(6);
        Matrix[] ms = matrices(rnd);
        int cols = 512, batch = 16;
        float[] x = TypeKernelTest.gaussian(rnd, batch * cols, 1f);
        int differing = 0;
        for (Matrix w : ms) {
            float[] out = new float[batch * w.rows()], alone = new float[w.rows()];
            Kernels.matMul(pool2, w, x, cols, batch, out, w.rows());
            boolean same = true;
            for (int b = 0; b < batch; b++) {
                Kernels.matVec(pool2, w, x, b * cols, alone, 0);
                same &= Arrays.equals(alone, Arrays.copyOfRange(out, b * w.rows(), (b + 1) * w.rows()));
            }
            if (!same) differing++;
        }
        assertTrue(differing >= 3, "tiles and panels round differently from the vector kernels on most types, got " + differing);
        assertFalse(Kernels.batchInvariance(), "the binding does not outlive its body");
    }
}
