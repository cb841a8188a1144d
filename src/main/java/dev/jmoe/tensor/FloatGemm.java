package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Float micro-kernels for a tile of decoded weight rows against a batch of activation vectors. */
final class FloatGemm {
    private FloatGemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    // ---- panels: 16 rows stored column by column, against tokens at their stride or interleaved ---------------

    /**
     * out[b·outStride + row0 + r] (+)= Σ_k p[16·k + r]·x[b·xStride + xOff + k] for r &lt; 16, k &lt; kn, b &lt; batch; with
     * {@code accumulate} the sums are added to what out holds (the panel continues an earlier one's columns). The tokens
     * after the first {@link #strideTokens} are read from xt, where {@link #interleaveTail} put them side by side (xt
     * holds {@code cols} columns; this panel's start at column c0). Each output is one FMA chain over k in column order,
     * whatever the tile around it: every batch split gives the same bits.
     *
     * <p>Why a panel: with 16 rows' weights of one column in two vectors, each column costs two loads and one
     * broadcast per token, and six tokens give twelve independent FMAs: the accumulators stay in registers and the
     * FMA units stay busy. A row-by-row tile (a load per FMA and a reduction per row and token) measured 54 against
     * 93 GFLOP/s for this form on a 16-row × 1024-column block with 24 tokens.
     */
    static void panel16(float[] p, int kn, float[] x, int xOff, int xStride, float[] xt, int c0, int cols, int batch, float[] out,
                        int outStride, int row0, boolean accumulate) {
        int s = strideTokens(batch), b = 0;
        for (; b < s; b += 6) panel16x6(p, kn, x, b * xStride + xOff, xStride, Math.min(6, batch - b), out, b * outStride + row0, outStride, accumulate);
        for (int t = 0; b < batch; b += 4, t += 4) {
            panel16x4i(p, kn, xt, t * cols + 4 * c0, Math.min(4, batch - b), out, b * outStride + row0, outStride, accumulate);
        }
    }

    /**
     * {@link #panel16} for one panel on its own, the tail interleaved here (allocates; for tests and one-off callers: a
     * product interleaves once for all of its panels).
     */
    static void panel16(float[] p, int kn, float[] x, int xOff, int xStride, int batch, float[] out, int outStride, int row0,
                        boolean accumulate) {
        float[] xt = new float[interleavedLength(batch, kn)];
        interleaveTail(x, xOff, xStride, batch, kn, xt);
        panel16(p, kn, x, xOff, xStride, xt, 0, kn, batch, out, outStride, row0, accumulate);
    }

    /**
     * Tokens of a batch that {@link #panel16} reads at their stride, six at a time (the last six-token tile may hold 5 real
     * ones, the sixth repeating the fifth); the 0–4, 7 or 8 after them go through four-token tiles of interleaved tokens.
     *
     * <p>Why: one thread, 768 × 1024 Q4_0, 16 × 512 panels (AMD EPYC, Zen 4 class), cycles per panel column: six tokens
     * at their stride 6.5–6.9 (12 FMAs: near the two FMA units' 6), four at their stride 6.8–7.0 and two ~4 (the
     * remainder forms used before), four interleaved 4.7–5.1; eight interleaved 9.4–9.9 and six interleaved 7.5–7.8,
     * so only the remainder is interleaved. A remainder of 1 or 2 joins the last six: 7–8 tokens as two interleaved fours
     * (~10 cycles) instead of six and a pair (~10.7) or six and a padded four (~11.6).
     */
    static int strideTokens(int batch) {
        int sixes = batch / 6, rest = batch % 6;
        if (rest == 5) return 6 * sixes + 5;
        if ((rest == 1 || rest == 2) && sixes > 0) sixes--;
        return 6 * sixes;
    }

    /** Floats {@link #interleaveTail} writes for a batch of {@code batch} vectors of {@code cols} values. */
    static int interleavedLength(int batch, int cols) {
        int tail = batch - strideTokens(batch);
        return (tail + 3) / 4 * 4 * cols;
    }

