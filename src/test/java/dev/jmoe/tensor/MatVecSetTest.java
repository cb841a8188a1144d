package dev.jmoe.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A set of products in one dispatch gives, product by product, exactly what the single-product calls give. */
class MatVecSetTest {
    private static final Kernels.Gate SILU = (g, u) -> g / (1f + (float) Math.exp(-g)) * u;
    private static final Parallel pool1 = new Parallel(1), pool2 = new Parallel(2); // daemon workers: no teardown

    /** The arithmetic a product runs with: exact vector kernels, llama.cpp's 8-bit activations, or the scalar reference. */
    enum Mode {
        EXACT, INT8, SCALAR;

        /** Runs {@code body} with this mode's settings bound on the calling thread (the one that starts the products). */
        void run(Runnable body) {
            Kernels.withActivationQuantization(this == INT8, () -> Kernels.withScalarReference(this == SCALAR, () -> {
                body.run();
                return null;
            }));
        }
    }

    private static Matrix random(GgmlType type, int rows, int cols, Random rnd, boolean pack) {
        float[] src = TypeKernelTest.gaussian(rnd, rows * cols, 0.05f);
        Matrix m = new Matrix(type, TypeKernelTest.quantize(type, src, rows, cols), rows, cols);
        return pack ? Packing.packed(m) : m;
    }

    /**
     * Mixed types and layouts as a Q4_0 or Q4_K_M decode step has them: a packed q with Q8_0 k and v on one vector,
     * two packed gated experts on another, and Q6_K / unpacked down products with their own inputs. Row counts that
     * are odd multiples of 16 and not multiples of 16 check the unit bookkeeping; each set holds more than the 48 KiB
     * of weights below which a product stays on one thread, so on the 2-thread pool chunks cut across products.
     */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void everyProductEqualsItsSingleCall(Mode mode) {
        mode.run(() -> {
            Random rnd = new Random(11);
            int cols = 1024, ff = 112;
            Matrix q = random(GgmlType.Q4_0, 80, cols, rnd, true);
            Matrix k = random(GgmlType.Q8_0, 48, cols, rnd, false);
            Matrix v = random(GgmlType.Q8_0, 40, cols, rnd, false);
            Matrix g1 = random(GgmlType.Q4_K, ff, cols, rnd, true), u1 = random(GgmlType.Q4_K, ff, cols, rnd, true);
            Matrix g2 = random(GgmlType.Q4_0, ff, cols, rnd, false), u2 = random(GgmlType.Q4_0, ff, cols, rnd, false);
            Matrix d1 = random(GgmlType.Q6_K, 72, 1024, rnd, false), d2 = random(GgmlType.Q4_0, 80, 1024, rnd, true);
            Matrix d3 = random(GgmlType.Q6_K, 48, 1024, rnd, true);
            assertNotNull(d3.packed());
            float[] x = TypeKernelTest.gaussian(rnd, cols + 5, 1f), y = TypeKernelTest.gaussian(rnd, 2048, 1f);
            for (Parallel pool : new Parallel[] {pool1, pool2, null}) {
                String where = mode + " on " + (pool == null ? "no pool" : pool.threads() + " threads");
                float[] qkv = new float[200], gated = new float[2 * ff], down = new float[200];
                Arrays.fill(qkv, Float.NaN);
                MatVecSet.begin().add(q, x, 5, qkv, 0).add(k, x, 5, qkv, 80).add(v, x, 5, qkv, 128).run(pool);
                MatVecSet.begin().addGated(g1, u1, SILU, x, 3, gated, 0).addGated(g2, u2, SILU, x, 3, gated, ff).run(pool);
                MatVecSet.begin().add(d1, y, 0, down, 0).add(d2, y, 1024, down, 72).add(d3, y, 1024, down, 152).run(pool);

                float[] want = new float[200];
                Arrays.fill(want, Float.NaN);
                Kernels.matVec(pool, q, x, 5, want, 0);
                Kernels.matVec(pool, k, x, 5, want, 80);
                Kernels.matVec(pool, v, x, 5, want, 128);
                assertArrayEquals(want, qkv, where + ": q, k and v bit for bit, nothing written past them");
                float[] wantGated = new float[2 * ff];
                Kernels.gatedMatVec(pool, g1, u1, SILU, x, 3, wantGated, 0);
                Kernels.gatedMatVec(pool, g2, u2, SILU, x, 3, wantGated, ff);
                assertArrayEquals(wantGated, gated, where + ": gated experts bit for bit");
                float[] wantDown = new float[200];
                Kernels.matVec(pool, d1, y, 0, wantDown, 0);
                Kernels.matVec(pool, d2, y, 1024, wantDown, 72);
                Kernels.matVec(pool, d3, y, 1024, wantDown, 152);
                assertArrayEquals(wantDown, down, where + ": down products bit for bit");
                assertTrue(Math.abs(down[0]) > 0 && Math.abs(gated[ff]) > 0, "the products are not trivially zero");
            }
        });
    }

