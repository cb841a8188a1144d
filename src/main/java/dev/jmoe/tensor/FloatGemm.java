package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Float micro-kernels for a tile of decoded weight rows against a batch of activation vectors. */
final class FloatGemm {
    private FloatGemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    // ---- panels: 16 rows stored column by column ------------------------------------------------------------

    /**
     * out[b·outStride + row0 + r] (+)= Σ_k p[16·k + r]·x[b·xStride + xOff + k] for r &lt; 16, k &lt; kn, b &lt; batch; with
     * {@code accumulate} the sums are added to what out holds (the panel continues an earlier one's columns).
     *
     * <p>Why a panel: with 16 rows' weights of one column in two vectors, each column costs two loads and one
     * broadcast per token, and six tokens give twelve independent FMAs: the accumulators stay in registers and the
     * FMA units stay busy. A row-by-row tile (a load per FMA and a reduction per row and token) measured 54 against
     * 93 GFLOP/s for this form on a 16-row × 1024-column block with 24 tokens.
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

    // ---- row tiles against transposed tokens: weights broadcast, tokens in lanes -------------------------------

    /** Tokens side by side in a transposed batch: one vector for up to 8 tokens, else two (16). */
    static int tokenWidth(int batch) {
        return batch <= 8 ? 8 : 16;
    }

    /** Floats {@link #transpose} writes for {@code batch} vectors of {@code cols} values. */
    static int transposedLength(int batch, int cols) {
        int w = tokenWidth(batch);
        return (batch + w - 1) / w * w * cols;
    }

    /**
     * xt[(blk·cols + k)·W + j] = x[xOff + (blk·W + j)·xStride + k] for W = {@link #tokenWidth}(batch): the batch cut into blocks of W
     * tokens, each block stored column by column, zero past the last token.
     */
    static void transpose(float[] x, int xOff, int xStride, int batch, int cols, float[] xt) {
        int w = tokenWidth(batch), blocks = (batch + w - 1) / w;
        for (int blk = 0; blk < blocks; blk++) {
            int base = blk * cols * w;
            for (int j = 0; j < w; j++) {
                int b = blk * w + j;
                if (b < batch) {
                    int xo = xOff + b * xStride;
                    for (int k = 0; k < cols; k++) xt[base + k * w + j] = x[xo + k];
                } else {
                    for (int k = 0; k < cols; k++) xt[base + k * w + j] = 0f;
                }
            }
        }
    }

    /**
     * out[outOff + b·outStride + row0 + i] = Σ_k w[i·cols + k]·x_b[k] for i &lt; nr and b &lt; batch, with w holding nr decoded rows
     * and xt the batch {@link #transpose transposed}. buf is scratch of at least 12·16 floats.
     *
     * <p>Why tokens in lanes: the rows decode in their own (row-major) order, so nothing has to be transposed per
     * weight; each weight is one broadcast load for W tokens, and a tile of 12 rows × 8 tokens (or 6 × 16) gives twelve
     * independent FMA chains per column. Every lane sums its token's products column by column in order, so a token's
     * result does not depend on the batch around it.
     */
    static void rowTile(float[] w, int nr, int cols, float[] xt, int batch, float[] out, int outOff, int outStride, int row0, float[] buf) {
        int width = tokenWidth(batch), blocks = (batch + width - 1) / width;
        for (int blk = 0; blk < blocks; blk++) {
            int x0 = blk * cols * width, b0 = blk * width, tn = Math.min(width, batch - b0);
            int i = 0;
            if (width == 8) {
                for (; i + 12 <= nr; i += 12) {
                    rows12x8(w, i * cols, cols, xt, x0, buf);
                    scatter(buf, 12, 8, tn, out, outOff, outStride, b0, row0 + i);
                }
                for (; i + 4 <= nr; i += 4) {
                    rows4x8(w, i * cols, cols, xt, x0, buf);
                    scatter(buf, 4, 8, tn, out, outOff, outStride, b0, row0 + i);
                }
                for (; i < nr; i++) {
                    rows1x8(w, i * cols, cols, xt, x0, buf);
                    scatter(buf, 1, 8, tn, out, outOff, outStride, b0, row0 + i);
                }
            } else {
                for (; i + 6 <= nr; i += 6) {
                    rows6x16(w, i * cols, cols, xt, x0, buf);
                    scatter(buf, 6, 16, tn, out, outOff, outStride, b0, row0 + i);
                }
                for (; i < nr; i++) {
                    rows1x16(w, i * cols, cols, xt, x0, buf);
                    scatter(buf, 1, 16, tn, out, outOff, outStride, b0, row0 + i);
                }
            }
        }
    }

    /** Rows of buf (nr rows of {@code width} token lanes) into out, tokens b0 .. b0 + tn. */
    private static void scatter(float[] buf, int nr, int width, int tn, float[] out, int outOff, int outStride, int b0, int row) {
        for (int j = 0; j < tn; j++) {
            int o = outOff + (b0 + j) * outStride + row;
            for (int i = 0; i < nr; i++) out[o + i] = buf[i * width + j];
        }
    }