    /**
     * The tokens of a batch after its first {@link #strideTokens}, four at a time side by side: xt[4·(t·cols + k) + j] =
     * x[xOff + (b0 + min(j, n − 1))·xStride + k] for the tile of n real tokens that starts with the tail's token t (t a
     * multiple of 4, b0 = strideTokens + t); missing tokens repeat the tile's last one.
     *
     * <p>Why: with the four tokens of a tile at their stride each broadcast needs its own index register and address
     * computation (6.8–7.0 cycles per panel column); interleaved, one index plus a constant (4.7–5.1).
     */
    static void interleaveTail(float[] x, int xOff, int xStride, int batch, int cols, float[] xt) {
        int s = strideTokens(batch);
        for (int t = 0; s + t < batch; t += 4) {
            int n = Math.min(4, batch - s - t), base = t * cols;
            int x0 = xOff + (s + t) * xStride, x1 = x0 + Math.min(1, n - 1) * xStride, x2 = x0 + Math.min(2, n - 1) * xStride;
            int x3 = x0 + Math.min(3, n - 1) * xStride;
            for (int k = 0; k < cols; k++) {
                int at = base + 4 * k;
                xt[at] = x[x0 + k];
                xt[at + 1] = x[x1 + k];
                xt[at + 2] = x[x2 + k];
                xt[at + 3] = x[x3 + k];
            }
        }
    }

    /** Offset of token t of a call's n tokens (t ≥ n repeats the last one). */
    private static int tokenAt(int first, int stride, int t, int n) {
        return first + Math.min(t, n - 1) * stride;
    }

    private static FloatVector start(float[] out, int o, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(F, out, o) : FloatVector.zero(F);
    }

