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
}
