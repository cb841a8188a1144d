package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Float micro-kernels for a tile of decoded weight rows against a batch of activation vectors. */
final class FloatGemm {
    private FloatGemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    // ---- panels: 16 rows stored column by column, against tokens interleaved in tiles ---------------------------

    /**
     * Tokens of the tile that starts with token b of a batch of {@code batch}: 8 while at least 5 are left, else 4. A tile
     * with fewer tokens left than its width repeats its last token in the missing places (computing that token's bits
     * again and storing them to the same place).
     *
     * <p>Why these widths: a column of a 16-row panel is two vectors, each token one broadcast and two FMAs, so eight
     * tokens keep sixteen FMA chains (sixteen accumulators, two panel vectors, broadcasts) and four still give eight,
     * enough for two FMA units of latency 4. One thread, 16-row × 512-column Q4_0 panels of a 768 × 1024 matrix, GEMM
     * alone (AMD EPYC, Zen 4 class): eight-token tiles 106–113 GFLOP/s at 8–24 tokens, twelve-token tiles (24
     * accumulators, no spills) only 91–97, four-token tiles 94–103; the earlier six-token form with tokens at their
     * stride (an index register and an address computation per token) 82–84.
     */
    static int panelTileWidth(int b, int batch) {
        int rest = batch - b;
        return rest >= 5 ? 8 : 4;
    }

    /** Floats {@link #interleave} writes for {@code batch} vectors of {@code cols} values (every tile at its full width). */
    static int interleavedLength(int batch, int cols) {
        int n = 0;
        for (int b = 0; b < batch; b += panelTileWidth(b, batch)) n += panelTileWidth(b, batch);
        return n * cols;
    }

    /**
     * xt[T·(b0·cols + k) + j] = x[xOff + (b0 + min(j, n − 1))·xStride + k] for each tile of T = {@link #panelTileWidth}
     * tokens starting at token b0 (n of them real): a tile's tokens side by side, column by column, the missing ones
     * repeating its last token.
     *
     * <p>Why: with the tokens of a tile apart by their stride, each broadcast needs its own index register (twelve
     * tokens: more than the general registers C2 has free) and an address computation; interleaved, every broadcast of
     * a column is one index plus a constant.
     */
    static void interleave(float[] x, int xOff, int xStride, int batch, int cols, float[] xt) {
        for (int b0 = 0; b0 < batch; ) {
            int w = panelTileWidth(b0, batch), n = Math.min(w, batch - b0), base = b0 * cols;
            for (int j = 0; j < w; j++) {
                int xo = xOff + (b0 + Math.min(j, n - 1)) * xStride;
                for (int k = 0; k < cols; k++) xt[base + k * w + j] = x[xo + k];
            }
            b0 += w;
        }
    }

    /**
     * out[b·outStride + row0 + r] (+)= Σ_k p[16·k + r]·x_b[c0 + k] for r &lt; 16, k &lt; kn, b &lt; batch, the batch
     * {@link #interleave interleaved} in xt (of {@code cols} columns); with {@code accumulate} the sums are added to what out
     * holds (the panel continues an earlier one's columns). Each output is one FMA chain over k in column order,
     * whatever the batch and tile around it.
     *
     * <p>Why a panel: with 16 rows' weights of one column in two vectors, each column costs two loads per tile and one
     * broadcast per token, and a tile's tokens give independent FMAs: the accumulators stay in registers and the FMA
     * units stay busy. A row-by-row tile (a load per FMA and a reduction per row and token) measured 54 against 93
     * GFLOP/s for six tokens of this form on a 16-row × 1024-column block with 24 tokens.
     */
    static void panel16(float[] p, int kn, float[] xt, int c0, int cols, int batch, float[] out, int outStride, int row0,
                        boolean accumulate) {
        for (int b = 0; b < batch; ) {
            int w = panelTileWidth(b, batch), n = Math.min(w, batch - b), x0 = b * cols + c0 * w, o = b * outStride + row0;
            panelTile(p, kn, xt, x0, w, n, out, o, outStride, accumulate);
            b += w;
        }
    }