    /**
     * Gated outputs laid out for their down projections while they are computed give the down products they would
     * give laid out afterwards: Q4_K (Q8_K rounding in whole 256-value blocks at 8 bits), Q4_0 and Q6_K (16 bits only)
     * downs on packed copies, a Q6_K down that takes its input the plain way, and a packed Q8_0 down (floats, or at 8 bits
     * Q8_0-rounded integers as floats), whose products also equal the file rows' bit for bit.
     */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void outputsLaidOutForTheNextSetGiveTheSameProducts(Mode mode) {
        mode.run(() -> {
            Random rnd = new Random(17);
            int cols = 1024, ff = 512;
            Matrix[] gates = {random(GgmlType.Q4_K, ff, cols, rnd, true), random(GgmlType.Q4_0, ff, cols, rnd, true), random(GgmlType.Q4_0, ff, cols, rnd, false),
                    random(GgmlType.Q4_K, ff, cols, rnd, true), random(GgmlType.Q8_0, ff, cols, rnd, true)};
            Matrix[] ups = {random(GgmlType.Q4_K, ff, cols, rnd, true), random(GgmlType.Q4_0, ff, cols, rnd, true), random(GgmlType.Q4_0, ff, cols, rnd, false),
                    random(GgmlType.Q4_K, ff, cols, rnd, true), random(GgmlType.Q8_0, ff, cols, rnd, true)};
            Matrix[] downs = {random(GgmlType.Q4_K, 96, ff, rnd, true), random(GgmlType.Q4_0, 80, ff, rnd, true), random(GgmlType.Q6_K, 64, ff, rnd, false),
                    random(GgmlType.Q6_K, 48, ff, rnd, true), random(GgmlType.Q8_0, 32, ff, rnd, true)};
            assertNotNull(downs[4].packed());
            float[] x = TypeKernelTest.gaussian(rnd, cols, 1f);
            for (Parallel pool : new Parallel[] {pool1, pool2, null}) {
                String where = mode + " on " + (pool == null ? "no pool" : pool.threads() + " threads");
                float[] g = new float[5 * ff], down = new float[320];
                MatVecSet gated = MatVecSet.begin();
                for (int i = 0; i < 5; i++) gated.addGated(gates[i], ups[i], SILU, x, 0, g, i * ff).thenInputOf(downs[i]);
                gated.run(pool);
                MatVecSet.begin().add(downs[0], g, 0, down, 0).add(downs[1], g, ff, down, 96).add(downs[2], g, 2 * ff, down, 176)
                        .add(downs[3], g, 3 * ff, down, 240).add(downs[4], g, 4 * ff, down, 288).run(pool);

                float[] wantG = new float[5 * ff], wantDown = new float[320];
                for (int i = 0; i < 5; i++) Kernels.gatedMatVec(pool, gates[i], ups[i], SILU, x, 0, wantG, i * ff);
                assertArrayEquals(wantG, g, where + ": gated outputs");
                Kernels.matVec(pool, downs[0], wantG, 0, wantDown, 0);
                Kernels.matVec(pool, downs[1], wantG, ff, wantDown, 96);
                Kernels.matVec(pool, downs[2], wantG, 2 * ff, wantDown, 176);
                Kernels.matVec(pool, downs[3], wantG, 3 * ff, wantDown, 240);
                Kernels.matVec(pool, downs[4], wantG, 4 * ff, wantDown, 288);
                assertArrayEquals(wantDown, down, where + ": down products bit for bit");
                float[] rows = new float[32];
                Kernels.matVec(pool, downs[4].withPacked(null), wantG, 4 * ff, rows, 0);
                assertArrayEquals(rows, Arrays.copyOfRange(down, 288, 320), where + ": the packed Q8_0 down as the file's rows");
            }
        });
    }