    /**
     * Six tokens (n of them real, the others repeating the last): twelve accumulators, two panel vectors and a broadcast
     * fill the sixteen registers.
     */
    private static void panel16x6(float[] p, int kn, float[] x, int x0, int xStride, int n, float[] out, int o, int outStride,
                                  boolean accumulate) {
        int x1 = tokenAt(x0, xStride, 1, n), x2 = tokenAt(x0, xStride, 2, n), x3 = tokenAt(x0, xStride, 3, n);
        int x4 = tokenAt(x0, xStride, 4, n), x5 = tokenAt(x0, xStride, 5, n);
        int o1 = tokenAt(o, outStride, 1, n), o2 = tokenAt(o, outStride, 2, n), o3 = tokenAt(o, outStride, 3, n);
        int o4 = tokenAt(o, outStride, 4, n), o5 = tokenAt(o, outStride, 5, n);
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

    /** Four interleaved tokens (n of them real, the others repeating the last; {@link #interleaveTail}): eight accumulators. */
    private static void panel16x4i(float[] p, int kn, float[] xt, int x0, int n, float[] out, int o, int outStride, boolean accumulate) {
        int o1 = tokenAt(o, outStride, 1, n), o2 = tokenAt(o, outStride, 2, n), o3 = tokenAt(o, outStride, 3, n);
        FloatVector c0a = start(out, o, accumulate), c0b = start(out, o + 8, accumulate);
        FloatVector c1a = start(out, o1, accumulate), c1b = start(out, o1 + 8, accumulate);
        FloatVector c2a = start(out, o2, accumulate), c2b = start(out, o2 + 8, accumulate);
        FloatVector c3a = start(out, o3, accumulate), c3b = start(out, o3 + 8, accumulate);
        for (int k = 0; k < kn; k++) {
            FloatVector r0 = FloatVector.fromArray(F, p, 16 * k), r1 = FloatVector.fromArray(F, p, 16 * k + 8);
            int xi = x0 + 4 * k;
            FloatVector t = FloatVector.broadcast(F, xt[xi]);
            c0a = r0.fma(t, c0a);
            c0b = r1.fma(t, c0b);
            t = FloatVector.broadcast(F, xt[xi + 1]);
            c1a = r0.fma(t, c1a);
            c1b = r1.fma(t, c1b);
            t = FloatVector.broadcast(F, xt[xi + 2]);
            c2a = r0.fma(t, c2a);
            c2b = r1.fma(t, c2b);
            t = FloatVector.broadcast(F, xt[xi + 3]);
            c3a = r0.fma(t, c3a);
            c3b = r1.fma(t, c3b);
        }
        c0a.intoArray(out, o);
        c0b.intoArray(out, o + 8);
        c1a.intoArray(out, o1);
        c1b.intoArray(out, o1 + 8);
        c2a.intoArray(out, o2);
        c2b.intoArray(out, o2 + 8);
        c3a.intoArray(out, o3);
        c3b.intoArray(out, o3 + 8);
    }

    // ---- row tiles against transposed tokens: weights broadcast, tokens in lanes -------------------------------

    /** Tokens side by side in a transposed batch: one vector for up to 8 tokens, else two (16). */
    static int tokenWidth(int batch) {
        return batch <= 8 ? 8 : 16;
    }

    /** The batch rounded up to whole blocks of {@link #tokenWidth} tokens. */
    static int paddedBatch(int batch) {
        int w = tokenWidth(batch);
        return (batch + w - 1) / w * w;
    }

    /** Floats {@link #transpose} writes for {@code batch} vectors of {@code cols} values. */
    static int transposedLength(int batch, int cols) {
        return paddedBatch(batch) * cols;
    }

    /**
     * xt[(blk·cols + k)·W + j] = x[xOff + (blk·W + j)·xStride + k] for W = {@link #tokenWidth}(batch): the batch cut into blocks
     * of W tokens, each block stored column by column, zero past the last token.
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
     * Columns of a decoded row tile: the tile is {@link #tileRows} rows of TILE_COLS floats (12 KB: it stays in L1 beside
     * the batch's columns), the rows of a longer matrix decoded and multiplied TILE_COLS columns at a time. A whole
     * number of blocks of every format (K-quants: one super-block).
     */
    static final int TILE_COLS = 256;

    /** Rows of a tile: twelve for 8 tokens side by side, six for 16 (twelve accumulators either way). */
    static int tileRows(int batch) {
        return tokenWidth(batch) == 8 ? 12 : 6;
    }

    /**
     * acc[i·P + b] (+)= Σ_{k &lt; kc} w[i·TILE_COLS + k]·x_b[c0 + k] for rows i &lt; nr and every token b (P = the
     * {@link #paddedBatch padded batch}), w holding nr rows' columns c0 .. c0 + kc decoded, xt the batch
     * {@link #transpose transposed}; {@code accumulate} adds to acc (a later chunk of the same rows' columns).
     *
     * <p>Why tokens in lanes: the rows decode in their own (row-major) order, so nothing is transposed per weight; each
     * weight is one broadcast load for W tokens, and a tile of 12 rows × 8 tokens (or 6 × 16) gives twelve independent
     * FMA chains per column. A row's weights sit at a fixed stride (TILE_COLS), so every broadcast addresses its row by a
     * constant displacement from one column index: with the matrix's own width as the stride, C2 kept twelve row offsets
     * in registers (spilled to vector registers) and spent two more instructions per broadcast. Every lane sums its
     * token's products column by column in order, across chunks too, so a token's result does not depend on the
     * batch around it.
     */
    static void rowTile(float[] w, int nr, int kc, float[] xt, int cols, int c0, int batch, float[] acc, boolean accumulate) {
        int width = tokenWidth(batch), blocks = (batch + width - 1) / width, pb = blocks * width;
        for (int blk = 0; blk < blocks; blk++) {
            int x0 = (blk * cols + c0) * width, a0 = blk * width;
            int i = 0;
            if (width == 8) {
                for (; i + 12 <= nr; i += 12) rows12x8(w, i * TILE_COLS, kc, xt, x0, acc, i * pb + a0, pb, accumulate);
                for (; i < nr; i++) rows1x8(w, i * TILE_COLS, kc, xt, x0, acc, i * pb + a0, accumulate);
            } else {
                for (; i + 6 <= nr; i += 6) rows6x16(w, i * TILE_COLS, kc, xt, x0, acc, i * pb + a0, pb, accumulate);
                for (; i < nr; i++) rows1x16(w, i * TILE_COLS, kc, xt, x0, acc, i * pb + a0, accumulate);
            }
        }
    }

    /** out[outOff + b·outStride + row0 + i] = acc[i·P + b] for rows i &lt; nr and tokens b &lt; batch. */
    static void scatter(float[] acc, int nr, int batch, float[] out, int outOff, int outStride, int row0) {
        int pb = paddedBatch(batch);
        for (int b = 0; b < batch; b++) {
            int o = outOff + b * outStride + row0;
            for (int i = 0; i < nr; i++) out[o + i] = acc[i * pb + b];
        }
    }

    /** Twelve rows × eight tokens: twelve accumulators, one token vector and a broadcast per row and column. */
    private static void rows12x8(float[] w, int w0, int kc, float[] xt, int x0, float[] acc, int a, int pb, boolean accumulate) {
        FloatVector c0 = start(acc, a, accumulate), c1 = start(acc, a + pb, accumulate), c2 = start(acc, a + 2 * pb, accumulate);
        FloatVector c3 = start(acc, a + 3 * pb, accumulate), c4 = start(acc, a + 4 * pb, accumulate), c5 = start(acc, a + 5 * pb, accumulate);
        FloatVector c6 = start(acc, a + 6 * pb, accumulate), c7 = start(acc, a + 7 * pb, accumulate), c8 = start(acc, a + 8 * pb, accumulate);
        FloatVector c9 = start(acc, a + 9 * pb, accumulate), c10 = start(acc, a + 10 * pb, accumulate), c11 = start(acc, a + 11 * pb, accumulate);
        for (int k = w0; k < w0 + kc; k++) {
            FloatVector v = FloatVector.fromArray(F, xt, x0 + 8 * (k - w0));
            c0 = FloatVector.broadcast(F, w[k]).fma(v, c0);
            c1 = FloatVector.broadcast(F, w[k + TILE_COLS]).fma(v, c1);
            c2 = FloatVector.broadcast(F, w[k + 2 * TILE_COLS]).fma(v, c2);
            c3 = FloatVector.broadcast(F, w[k + 3 * TILE_COLS]).fma(v, c3);
            c4 = FloatVector.broadcast(F, w[k + 4 * TILE_COLS]).fma(v, c4);
            c5 = FloatVector.broadcast(F, w[k + 5 * TILE_COLS]).fma(v, c5);
            c6 = FloatVector.broadcast(F, w[k + 6 * TILE_COLS]).fma(v, c6);
            c7 = FloatVector.broadcast(F, w[k + 7 * TILE_COLS]).fma(v, c7);
            c8 = FloatVector.broadcast(F, w[k + 8 * TILE_COLS]).fma(v, c8);
            c9 = FloatVector.broadcast(F, w[k + 9 * TILE_COLS]).fma(v, c9);
            c10 = FloatVector.broadcast(F, w[k + 10 * TILE_COLS]).fma(v, c10);
            c11 = FloatVector.broadcast(F, w[k + 11 * TILE_COLS]).fma(v, c11);
        }
        c0.intoArray(acc, a);
        c1.intoArray(acc, a + pb);
        c2.intoArray(acc, a + 2 * pb);
        c3.intoArray(acc, a + 3 * pb);
        c4.intoArray(acc, a + 4 * pb);
        c5.intoArray(acc, a + 5 * pb);
        c6.intoArray(acc, a + 6 * pb);
        c7.intoArray(acc, a + 7 * pb);
        c8.intoArray(acc, a + 8 * pb);
        c9.intoArray(acc, a + 9 * pb);
        c10.intoArray(acc, a + 10 * pb);
        c11.intoArray(acc, a + 11 * pb);
    }

    /** One row × eight tokens (what twelve at a time leave). */
    private static void rows1x8(float[] w, int w0, int kc, float[] xt, int x0, float[] acc, int a, boolean accumulate) {
        FloatVector c0 = start(acc, a, accumulate);
        for (int k = 0; k < kc; k++) c0 = FloatVector.broadcast(F, w[w0 + k]).fma(FloatVector.fromArray(F, xt, x0 + 8 * k), c0);
        c0.intoArray(acc, a);
    }

    /** Six rows × sixteen tokens: twelve accumulators, two token vectors and a broadcast per row and column. */
    private static void rows6x16(float[] w, int w0, int kc, float[] xt, int x0, float[] acc, int a, int pb, boolean accumulate) {
        FloatVector c00 = start(acc, a, accumulate), c01 = start(acc, a + 8, accumulate);
        FloatVector c10 = start(acc, a + pb, accumulate), c11 = start(acc, a + pb + 8, accumulate);
        FloatVector c20 = start(acc, a + 2 * pb, accumulate), c21 = start(acc, a + 2 * pb + 8, accumulate);
        FloatVector c30 = start(acc, a + 3 * pb, accumulate), c31 = start(acc, a + 3 * pb + 8, accumulate);
        FloatVector c40 = start(acc, a + 4 * pb, accumulate), c41 = start(acc, a + 4 * pb + 8, accumulate);
        FloatVector c50 = start(acc, a + 5 * pb, accumulate), c51 = start(acc, a + 5 * pb + 8, accumulate);
        for (int k = w0; k < w0 + kc; k++) {
            int xi = x0 + 16 * (k - w0);
            FloatVector u = FloatVector.fromArray(F, xt, xi), v = FloatVector.fromArray(F, xt, xi + 8);
            FloatVector t = FloatVector.broadcast(F, w[k]);
            c00 = t.fma(u, c00);
            c01 = t.fma(v, c01);
            t = FloatVector.broadcast(F, w[k + TILE_COLS]);
            c10 = t.fma(u, c10);
            c11 = t.fma(v, c11);
            t = FloatVector.broadcast(F, w[k + 2 * TILE_COLS]);
            c20 = t.fma(u, c20);
            c21 = t.fma(v, c21);
            t = FloatVector.broadcast(F, w[k + 3 * TILE_COLS]);
            c30 = t.fma(u, c30);
            c31 = t.fma(v, c31);
            t = FloatVector.broadcast(F, w[k + 4 * TILE_COLS]);
            c40 = t.fma(u, c40);
            c41 = t.fma(v, c41);
            t = FloatVector.broadcast(F, w[k + 5 * TILE_COLS]);
            c50 = t.fma(u, c50);
            c51 = t.fma(v, c51);
        }
        c00.intoArray(acc, a);
        c01.intoArray(acc, a + 8);
        c10.intoArray(acc, a + pb);
        c11.intoArray(acc, a + pb + 8);
        c20.intoArray(acc, a + 2 * pb);
        c21.intoArray(acc, a + 2 * pb + 8);
        c30.intoArray(acc, a + 3 * pb);
        c31.intoArray(acc, a + 3 * pb + 8);
        c40.intoArray(acc, a + 4 * pb);
        c41.intoArray(acc, a + 4 * pb + 8);
        c50.intoArray(acc, a + 5 * pb);
        c51.intoArray(acc, a + 5 * pb + 8);
    }

    /** One row × sixteen tokens. */
    private static void rows1x16(float[] w, int w0, int kc, float[] xt, int x0, float[] acc, int a, boolean accumulate) {
        FloatVector c0 = start(acc, a, accumulate), c1 = start(acc, a + 8, accumulate);
        for (int k = 0; k < kc; k++) {
            FloatVector t = FloatVector.broadcast(F, w[w0 + k]);
            c0 = t.fma(FloatVector.fromArray(F, xt, x0 + 16 * k), c0);
            c1 = t.fma(FloatVector.fromArray(F, xt, x0 + 16 * k + 8), c1);
        }
        c0.intoArray(acc, a);
        c1.intoArray(acc, a + 8);
    }
}