    /** One tile of w tokens (n real) of {@link #panel16}. */
    private static void panelTile(float[] p, int kn, float[] xt, int x0, int w, int n, float[] out, int o, int outStride, boolean accumulate) {
        if (w == 8) panel16x8(p, kn, xt, x0, n, out, o, outStride, accumulate);
        else panel16x4(p, kn, xt, x0, n, out, o, outStride, accumulate);
    }

    /** Offset of token t of a call's n tokens (t ≥ n repeats the last one). */
    private static int tokenAt(int first, int stride, int t, int n) {
        return first + Math.min(t, n - 1) * stride;
    }

    private static FloatVector start(float[] out, int o, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(F, out, o) : FloatVector.zero(F);
    }

    /** 8 tokens of a tile (n of them real, as {@link #panelTile}): 16 accumulators. */
    private static void panel16x8(float[] p, int kn, float[] xt, int x0, int n, float[] out, int o, int outStride, boolean accumulate) {
        int o1 = tokenAt(o, outStride, 1, n), o2 = tokenAt(o, outStride, 2, n), o3 = tokenAt(o, outStride, 3, n), o4 = tokenAt(o, outStride, 4, n), o5 = tokenAt(o, outStride, 5, n), o6 = tokenAt(o, outStride, 6, n), o7 = tokenAt(o, outStride, 7, n);
        int o0 = o;
        FloatVector c0a = start(out, o0, accumulate), c0b = start(out, o0 + 8, accumulate);
        FloatVector c1a = start(out, o1, accumulate), c1b = start(out, o1 + 8, accumulate);
        FloatVector c2a = start(out, o2, accumulate), c2b = start(out, o2 + 8, accumulate);
        FloatVector c3a = start(out, o3, accumulate), c3b = start(out, o3 + 8, accumulate);
        FloatVector c4a = start(out, o4, accumulate), c4b = start(out, o4 + 8, accumulate);
        FloatVector c5a = start(out, o5, accumulate), c5b = start(out, o5 + 8, accumulate);
        FloatVector c6a = start(out, o6, accumulate), c6b = start(out, o6 + 8, accumulate);
        FloatVector c7a = start(out, o7, accumulate), c7b = start(out, o7 + 8, accumulate);
        for (int k = 0; k < kn; k++) {
            FloatVector r0 = FloatVector.fromArray(F, p, 16 * k), r1 = FloatVector.fromArray(F, p, 16 * k + 8);
            int xi = x0 + 8 * k;
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
            t = FloatVector.broadcast(F, xt[xi + 4]);
            c4a = r0.fma(t, c4a);
            c4b = r1.fma(t, c4b);
            t = FloatVector.broadcast(F, xt[xi + 5]);
            c5a = r0.fma(t, c5a);
            c5b = r1.fma(t, c5b);
            t = FloatVector.broadcast(F, xt[xi + 6]);
            c6a = r0.fma(t, c6a);
            c6b = r1.fma(t, c6b);
            t = FloatVector.broadcast(F, xt[xi + 7]);
            c7a = r0.fma(t, c7a);
            c7b = r1.fma(t, c7b);
        }
        c0a.intoArray(out, o0);
        c0b.intoArray(out, o0 + 8);
        c1a.intoArray(out, o1);
        c1b.intoArray(out, o1 + 8);
        c2a.intoArray(out, o2);
        c2b.intoArray(out, o2 + 8);
        c3a.intoArray(out, o3);
        c3b.intoArray(out, o3 + 8);
        c4a.intoArray(out, o4);
        c4b.intoArray(out, o4 + 8);
        c5a.intoArray(out, o5);
        c5b.intoArray(out, o5 + 8);
        c6a.intoArray(out, o6);
        c6b.intoArray(out, o6 + 8);
        c7a.intoArray(out, o7);
        c7b.intoArray(out, o7 + 8);
    }

    /** 4 tokens of a tile (n of them real, as {@link #panelTile}): 8 accumulators. */
    private static void panel16x4(float[] p, int kn, float[] xt, int x0, int n, float[] out, int o, int outStride, boolean accumulate) {
        int o1 = tokenAt(o, outStride, 1, n), o2 = tokenAt(o, outStride, 2, n), o3 = tokenAt(o, outStride, 3, n);
        int o0 = o;
        FloatVector c0a = start(out, o0, accumulate), c0b = start(out, o0 + 8, accumulate);
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
        c0a.intoArray(out, o0);
        c0b.intoArray(out, o0 + 8);
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