    @Test
    void aLaidOutOutputServesOnlyTheSetRightAfter() {
        Random rnd = new Random(19);
        Matrix gate = random(GgmlType.Q4_0, 256, 512, rnd, true), up = random(GgmlType.Q4_0, 256, 512, rnd, true);
        Matrix down = random(GgmlType.Q4_0, 64, 256, rnd, true), other = random(GgmlType.Q8_0, 64, 512, rnd, false);
        float[] x = TypeKernelTest.gaussian(rnd, 512, 1f), g = new float[256], out = new float[64], scratch = new float[64];
        MatVecSet.begin().addGated(gate, up, SILU, x, 0, g, 0).thenInputOf(down).run(pool2);
        MatVecSet.begin().add(other, x, 0, scratch, 0).run(pool2); // a set in between
        for (int i = 0; i < g.length; i++) g[i] *= -2f; // the output changes after that set
        MatVecSet.begin().add(down, g, 0, out, 0).run(pool2);
        float[] want = new float[64];
        Kernels.matVec(pool2, down, g, 0, want, 0);
        assertArrayEquals(want, out, "the changed vector is laid out afresh, not taken from two sets ago");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MatVecSet.begin().addGated(gate, up, SILU, x, 0, g, 0).thenInputOf(other));
        assertTrue(e.getMessage().contains("64x512") && e.getMessage().contains("256 outputs"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> MatVecSet.begin().thenInputOf(down));
    }

    @Test
    void aSetIsEmptiedByBeginAndReusedWithOtherShapes() {
        Random rnd = new Random(5);
        Matrix big = random(GgmlType.Q4_0, 64, 512, rnd, true), small = random(GgmlType.Q8_0, 32, 256, rnd, false);
        float[] x = TypeKernelTest.gaussian(rnd, 512, 1f), out = new float[64], want = new float[64];
        MatVecSet.begin().add(big, x, 0, out, 0).run(pool2);
        Kernels.matVec(pool2, big, x, 0, want, 0);
        assertArrayEquals(want, out);
        float[] out2 = new float[64], want2 = new float[64];
        MatVecSet.begin().add(small, x, 100, out2, 0).run(pool2);
        Kernels.matVec(pool2, small, x, 100, want2, 0);
        assertArrayEquals(want2, out2, "the earlier product is not run again and the new input is prepared afresh");
        MatVecSet.begin().run(pool2); // an empty set is a no-op
    }

    @Test
    void badProductsAreRejectedWhenAdded() {
        Random rnd = new Random(2);
        Matrix g = random(GgmlType.Q8_0, 64, 256, rnd, false), u = random(GgmlType.Q8_0, 32, 256, rnd, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MatVecSet.begin().addGated(g, u, SILU, new float[256], 0, new float[64], 0));
        assertTrue(e.getMessage().contains("64x256") && e.getMessage().contains("32x256"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MatVecSet.begin().add(g, new float[200], 0, new float[64], 0));
        assertTrue(e.getMessage().contains("x needs 256"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MatVecSet.begin().add(g, new float[256], 0, new float[64], 1));
        assertTrue(e.getMessage().contains("out needs 64"), e.getMessage());
    }
}
