package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Float micro-kernels for a tile of decoded weight rows against a batch of activation vectors. */
final class FloatGemm {
    private FloatGemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    /**
     * out[b·outStride + row0 + i] = w[i]·x[b·xStride ..] for i &lt; nr, b &lt; batch, where w holds nr
     * decoded rows of {@code cols} floats. Works on 2 rows × 4 vectors at a time so each loaded weight
     * vector feeds four FMAs and each activation vector two.
     */
    static void tile(float[] w, int nr, int cols, float[] x, int xStride, int batch, float[] out, int outStride, int row0) {
        int vecCols = cols & ~7;
        int i = 0;
        for (; i + 2 <= nr; i += 2) {
            int w0 = i * cols, w1 = w0 + cols;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                int x0 = b * xStride, x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
                FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
                FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
                for (int c = 0; c < vecCols; c += 8) {
                    FloatVector r0 = FloatVector.fromArray(F, w, w0 + c);
                    FloatVector r1 = FloatVector.fromArray(F, w, w1 + c);
                    FloatVector v = FloatVector.fromArray(F, x, x0 + c);
                    a00 = r0.fma(v, a00);
                    a10 = r1.fma(v, a10);
                    v = FloatVector.fromArray(F, x, x1 + c);
                    a01 = r0.fma(v, a01);
                    a11 = r1.fma(v, a11);
                    v = FloatVector.fromArray(F, x, x2 + c);
                    a02 = r0.fma(v, a02);
                    a12 = r1.fma(v, a12);
                    v = FloatVector.fromArray(F, x, x3 + c);
                    a03 = r0.fma(v, a03);
                    a13 = r1.fma(v, a13);
                }
                float s00 = Lanes.sum(a00), s01 = Lanes.sum(a01);
                float s02 = Lanes.sum(a02), s03 = Lanes.sum(a03);
                float s10 = Lanes.sum(a10), s11 = Lanes.sum(a11);
                float s12 = Lanes.sum(a12), s13 = Lanes.sum(a13);
                for (int c = vecCols; c < cols; c++) {
                    s00 += w[w0 + c] * x[x0 + c];
                    s01 += w[w0 + c] * x[x1 + c];
                    s02 += w[w0 + c] * x[x2 + c];
                    s03 += w[w0 + c] * x[x3 + c];
                    s10 += w[w1 + c] * x[x0 + c];
                    s11 += w[w1 + c] * x[x1 + c];
                    s12 += w[w1 + c] * x[x2 + c];
                    s13 += w[w1 + c] * x[x3 + c];
                }
                int o = b * outStride + row0 + i;
                out[o] = s00;
                out[o + 1] = s10;
                out[o + outStride] = s01;
                out[o + outStride + 1] = s11;
                out[o + 2 * outStride] = s02;
                out[o + 2 * outStride + 1] = s12;
                out[o + 3 * outStride] = s03;
                out[o + 3 * outStride + 1] = s13;
            }
            for (; b + 2 <= batch; b += 2) pair2x2(w, w0, w1, cols, x, b * xStride, (b + 1) * xStride, out, b * outStride + row0 + i, outStride);
            for (; b < batch; b++) pair2x1(w, w0, w1, cols, x, b * xStride, out, b * outStride + row0 + i);
        }
        for (; i < nr; i++) {
            for (int b = 0; b < batch; b++) {
                out[b * outStride + row0 + i] = F32Kernel.dotArrays(w, i * cols, x, b * xStride, cols);
            }
        }
    }

    /** Two rows × two vectors (the remainder of a 4-vector sweep). */
    private static void pair2x2(float[] w, int w0, int w1, int cols, float[] x, int x0, int x1, float[] out, int o, int outStride) {
        int vecCols = cols & ~7;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        for (int c = 0; c < vecCols; c += 8) {
            FloatVector r0 = FloatVector.fromArray(F, w, w0 + c);
            FloatVector r1 = FloatVector.fromArray(F, w, w1 + c);
            FloatVector v = FloatVector.fromArray(F, x, x0 + c);
            a00 = r0.fma(v, a00);
            a10 = r1.fma(v, a10);
            v = FloatVector.fromArray(F, x, x1 + c);
            a01 = r0.fma(v, a01);
            a11 = r1.fma(v, a11);
        }
        float s00 = Lanes.sum(a00), s01 = Lanes.sum(a01);
        float s10 = Lanes.sum(a10), s11 = Lanes.sum(a11);
        for (int c = vecCols; c < cols; c++) {
            s00 += w[w0 + c] * x[x0 + c];
            s01 += w[w0 + c] * x[x1 + c];
            s10 += w[w1 + c] * x[x0 + c];
            s11 += w[w1 + c] * x[x1 + c];
        }
        out[o] = s00;
        out[o + 1] = s10;
        out[o + outStride] = s01;
        out[o + outStride + 1] = s11;
    }

    /** Two rows × one vector, with two accumulators per row to hide FMA latency. */
    private static void pair2x1(float[] w, int w0, int w1, int cols, float[] x, int x0, float[] out, int o) {
        int vecCols = cols & ~15;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0;
        for (int c = 0; c < vecCols; c += 16) {
            FloatVector v = FloatVector.fromArray(F, x, x0 + c), u = FloatVector.fromArray(F, x, x0 + c + 8);
            a0 = FloatVector.fromArray(F, w, w0 + c).fma(v, a0);
            b0 = FloatVector.fromArray(F, w, w1 + c).fma(v, b0);
            a1 = FloatVector.fromArray(F, w, w0 + c + 8).fma(u, a1);
            b1 = FloatVector.fromArray(F, w, w1 + c + 8).fma(u, b1);
        }
        float s0 = Lanes.sum(a0.add(a1)), s1 = Lanes.sum(b0.add(b1));
        for (int c = vecCols; c < cols; c++) {
            s0 += w[w0 + c] * x[x0 + c];
            s1 += w[w1 + c] * x[x0 + c];
        }
        out[o] = s0;
        out[o + 1] = s1;
    }

    // ---- panels: 16 rows stored column by column ------------------------------------------------------------

    /**
     * out[b·outStride + row0 + r] (+)= Σ_k p[16·k + r]·x[b·xStride + xOff + k] for r &lt; 16, k &lt; kn, b &lt; batch; with
     * {@code accumulate} the sums are added to what out holds (the panel continues an earlier one's columns).
     *
     * <p>Why a panel: with 16 rows' weights of one column in two vectors, each column costs two loads and one
     * broadcast per token, and six tokens give twelve independent FMAs: the accumulators stay in registers and the
     * FMA units stay busy. The row-by-row tile above needs a load per FMA and a reduction per row and token; on a
     * 16-row × 1024-column block with 24 tokens it measured 54 against 93 GFLOP/s for this form.
     */
    static void panel16(float[] p, int kn, float[] x, int xOff, int xStride, int batch, float[] out, int outStride, int row0,
                        boolean accumulate) {
        int b = 0;
        for (; b + 6 <= batch; b += 6) panel16x6(p, kn, x, b * xStride + xOff, xStride, out, b * outStride + row0, outStride, accumulate);
        for (; b + 2 <= batch; b += 2) panel16x2(p, kn, x, b * xStride + xOff, xStride, out, b * outStride + row0, outStride, accumulate);
        if (b < batch) panel16x1(p, kn, x, b * xStride + xOff, out, b * outStride + row0, accumulate);
    }

    private static FloatVector start(float[] out, int o, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(F, out, o) : FloatVector.zero(F);
    }

    /** Six tokens: twelve accumulators, two panel vectors and a broadcast fill the sixteen registers. */
    private static void panel16x6(float[] p, int kn, float[] x, int x0, int xStride, float[] out, int o, int outStride, boolean accumulate) {
        int x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride, x4 = x3 + xStride, x5 = x4 + xStride;
        int o1 = o + outStride, o2 = o1 + outStride, o3 = o2 + outStride, o4 = o3 + outStride, o5 = o4 + outStride;
        FloatVector c00 = start(out, o, accumulate), c01 = start(out, o + 8, accumulate);
        FloatVector c10 = start(out, o1, accumulate), c11 = start(out, o1 + 8, accumulate);
        FloatVector c20 = start(out, o2, accumulate), c21 = start(out, o2 + 8, accumulate);
        FloatVector c30 = start(out, o3, accumulate), c31 = start(out, o3 + 8, accumulate);
        FloatVector c40 = start(out, o4, accumulate), c41 = start(out, o4 + 8, accumulate);
        FloatVector c50 = start(out, o5, accumulate), c51 = start(out, o5 + 8, accumulate);
        for (int k = 0; k < kn; k++) {
            FloatVector r0 = FloatVector.fromArray(F, p, 16 * k), r1 = FloatVector.fromArray(F, p, 16 * k + 8);
            FloatVector t = FloatVector.broadcast(F, x[x0 + k]);
            c00 = r0.fma(t, c00);
            c01 = r1.fma(t, c01);
            t = FloatVector.broadcast(F, x[x1 + k]);
            c10 = r0.fma(t, c10);
            c11 = r1.fma(t, c11);
            t = FloatVector.broadcast(F, x[x2 + k]);
            c20 = r0.fma(t, c20);
            c21 = r1.fma(t, c21);
            t = FloatVector.broadcast(F, x[x3 + k]);
            c30 = r0.fma(t, c30);
            c31 = r1.fma(t, c31);
            t = FloatVector.broadcast(F, x[x4 + k]);
            c40 = r0.fma(t, c40);
            c41 = r1.fma(t, c41);
            t = FloatVector.broadcast(F, x[x5 + k]);
            c50 = r0.fma(t, c50);
            c51 = r1.fma(t, c51);
        }
        c00.intoArray(out, o);
        c01.intoArray(out, o + 8);
        c10.intoArray(out, o1);
        c11.intoArray(out, o1 + 8);
        c20.intoArray(out, o2);
        c21.intoArray(out, o2 + 8);
        c30.intoArray(out, o3);
        c31.intoArray(out, o3 + 8);
        c40.intoArray(out, o4);
        c41.intoArray(out, o4 + 8);
        c50.intoArray(out, o5);
        c51.intoArray(out, o5 + 8);
    }

    /** Two tokens (of what six at a time leave). */
    private static void panel16x2(float[] p, int kn, float[] x, int x0, int xStride, float[] out, int o, int outStride, boolean accumulate) {
        int x1 = x0 + xStride, o1 = o + outStride;
        FloatVector c00 = start(out, o, accumulate), c01 = start(out, o + 8, accumulate);
        FloatVector c10 = start(out, o1, accumulate), c11 = start(out, o1 + 8, accumulate);
        for (int k = 0; k < kn; k++) {
            FloatVector r0 = FloatVector.fromArray(F, p, 16 * k), r1 = FloatVector.fromArray(F, p, 16 * k + 8);
            FloatVector t = FloatVector.broadcast(F, x[x0 + k]);
            c00 = r0.fma(t, c00);
            c01 = r1.fma(t, c01);
            t = FloatVector.broadcast(F, x[x1 + k]);
            c10 = r0.fma(t, c10);
            c11 = r1.fma(t, c11);
        }
        c00.intoArray(out, o);
        c01.intoArray(out, o + 8);
        c10.intoArray(out, o1);
        c11.intoArray(out, o1 + 8);
    }

    /** The last token of an odd batch. */
    private static void panel16x1(float[] p, int kn, float[] x, int x0, float[] out, int o, boolean accumulate) {
        FloatVector c0 = start(out, o, accumulate), c1 = start(out, o + 8, accumulate);
        for (int k = 0; k < kn; k++) {
            FloatVector t = FloatVector.broadcast(F, x[x0 + k]);
            c0 = FloatVector.fromArray(F, p, 16 * k).fma(t, c0);
            c1 = FloatVector.fromArray(F, p, 16 * k + 8).fma(t, c1);
        }
        c0.intoArray(out, o);
        c1.intoArray(out, o + 8);
    }
}