    /** Twelve rows × eight tokens: twelve accumulators, one token vector and a broadcast per row and column. */
    private static void rows12x8(float[] w, int w0, int cols, float[] xt, int x0, float[] buf) {
        int w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols, w4 = w3 + cols, w5 = w4 + cols;
        int w6 = w5 + cols, w7 = w6 + cols, w8 = w7 + cols, w9 = w8 + cols, w10 = w9 + cols, w11 = w10 + cols;
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int k = 0; k < cols; k++) {
            FloatVector v = FloatVector.fromArray(F, xt, x0 + 8 * k);
            c0 = FloatVector.broadcast(F, w[w0 + k]).fma(v, c0);
            c1 = FloatVector.broadcast(F, w[w1 + k]).fma(v, c1);
            c2 = FloatVector.broadcast(F, w[w2 + k]).fma(v, c2);
            c3 = FloatVector.broadcast(F, w[w3 + k]).fma(v, c3);
            c4 = FloatVector.broadcast(F, w[w4 + k]).fma(v, c4);
            c5 = FloatVector.broadcast(F, w[w5 + k]).fma(v, c5);
            c6 = FloatVector.broadcast(F, w[w6 + k]).fma(v, c6);
            c7 = FloatVector.broadcast(F, w[w7 + k]).fma(v, c7);
            c8 = FloatVector.broadcast(F, w[w8 + k]).fma(v, c8);
            c9 = FloatVector.broadcast(F, w[w9 + k]).fma(v, c9);
            c10 = FloatVector.broadcast(F, w[w10 + k]).fma(v, c10);
            c11 = FloatVector.broadcast(F, w[w11 + k]).fma(v, c11);
        }
        c0.intoArray(buf, 0);
        c1.intoArray(buf, 8);
        c2.intoArray(buf, 16);
        c3.intoArray(buf, 24);
        c4.intoArray(buf, 32);
        c5.intoArray(buf, 40);
        c6.intoArray(buf, 48);
        c7.intoArray(buf, 56);
        c8.intoArray(buf, 64);
        c9.intoArray(buf, 72);
        c10.intoArray(buf, 80);
        c11.intoArray(buf, 88);
    }

    /** Four rows × eight tokens (what twelve at a time leave). */
    private static void rows4x8(float[] w, int w0, int cols, float[] xt, int x0, float[] buf) {
        int w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
        FloatVector c0 = FloatVector.zero(F), c1 = c0, c2 = c0, c3 = c0;
        for (int k = 0; k < cols; k++) {
            FloatVector v = FloatVector.fromArray(F, xt, x0 + 8 * k);
            c0 = FloatVector.broadcast(F, w[w0 + k]).fma(v, c0);
            c1 = FloatVector.broadcast(F, w[w1 + k]).fma(v, c1);
            c2 = FloatVector.broadcast(F, w[w2 + k]).fma(v, c2);
            c3 = FloatVector.broadcast(F, w[w3 + k]).fma(v, c3);
        }
        c0.intoArray(buf, 0);
        c1.intoArray(buf, 8);
        c2.intoArray(buf, 16);
        c3.intoArray(buf, 24);
    }

    private static void rows1x8(float[] w, int w0, int cols, float[] xt, int x0, float[] buf) {
        FloatVector c0 = FloatVector.zero(F);
        for (int k = 0; k < cols; k++) c0 = FloatVector.broadcast(F, w[w0 + k]).fma(FloatVector.fromArray(F, xt, x0 + 8 * k), c0);
        c0.intoArray(buf, 0);
    }

    /** Six rows × sixteen tokens: twelve accumulators, two token vectors and a broadcast per row and column. */
    private static void rows6x16(float[] w, int w0, int cols, float[] xt, int x0, float[] buf) {
        int w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols, w4 = w3 + cols, w5 = w4 + cols;
        FloatVector c00 = FloatVector.zero(F), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int k = 0; k < cols; k++) {
            FloatVector u = FloatVector.fromArray(F, xt, x0 + 16 * k), v = FloatVector.fromArray(F, xt, x0 + 16 * k + 8);
            FloatVector t = FloatVector.broadcast(F, w[w0 + k]);
            c00 = t.fma(u, c00);
            c01 = t.fma(v, c01);
            t = FloatVector.broadcast(F, w[w1 + k]);
            c10 = t.fma(u, c10);
            c11 = t.fma(v, c11);
            t = FloatVector.broadcast(F, w[w2 + k]);
            c20 = t.fma(u, c20);
            c21 = t.fma(v, c21);
            t = FloatVector.broadcast(F, w[w3 + k]);
            c30 = t.fma(u, c30);
            c31 = t.fma(v, c31);
            t = FloatVector.broadcast(F, w[w4 + k]);
            c40 = t.fma(u, c40);
            c41 = t.fma(v, c41);
            t = FloatVector.broadcast(F, w[w5 + k]);
            c50 = t.fma(u, c50);
            c51 = t.fma(v, c51);
        }
        c00.intoArray(buf, 0);
        c01.intoArray(buf, 8);
        c10.intoArray(buf, 16);
        c11.intoArray(buf, 24);
        c20.intoArray(buf, 32);
        c21.intoArray(buf, 40);
        c30.intoArray(buf, 48);
        c31.intoArray(buf, 56);
        c40.intoArray(buf, 64);
        c41.intoArray(buf, 72);
        c50.intoArray(buf, 80);
        c51.intoArray(buf, 88);
    }

    private static void rows1x16(float[] w, int w0, int cols, float[] xt, int x0, float[] buf) {
        FloatVector c0 = FloatVector.zero(F), c1 = c0;
        for (int k = 0; k < cols; k++) {
            FloatVector t = FloatVector.broadcast(F, w[w0 + k]);
            c0 = t.fma(FloatVector.fromArray(F, xt, x0 + 16 * k), c0);
            c1 = t.fma(FloatVector.fromArray(F, xt, x0 + 16 * k + 8), c1);
        }
        c0.intoArray(buf, 0);
        c1.intoArray(buf, 8);
    }
}
