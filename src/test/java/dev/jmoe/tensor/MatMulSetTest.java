package dev.jmoe.tensor;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A tiled set of batched products in one dispatch gives, product by product, exactly what separate matMul calls give;
 * bound to batch invariance, every vector what matVec gives it alone (BatchInvarianceTest checks the exact sets).
 */
class MatMulSetTest {
    private static final Kernels.Gate SILU = (g, u) -> g / (1f + (float) Math.exp(-g)) * u;
    private static final Parallel pool1 = new Parallel(1), pool2 = new Parallel(2); // daemon workers: no teardown

    private static Matrix random(GgmlType type, int rows, int cols, Random rnd, boolean pack) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        Matrix m = new Matrix(type, TypeKernelTest.quantize(type, src, rows, cols), rows, cols);
        return pack ? Packing.packed(m) : m;
    }

    /** One product of the set: a matrix (and its gated partner), a batch read at xOff, written at outOff. */
    private record Case(Matrix w, Matrix u, int batch, int xOff, int outOff) {}

    /**
     * Every way a batched product is computed, in one set: float tiles of 8 and 16 tokens, prepared dots of a few vectors,
     * single vectors, packed integer products and packed panels, gated and plain, two products reading the same block
     * of vectors (whose prepared form the set shares), rows that are not multiples of a tile or group pair, and on the
     * 2-thread pool chunks that cut across products. Outputs are spaced out with NaNs, which must stay where nothing
     * is written.
     */
    private static final class Setup {
        final Case[] cases;
        final float[] x;
        final int stride;

        Setup() {
            Random rnd = new Random(17);
            int cols = 512;
            stride = cols + 8;
            Matrix q8 = random(GgmlType.Q8_0, 70, cols, rnd, false);
            Matrix f16 = random(GgmlType.F16, 37, cols, rnd, false);
            Matrix q4 = random(GgmlType.Q4_0, 80, cols, rnd, true), q4u = random(GgmlType.Q4_0, 80, cols, rnd, true);
            Matrix k4 = random(GgmlType.Q4_K, 48, cols, rnd, true), k4u = random(GgmlType.Q4_K, 48, cols, rnd, true);
            Matrix q6 = random(GgmlType.Q6_K, 32, cols, rnd, true);
            Matrix g8 = random(GgmlType.Q8_0, 52, cols, rnd, false), u8 = random(GgmlType.Q8_0, 52, cols, rnd, false);
            Matrix p8 = random(GgmlType.Q8_0, 48, cols, rnd, true), p8u = random(GgmlType.Q8_0, 48, cols, rnd, true);
            cases = new Case[] {
                    new Case(q8, null, 5, 0, 0),       // tiles of 8 tokens (rows past a multiple of 12)
                    new Case(f16, null, 17, 0, 0),     // tiles of 16 tokens, the last block partial; same input as the first
                    new Case(q8, null, 3, 7, 0),       // prepared dots, a few vectors
                    new Case(q4, q4u, 6, 11, 0),       // packed panels, gated
                    new Case(k4, k4u, 2, 2, 0),        // packed integer products, gated
                    new Case(k4, null, 2, 2, 0),       // the same vectors: shares the laid-out activations
                    new Case(q6, null, 1, 4, 0),       // a single vector on a packed copy
                    new Case(g8, u8, 9, 1, 0),         // tiles of 16, gated
                    new Case(q8, null, 9, 1, 0),       // the same vectors: shares the transposed batch
                    new Case(q8, null, 9, 3, 0),       // other vectors of the same array: does not
                    new Case(g8, u8, 1, 23, 0),        // a single vector, gated
                    new Case(p8, p8u, 7, 5, 0),        // packed Q8_0: panels, gated (its file rows with rounded activations)
                    new Case(p8, null, 2, 5, 0),       // packed Q8_0, a few vectors: its float group products
            };
            int maxBatch = 17;
            x = TypeKernelTest.gaussian(rnd, 30 * stride + maxBatch * stride, 1f);
        }

        int[] outOffsets() {
            int[] outOffs = new int[cases.length + 1];
            int total = 3;
            for (int i = 0; i < cases.length; i++) {
                outOffs[i] = total;
                total += cases[i].batch() * (cases[i].w().rows() + 2) + 3;
            }
            outOffs[cases.length] = total;
            return outOffs;
        }

        /** Every case in one tiled set, outputs spaced out with NaNs. */
        float[] runTiledSet(Parallel pool) {
            int[] outOffs = outOffsets();
            float[] out = new float[outOffs[cases.length]];
            Arrays.fill(out, Float.NaN);
            MatMulSet set = MatMulSet.beginTiled();
            for (int i = 0; i < cases.length; i++) {
                Case c = cases[i];
                int outStride = c.w().rows() + 2;
                if (c.u() == null) set.add(c.w(), x, c.xOff() * stride, stride, c.batch(), out, outOffs[i], outStride);
                else set.addGated(c.w(), c.u(), SILU, x, c.xOff() * stride, stride, c.batch(), out, outOffs[i], outStride);
            }
            set.run(pool);
            return out;
        }
    }

    private static void assertSameBits(float[] want, float[] got, String where, String wantName) {
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(where + ": output " + i + " is " + got[i] + ", " + wantName + " gives " + want[i]);
            }
        }
    }

    /**
     * Every way a batched product is computed, in one set: float tiles of 8 and 16 tokens, prepared dots of a few vectors,
     * single vectors, packed integer products and packed panels, gated and plain, two products reading the same block
     * of vectors (whose prepared form the set shares), rows that are not multiples of a tile or group pair, and on the
     * 2-thread pool chunks that cut across products. Outputs are spaced out with NaNs, which must stay where nothing
     * is written.
     */
    @ParameterizedTest
    @EnumSource(MatVecSetTest.Mode.class)
    void everyProductEqualsItsOwnMatMul(MatVecSetTest.Mode mode) {
        Setup setup = new Setup();
        Case[] cases = setup.cases;
        int stride = setup.stride;
        float[] x = setup.x;
        mode.run(() -> {
            for (Parallel pool : new Parallel[] {pool1, pool2, null}) {
                String where = mode + " on " + (pool == null ? "no pool" : pool.threads() + " threads");
                int[] outOffs = setup.outOffsets();
                float[] out = setup.runTiledSet(pool);
                float[] want = new float[out.length];
                Arrays.fill(want, Float.NaN);
                for (int i = 0; i < cases.length; i++) {
                    Case c = cases[i];
                    int rows = c.w().rows(), outStride = rows + 2;
                    float[] in = Arrays.copyOfRange(x, c.xOff() * stride, (c.xOff() + c.batch()) * stride);
                    float[] w = new float[c.batch() * outStride];
                    Kernels.matMul(pool, c.w(), in, stride, c.batch(), w, outStride);
                    if (c.u() != null) {
                        float[] up = new float[c.batch() * outStride];
                        Kernels.matMul(pool, c.u(), in, stride, c.batch(), up, outStride);
                        for (int b = 0; b < c.batch(); b++) {
                            for (int r = 0; r < rows; r++) w[b * outStride + r] = SILU.combine(w[b * outStride + r], up[b * outStride + r]);
                        }
                    }
                    for (int b = 0; b < c.batch(); b++) System.arraycopy(w, b * outStride, want, outOffs[i] + b * outStride, rows);
                }
                assertSameBits(want, out, where, "its own matMul");
            }
        });
    }

    /** Bound to batch invariance (a step of several sequences), the same tiled set gives every vector its matVec's bits. */
    @ParameterizedTest
    @EnumSource(value = MatVecSetTest.Mode.class, names = {"EXACT", "INT8"})
    void underBatchInvarianceEveryVectorIsItsMatVec(MatVecSetTest.Mode mode) {
        Setup setup = new Setup();
        Case[] cases = setup.cases;
        mode.run(() -> {
            for (Parallel pool : new Parallel[] {pool2, null}) {
                String where = mode + " under batch invariance on " + (pool == null ? "no pool" : pool.threads() + " threads");
                int[] outOffs = setup.outOffsets();
                float[][] got = new float[1][];
                Kernels.withBatchInvariance(true, () -> got[0] = setup.runTiledSet(pool));
                float[] want = new float[got[0].length];
                Arrays.fill(want, Float.NaN);
                for (int i = 0; i < cases.length; i++) {
                    Case c = cases[i];
                    for (int b = 0; b < c.batch(); b++) {
                        int xOff = (c.xOff() + b) * setup.stride, o = outOffs[i] + b * (c.w().rows() + 2);
                        if (c.u() == null) Kernels.matVec(pool, c.w(), setup.x, xOff, want, o);
                        else Kernels.gatedMatVec(pool, c.w(), c.u(), SILU, setup.x, xOff, want, o);
                    }
                }
                assertSameBits(want, got[0], where, "matVec alone");
            }
        });
    }
}
