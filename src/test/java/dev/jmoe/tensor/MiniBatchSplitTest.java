package dev.jmoe.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link Kernels#splitKeepsBits}: where it allows cutting a batch into mini-batches (a distributed prompt step sends an
 * expert's rows in parts), the parts' products give every vector the whole product's bits; and the cuts it refuses
 * really do change bits on some matrix, so the check is needed.
 */
class MiniBatchSplitTest {
    private static final Parallel pool2 = new Parallel(2);

    private static Matrix random(GgmlType type, int rows, int cols, Random rnd, boolean pack) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        Matrix m = new Matrix(type, TypeKernelTest.quantize(type, src, rows, cols), rows, cols);
        return pack ? Packing.packed(m) : m;
    }

    /** The product over the parts {@code part, part, …, rest} (the last one also takes the remainder). */
    private static float[] inParts(Matrix w, float[] x, int cols, int batch, int part) {
        float[] out = new float[batch * w.rows()];
        int parts = Math.max(1, batch / part);
        for (int i = 0, at = 0; i < parts; i++) {
            int n = i == parts - 1 ? batch - at : part;
            float[] o = new float[n * w.rows()];
            Kernels.matMul(pool2, w, Arrays.copyOfRange(x, at * cols, (at + n) * cols), cols, n, o, w.rows());
            System.arraycopy(o, 0, out, at * w.rows(), o.length);
            at += n;
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void allowedCutsKeepEveryVectorsBitsAndRefusedOnesCanChangeThem(boolean int8) {
        Random rnd = new Random(11);
        int cols = 512;
        Matrix[] ms = {random(GgmlType.Q4_0, 64, cols, rnd, true), random(GgmlType.Q4_K, 48, cols, rnd, true),
                random(GgmlType.Q6_K, 32, cols, rnd, true), random(GgmlType.Q4_0, 40, cols, rnd, false),
                random(GgmlType.Q8_0, 40, cols, rnd, false), random(GgmlType.F16, 40, cols, rnd, false),
                random(GgmlType.F32, 24, cols, rnd, false), random(GgmlType.F32, 25, cols, rnd, false)};
        int maxBatch = 25;
        float[] x = TypeKernelTest.gaussian(rnd, maxBatch * cols, 1f);
        int allowedSplits = 0, refusedThatDiffer = 0;
        for (Matrix w : ms) {
            for (int batch : new int[] {3, 5, 8, 11, 16, 25}) {
                float[] whole = new float[batch * w.rows()];
                Kernels.withActivationQuantization(int8, () -> Kernels.matMul(pool2, w, x, cols, batch, whole, w.rows()));
                for (int part : new int[] {2, 3, 4, 5, 6, 8}) {
                    float[] parts = Kernels.withActivationQuantization(int8, () -> inParts(w, x, cols, batch, part));
                    boolean allowed = Kernels.withActivationQuantization(int8, () -> Kernels.splitKeepsBits(w, w.packed() != null, batch, part));
                    String what = w.type() + (w.packed() != null ? " packed" : "") + (int8 ? " int8" : "") + " batch " + batch + " in parts of " + part;
                    if (allowed) {
                        assertArrayEquals(whole, parts, what);
                        if (batch >= 2 * part) allowedSplits++;
                    } else if (!Arrays.equals(whole, parts)) {
                        refusedThatDiffer++;
                    }
                }
            }
        }
        assertTrue(allowedSplits > 40, "most cuts are allowed, got " + allowedSplits);
        if (!int8) assertTrue(refusedThatDiffer > 0, "some refused cut changes bits (odd parts of file-layout float tiles, parts under the tile threshold)");
        assertFalse(Kernels.splitKeepsBits(ms[0], true, 8, 1), "parts of one vector are never allowed");
    }
}
