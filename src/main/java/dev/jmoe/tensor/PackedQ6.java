package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A Q6_K matrix regrouped 16 rows at a time for 16-bit integer products, as {@link PackedQ4} does for Q4: each lane
 * of a 16-lane vector of shorts holds two 6-bit quants of one row, w = n0 + 64·n1, and two 16-bit multiplies, w·A and
 * (w >> 6)·B with A = x0 and B = x1 − 64·x0, give n0·x0 + n1·x1 (the same identity modulo 2^16).
 *
 * <p>Why: Q4_K_M files keep half the layers' expert down projections (and the output) in Q6_K, and on the file's rows
 * a Q6_K product cost about twice a packed Q4 one per weight; here it costs about the same number of multiplies per
 * weight as Q4 (one 16-bit multiply per weight and activation byte).
 *
 * <p>Layout per group and 16-value sub-block (Q6_K's scale granularity): eight vectors, vector 4h + i pairing values
 * 8h + i and 8h + i + 4, and 16 float scales d·scale (one per row). Activations are the 16-bit ones of the Q4 kernels
 * (x = 256·hi + lo per block of 32, hi in [−127, 127], lo in [−127, 128]); Σ(q − 32)·hi and Σ(q − 32)·lo over 8 values
 * stay within the 16-bit range (|q − 32| ≤ 32), so the 16-bit sums are widened after each half of a sub-block.
 * With activations rounded as llama.cpp does (Q8_K, |q| ≤ 127) there is one product per weight, and the integer sums
 * per sub-block are ggml's; only the float order in which the sub-blocks are added differs. The copy takes 10 bits per
 * weight (the file 6.56).
 *
 * <p>A copy made for 8-bit activations ({@link #compact}) keeps the file's 8-bit scales and widens them in line: 8.63
 * bits per weight.
 */
public final class PackedQ6 implements PackedMatrix {
    private static final int QK = KQuant.QK_K;
    private static final int BLOCK = 210;
    /** Values per sub-block: Q6_K has one scale per 16 values. */
    private static final int SUB = 16;
    /** Shorts of the quants of one sub-block of a group: 16 rows × 8 shorts. */
    private static final int QUANT_SHORTS = ROWS * 8;
    /** Multipliers per half sub-block, 16-bit activations: the two offsets −32·Σhi and −32·Σlo, then four per vector. */
    private static final int HALF_MULTIPLIERS = 18;
    /** Multipliers per half sub-block, 8-bit activations: the offset −32·Σq, then two per vector. */
    private static final int HALF_MULTIPLIERS_8 = 9;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    // group8Pairs' 512-bit vectors (written by the rule for 512-bit code, WideVectorRuleTest; as PackedQ4.group8Quad)
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Long> L16 = LongVector.SPECIES_512;
    /** Each thread's rows of {@link #group8Pairs}: four vectors' 16, interleaved as its lanes are. */
    private static final ThreadLocal<float[]> PAIR_ROWS = ThreadLocal.withInitial(() -> new float[4 * ROWS]);

    /** Compact: shorts at the head of each pair of sub-blocks, one per row (in its lane): the file's scales of both, the first in the low byte. */
    private static final int HEAD = ROWS;
    /** Compact: shorts per pair of sub-blocks of a group, the head and then both sub-blocks' quants. */
    private static final int PAIR_SHORTS = HEAD + 2 * QUANT_SHORTS;
    /** Sub-blocks per super-block, which share d. */
    private static final int SUBS_PER_SUPER = QK / SUB;

    /** Per sub-block of each group: 128 shorts of quants (8 vectors of 16 lanes); compact: per pair of sub-blocks, a head of {@link #HEAD} shorts first. */
    private final short[] quants;
    /** Per sub-block of each group: 16 scales d·scale; compact: per super-block of each group, the 16 rows' d. */
    private final float[] scales;
    private final int firstGroup;
    private final int rows, cols;
    /**
     * Laid out for 8-bit activations ({@link #pack(Matrix, Parallel, boolean)}): each pair of sub-blocks keeps the file's
     * 8-bit scales of its 16 rows at its head (one short per row) and each super-block its rows' d as floats, and the
     * 8-bit kernels widen them to d·scale in line, the packer's float product: 8.63 bits per weight instead of 10. Those
     * kernels are bound by memory in a decode step; the 16-bit ones are bound by their arithmetic, so they keep the float
     * scales (on a compact copy, which only a model view with the other rounding sharing the copy asks for, they widen
     * the pair of groups they multiply first, {@link #widened}).
     */
    private final boolean compact;

    private PackedQ6(short[] quants, float[] scales, int firstGroup, int rows, int cols, boolean compact) {
        this.quants = quants;
        this.scales = scales;
        this.firstGroup = firstGroup;
        this.rows = rows;
        this.cols = cols;
        this.compact = compact;
    }

    /** Where sub-block {@code sub}'s quants start in {@link #quants} ({@link #group8Pairs} writes this, headAt and scaleAt out). */
    private int quantAt(int sub) {
        return compact ? headAt(sub) + HEAD + (sub & 1) * QUANT_SHORTS : sub * QUANT_SHORTS;
    }

    /** Compact: where the head holding sub-block {@code sub}'s scales starts in {@link #quants} (its pair's first short). */
    private static int headAt(int sub) {
        return (sub >>> 1) * PAIR_SHORTS;
    }

    /** Where sub-block {@code sub}'s 16 floats start in {@link #scales}: its scales, compact its super-block's d. */
    private int scaleAt(int sub) {
        return compact ? sub / SUBS_PER_SUPER * ROWS : sub * ROWS;
    }

    /** Whether {@code m} can be packed: Q6_K with whole groups of 16 rows, its quants fitting one Java array. */
    public static boolean canPack(Matrix m) {
        return m.type() == GgmlType.Q6_K && m.rows() % ROWS == 0 && m.cols() % QK == 0 && (long) m.rows() * m.cols() / 2 <= Integer.MAX_VALUE - 64;
    }

    /** Bytes a packed copy of {@code m} takes ({@link #canPack} must hold). */
    public static long packedBytes(Matrix m) {
        return packedBytes(m, false);
    }

    /** Bytes a packed copy of {@code m} takes, {@code compact} (for 8-bit activations) or not. */
    static long packedBytes(Matrix m, boolean compact) {
        return bytes(m.rows(), m.cols(), compact);
    }

    private static long bytes(int rows, int cols, boolean compact) {
        return quantShorts(rows, cols, compact) * 2L + scaleFloats(rows, cols, compact) * 4L;
    }

    /** Regroups {@code m} ({@link #canPack} must hold), the groups split over {@code pool} (null: this thread). */
    public static PackedQ6 pack(Matrix m, Parallel pool) {
        return pack(m, pool, false);
    }

    /** As {@link #pack(Matrix, Parallel)}; {@code compact}: the layout for 8-bit activations ({@link #compact}). */
    static PackedQ6 pack(Matrix m, Parallel pool, boolean compact) {
        if (!canPack(m)) {
            throw new IllegalArgumentException("only Q6_K matrices with a multiple of " + ROWS + " rows can be packed as Q6, got " + m.type() + " "
                    + m.rows() + "x" + m.cols());
        }
        return packInto(m, new short[quantShorts(m.rows(), m.cols(), compact)], new float[scaleFloats(m.rows(), m.cols(), compact)], pool, compact);
    }

    /** Length of the quant array a packed copy of {@code m} needs ({@link #canPack} must hold). */
    static int quantShorts(Matrix m) {
        return quantShorts(m.rows(), m.cols(), false);
    }

    private static int quantShorts(int rows, int cols, boolean compact) {
        int subs = rows / ROWS * (cols / SUB);
        return compact ? subs / 2 * PAIR_SHORTS : subs * QUANT_SHORTS;
    }

    /** Length of the scale array a packed copy of {@code m} needs ({@link #canPack} must hold). */
    static int scaleFloats(Matrix m) {
        return scaleFloats(m.rows(), m.cols(), false);
    }

    private static int scaleFloats(int rows, int cols, boolean compact) {
        return rows / ROWS * (cols / (compact ? QK : SUB)) * ROWS;
    }

    /** As {@link #pack}, into arrays the caller owns and reuses (a fast-memory slot), at least {@link #quantShorts}/{@link #scaleFloats} long. */
    static PackedQ6 packInto(Matrix m, short[] quants, float[] scales, Parallel pool) {
        return packInto(m, quants, scales, pool, false);
    }

    private static PackedQ6 packInto(Matrix m, short[] quants, float[] scales, Parallel pool, boolean compact) {
        if (!canPack(m)) throw new IllegalArgumentException("cannot pack a " + m.type() + " " + m.rows() + "x" + m.cols() + " matrix as Q6");
        if (quants.length < quantShorts(m.rows(), m.cols(), compact) || scales.length < scaleFloats(m.rows(), m.cols(), compact)) {
            throw new IllegalArgumentException("arrays too small for the packed copy");
        }
        PackedQ6 packed = new PackedQ6(quants, scales, 0, m.rows(), m.cols(), compact);
        int groups = m.rows() / ROWS;
        Parallel.RangeTask task = (g0, g1) -> packed.packGroups(m, g0, g1);
        if (pool == null || groups < 2) task.run(0, groups);
        else pool.forRange(groups, 1, task);
        return packed;
    }

    private static final VarHandle SHORT_LE = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    /** Packs groups [g0, g1) of {@code m} into this copy's arrays. */
    private void packGroups(Matrix m, int g0, int g1) {
        int rowBytes = (int) m.rowBytes(), subs = m.cols() / SUB;
        byte[] in = new byte[ROWS * rowBytes];
        int[] q = new int[QK];
        for (int g = g0; g < g1; g++) {
            MemorySegment.copy(m.data(), ValueLayout.JAVA_BYTE, (long) g * ROWS * rowBytes, in, 0, in.length);
            for (int r = 0; r < ROWS; r++) {
                int lane = PackedQ4.lane(r);
                for (int s = 0; s < m.cols() / QK; s++) {
                    int p = r * rowBytes + s * BLOCK;
                    quants(in, p, q);
                    float d = Float.float16ToFloat((short) SHORT_LE.get(in, p + 208));
                    if (compact) scales[scaleAt(g * subs + s * SUBS_PER_SUPER) + r] = d;
                    for (int j = 0; j < SUBS_PER_SUPER; j++) {
                        int sub = g * subs + s * SUBS_PER_SUPER + j, at = quantAt(sub);
                        if (compact) { // the pair's head: the first sub-block's scale in the low byte of the row's short
                            int head = headAt(sub) + lane, scale = in[p + 192 + j] & 0xFF;
                            quants[head] = (short) ((sub & 1) == 0 ? scale : quants[head] & 0xFF | scale << 8);
                        } else {
                            scales[scaleAt(sub) + r] = d * in[p + 192 + j];
                        }
                        for (int k = 0; k < 8; k++) {
                            int a = SUB * j + 8 * (k / 4) + k % 4;
                            quants[at + 16 * k + lane] = (short) (q[a] | q[a + 4] << 6);
                        }
                    }
                }
            }
        }
    }

    /** The 256 quants (0..63) of the super-block at p: value v = 128h + 32t + l from ql and qh as in ggml. */
    private static void quants(byte[] in, int p, int[] q) {
        for (int v = 0; v < QK; v++) {
            int h = v / 128, t = (v % 128) / 32, l = v % 32;
            int ql = in[p + 64 * h + 32 * (t & 1) + l] & 0xFF, qh = in[p + 128 + 32 * h + l] & 0xFF;
            q[v] = (t < 2 ? ql & 0xF : ql >>> 4) | ((qh >>> (2 * t)) & 3) << 4;
        }
    }

    /**
     * Group g's weights in columns [c0, c1) (multiples of 16) column by column, as {@link PackedMatrix#panel}: each value
     * n·(d·scale) − 32·(d·scale) in one FMA, which is (n − 32)·d·scale rounded once, what the file's rows decode to.
     */
    @Override
    public void panel(int g, int c0, int c1, float[] p) {
        if (compact) {
            widened(g, g).panel(0, c0, c1, p);
            return;
        }
        short[] qs = quants;
        float[] sc = scales;
        int sub0 = (firstGroup + g) * (cols / SUB);
        for (int j = c0 / SUB; j < c1 / SUB; j++) {
            int qp = (sub0 + j) * QUANT_SHORTS, sp = (sub0 + j) * ROWS;
            FloatVector s0 = FloatVector.fromArray(F, sc, sp), s1 = FloatVector.fromArray(F, sc, sp + 8);
            FloatVector m0 = s0.mul(-32f), m1 = s1.mul(-32f);
            int at = (SUB * j - c0) * ROWS;
            for (int k = 0; k < 8; k++) {
                // int lane i: rows i (low short) and i + 8 (high short), each short the quants of values a and a + 4
                IntVector w = ShortVector.fromArray(S, qs, qp + 16 * k).reinterpretAsInts();
                int o = at + (8 * (k / 4) + k % 4) * ROWS;
                ((FloatVector) w.and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(s0, m0).intoArray(p, o);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 16).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(s1, m1).intoArray(p, o + 8);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 6).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(s0, m0).intoArray(p, o + 4 * ROWS);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 22).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(s1, m1).intoArray(p, o + 4 * ROWS + 8);
            }
        }
    }

    /**
     * Lays out the multipliers of one block of 32 activation values (hi and lo as {@link PackedQ4.Activation} splits them)
     * at v[o ..]: per 16-value sub-block and half, −32·Σhi and −32·Σlo of its 8 values, then per vector i the pairs
     * (hi, lo) of A = x_a and B = x_b − 64·x_a.
     */
    static void layOut(short[] v, int o, int[] hi, int[] lo) {
        for (int sub = 0; sub < 2; sub++) {
            for (int h = 0; h < 2; h++) {
                int p = o + (2 * sub + h) * HALF_MULTIPLIERS, first = SUB * sub + 8 * h, sumHi = 0, sumLo = 0;
                for (int j = 0; j < 8; j++) {
                    sumHi += hi[first + j];
                    sumLo += lo[first + j];
                }
                v[p] = (short) (-32 * sumHi);
                v[p + 1] = (short) (-32 * sumLo);
                for (int i = 0; i < 4; i++) {
                    int a = first + i, b = a + 4, m = p + 2 + 4 * i;
                    v[m] = (short) hi[a];
                    v[m + 1] = (short) lo[a];
                    v[m + 2] = (short) (hi[b] - 64 * hi[a]);
                    v[m + 3] = (short) (lo[b] - 64 * lo[a]);
                }
            }
        }
    }

    /**
     * As {@link #layOut} for one block of 32 activations rounded to 8 bits (q[xo ..]): per 16-value sub-block and half,
     * −32·Σq of its 8 values, then per vector i the pair A = q_a, B = q_b − 64·q_a. Returns the block's Σq.
     */
    static int layOut8(short[] v, int o, byte[] q, int xo) {
        int total = 0;
        for (int sub = 0; sub < 2; sub++) {
            for (int h = 0; h < 2; h++) {
                int p = o + (2 * sub + h) * HALF_MULTIPLIERS_8, first = xo + SUB * sub + 8 * h, sum = 0;
                for (int i = 0; i < 4; i++) {
                    int a = first + i, m = p + 1 + 2 * i, lo = q[a], hi = q[a + 4];
                    v[m] = (short) lo;
                    v[m + 1] = (short) (hi - 64 * lo);
                    sum += lo + hi;
                }
                v[p] = (short) (-32 * sum);
                total += sum;
            }
        }
        return total;
    }

    @Override public GgmlType type() { return GgmlType.Q6_K; }
    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long byteSize() { return bytes(rows, cols, compact); }

    @Override
    public PackedQ4.Precision precision(QuantizedActivation.Scheme rounding) {
        if (rounding == null) return PackedQ4.Precision.Q6_BITS_16;
        return rounding == QuantizedActivation.Scheme.Q8_K ? PackedQ4.Precision.Q6_BITS_8 : null;
    }

    @Override
    public PackedQ6 rows(int first, int count) {
        if (first % ROWS != 0 || count % ROWS != 0) return null;
        return new PackedQ6(quants, scales, firstGroup + first / ROWS, count, cols, compact);
    }

    @Override
    public void product(PackedQ4.Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff) {
        boolean rounded = a.precision == PackedQ4.Precision.Q6_BITS_8;
        if (a.cols != cols || !rounded && a.precision != PackedQ4.Precision.Q6_BITS_16) {
            throw new IllegalArgumentException("activation of " + a.cols + " values laid out for " + a.precision + ", not for a Q6 matrix of " + cols + " columns");
        }
        // pairs (g, g + half), as in PackedQ4.product: two unbroken streams through the range
        int half = (g1 - g0) / 2;
        for (int i = 0; i < half; i++) {
            int g = g0 + i, h = g + half, outG = outOff + i * ROWS, outH = outOff + (i + half) * ROWS;
            if (rounded) pair8(g, h, a.v, vOff, a.d, dOff, out, outG, outH);
            else if (compact) widened(g, h).pair16(0, 1, a.v, vOff, a.d, dOff, out, outG, outH);
            else pair16(g, h, a.v, vOff, a.d, dOff, out, outG, outH);
        }
        int g = g0 + 2 * half;
        if (g < g1) {
            // a last odd group runs as a pair with itself, its second copy going to scratch
            float[] two = new float[2 * ROWS];
            if (rounded) pair8(g, g, a.v, vOff, a.d, dOff, two, 0, ROWS);
            else if (compact) widened(g, g).pair16(0, 1, a.v, vOff, a.d, dOff, two, 0, ROWS);
            else pair16(g, g, a.v, vOff, a.d, dOff, two, 0, ROWS);
            System.arraycopy(two, 0, out, outOff + (g - g0) * ROWS, ROWS);
        }
    }

    /**
     * 8-bit activations laid out with their {@link PackedQ4.Activation#quads}: four vectors (two pairs) per pass over a
     * group's weights, each weight vector loaded and shifted once for the four, each multiplier a 64-bit broadcast.
     * Every vector gets exactly {@link #pair8}'s bits (the same integer sums per half sub-block, the same float
     * operations in its order). Otherwise as {@link PackedMatrix#productBatch}.
     */
    @Override
    public void productBatch(PackedQ4.Activation a, int batch, int stride, int blocks, int g0, int g1, float[] out, int outOff, int outStride) {
        if (a.precision != PackedQ4.Precision.Q6_BITS_8 || batch < 2 || a.pairedBatch != batch || stride != a.stride() || blocks != cols / 32) {
            PackedMatrix.super.productBatch(a, batch, stride, blocks, g0, g1, out, outOff, outStride);
            return;
        }
        if (a.cols != cols) throw new IllegalArgumentException("activation of " + a.cols + " values for a Q6 matrix of " + cols + " columns");
        // pairs of two vectors, an odd batch's last vector paired with itself; that pair shares a pass with the pair
        // before it (its row written twice, the same bits) when there is one to share with, else runs as one vector
        // alone (a pass for four would do four times its work)
        int count = (batch + 1) / 2, inPasses = batch % 2 != 0 && count % 2 != 0 ? count - 1 : count;
        float[] rows = PAIR_ROWS.get();
        // the pairs a chunk at a time, over all the groups: a long batch's multipliers stay in L2 while every group reads them
        for (int c0 = 0; c0 < inPasses; c0 += PackedQ4.CHUNK_PAIRS) {
            int c1 = Math.min(inPasses, c0 + PackedQ4.CHUNK_PAIRS);
            for (int g = g0; g < g1; g++) {
                int o = outOff + (g - g0) * ROWS;
                for (int p = c0; p < c1; p += 2) {
                    int q = Math.min(p + 1, c1 - 1); // a last single pair twice in one pass (the same bits written twice)
                    group8Pairs(g, a.quads, p / 2 * stride, q != p, a.d, blocks, 2 * p, Math.min(2 * p + 1, batch - 1), 2 * q,
                            Math.min(2 * q + 1, batch - 1), rows, out, o, outStride);
                }
            }
        }
        if (inPasses < count) product(a, (batch - 1) * stride, (batch - 1) * blocks, g0, g1, out, outOff + (batch - 1) * outStride);
    }

    /**
     * {@link #pair8} of group g alone for two pairs of vectors (pairs 2i and 2i + 1, their multipliers in
     * {@link PackedQ4.Activation#quads} at {@code quads[q ..]}: tokens ta0/ta1 and tb0/tb1; without {@code both}, the
     * second pair is padding and only ta0/ta1 are written; token t's scales at dx[t·blocks ..], results at
     * out[outOff + t·outStride ..]). As in PackedQ4's kernels, the weights as loaded (v) give rows 0-7 of a pair's first
     * vector and rows 8-15 of its second, the weights with the halves of each 32-bit lane swapped (u) the other rows.
     *
     * <p>In 512-bit vectors, as {@link PackedQ4}'s group8Quad: each weight int is duplicated into two neighbouring int
     * lanes, so one 64-bit broadcast multiplies it by both pairs' multipliers (the first pair in the even lanes, the second
     * in the odd ones); each lane computes what the 256-bit form computed, with about half the instructions. The rows
     * come out of the lanes through {@code rows} (per thread, 64 floats) at the end.
     */
    private void group8Pairs(int g, long[] quads, int q, boolean both, float[] dx, int blocks, int ta0, int ta1, int tb0, int tb1,
                             float[] rows, float[] out, int outOff, int outStride) {
        short[] qs = quants;
        float[] sc = scales;
        int subs = cols / SUB, sub0 = (firstGroup + g) * subs;
        // shift counts as vectors: the rule for 512-bit code keeps scalar operands out
        ShortVector s6 = ShortVector.broadcast(S32, (short) 6);
        IntVector i16 = IntVector.broadcast(I16, 16), i24 = IntVector.broadcast(I, 24);
        FloatVector a0 = FloatVector.zero(F16), a1 = a0, b0 = a0, b1 = a0;
        for (int j = 0; j < subs; j++) {
            // quantAt, scaleAt and headAt written out: this method is large enough that C2 stops inlining calls in it
            // (NodeCountInliningCutoff), and those three, left as calls in the loop, cost 8-bit prompts ~3% (one JVM,
            // the two forms alternated per round: Qwen3-like Q4_K_M 1.027, 1.030 and 1.034, Mixtral-like 1.030)
            int sub = sub0 + j, head = (sub >>> 1) * PAIR_SHORTS, qp = compact ? head + HEAD + (sub & 1) * QUANT_SHORTS : sub * QUANT_SHORTS;
            // per pair (even lanes the first, odd lanes the second), first vectors' rows 0-7 and 8-15 (i0, i1) and second
            // vectors' (j0, j1): the sums of both halves of the sub-block
            IntVector i0 = IntVector.zero(I16), i1 = i0, j0 = i0, j1 = i0;
            for (int half = 0; half < 2; half++) {
                int o = j * 2 * HALF_MULTIPLIERS_8 + half * HALF_MULTIPLIERS_8;
                ShortVector w = (ShortVector) LongVector.broadcast(L16, quads[q + o]).reinterpretShape(S32, 0), wu = w;
                for (int i = 0; i < 4; i++) {
                    int k = 16 * (4 * half + i), m = o + 1 + 2 * i;
                    IntVector vi = (IntVector) ShortVector.fromArray(S, qs, qp + k).reinterpretShape(I16, 0).rearrange(PackedQ4.DUPLICATE);
                    ShortVector v = (ShortVector) vi.reinterpretShape(S32, 0), u = (ShortVector) vi.lanewise(VectorOperators.ROL, i16).reinterpretShape(S32, 0);
                    ShortVector v6 = v.lanewise(VectorOperators.LSHR, s6), u6 = u.lanewise(VectorOperators.LSHR, s6);
                    ShortVector x = (ShortVector) LongVector.broadcast(L16, quads[q + m]).reinterpretShape(S32, 0);
                    ShortVector y = (ShortVector) LongVector.broadcast(L16, quads[q + m + 1]).reinterpretShape(S32, 0);
                    w = w.lanewise(VectorOperators.ADD, v.lanewise(VectorOperators.MUL, x)).lanewise(VectorOperators.ADD, v6.lanewise(VectorOperators.MUL, y));
                    wu = wu.lanewise(VectorOperators.ADD, u.lanewise(VectorOperators.MUL, x)).lanewise(VectorOperators.ADD, u6.lanewise(VectorOperators.MUL, y));
                }
                IntVector wi = (IntVector) w.reinterpretShape(I16, 0), ui = (IntVector) wu.reinterpretShape(I16, 0);
                i0 = i0.lanewise(VectorOperators.ADD, wi.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16));
                i1 = i1.lanewise(VectorOperators.ADD, ui.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16));
                j0 = j0.lanewise(VectorOperators.ADD, ui.lanewise(VectorOperators.ASHR, i16));
                j1 = j1.lanewise(VectorOperators.ADD, wi.lanewise(VectorOperators.ASHR, i16));
            }
            int p = compact ? sub / SUBS_PER_SUPER * ROWS : sub * ROWS, blk = j / 2;
            FloatVector e0 = FloatVector.fromArray(F, sc, p), e1 = FloatVector.fromArray(F, sc, p + 8);
            if (compact) { // e0 and e1 hold the super-block's d: the sub-block's scales are d·scale
                IntVector heads = (IntVector) ShortVector.fromArray(S, qs, head).reinterpretShape(I, 0);
                int up = 8 * (j & 1);
                e0 = ((FloatVector) heads.lanewise(VectorOperators.LSHL, IntVector.broadcast(I, 24 - up)).lanewise(VectorOperators.ASHR, i24)
                        .convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, e0);
                e1 = ((FloatVector) heads.lanewise(VectorOperators.LSHL, IntVector.broadcast(I, 8 - up)).lanewise(VectorOperators.ASHR, i24)
                        .convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, e1);
            }
            // each row's scale in two neighbouring lanes, and the tokens' d_x as the lanes take them
            FloatVector s0 = (FloatVector) e0.reinterpretShape(I16, 0).rearrange(PackedQ4.DUPLICATE).reinterpretShape(F16, 0);
            FloatVector s1 = (FloatVector) e1.reinterpretShape(I16, 0).rearrange(PackedQ4.DUPLICATE).reinterpretShape(F16, 0);
            FloatVector first = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(dx[ta0 * blocks + blk]) & 0xFFFFFFFFL
                    | (long) Float.floatToRawIntBits(dx[tb0 * blocks + blk]) << 32).reinterpretShape(F16, 0);
            FloatVector second = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(dx[ta1 * blocks + blk]) & 0xFFFFFFFFL
                    | (long) Float.floatToRawIntBits(dx[tb1 * blocks + blk]) << 32).reinterpretShape(F16, 0);
            a0 = ((FloatVector) i0.convertShape(VectorOperators.I2F, F16, 0)).lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, first), a0);
            a1 = ((FloatVector) i1.convertShape(VectorOperators.I2F, F16, 0)).lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, first), a1);
            b0 = ((FloatVector) j0.convertShape(VectorOperators.I2F, F16, 0)).lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, second), b0);
            b1 = ((FloatVector) j1.convertShape(VectorOperators.I2F, F16, 0)).lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, second), b1);
        }
        MemorySegment rs = MemorySegment.ofArray(rows);
        a0.intoMemorySegment(rs, 0, ByteOrder.nativeOrder());
        a1.intoMemorySegment(rs, 16 * 4L, ByteOrder.nativeOrder());
        b0.intoMemorySegment(rs, 32 * 4L, ByteOrder.nativeOrder());
        b1.intoMemorySegment(rs, 48 * 4L, ByteOrder.nativeOrder());
        // rows[32·second + 16·upper + 2·r + odd]: row r + 8·upper of the pair's first (second = 0) or second vector,
        // of the first pair (odd = 0) or the second
        for (int pair = 0; pair < (both ? 2 : 1); pair++) {
            int oa = outOff + (pair == 0 ? ta0 : tb0) * outStride, ob = outOff + (pair == 0 ? ta1 : tb1) * outStride;
            for (int r = 0; r < ROWS; r++) {
                int at = 16 * (r >> 3) + 2 * (r & 7) + pair;
                out[oa + r] = rows[at];
                out[ob + r] = rows[32 + at];
            }
        }
    }

    /**
     * Groups g and h (any other group, or g again) at once, each multiplier broadcast once for both: out[outOff ..] gets
     * g's 16 rows, out[outH ..] h's.
     *
     * <p>One inner loop per sub-block covers both halves (vector i of each per step, each half with its own 16-bit sums):
     * with a loop per half, C2 checked the bounds of the loop's multipliers and quants (~40 instructions) on entering
     * each half and paid the loop's counting on 4 steps instead of 8 (C2 does not unroll these loops: their bodies are
     * over its limit; written out in full, C2 hoisted every load to the top of the sub-block and spilled ~110 vectors per
     * sub-block). The sums per sub-block are exact integers, so their order does not change a bit.
     */
    private void pair16(int g, int h, short[] act, int vOff, float[] dx, int dOff, float[] out, int outOff, int outH) {
        short[] qs = quants;
        float[] sc = scales;
        int subs = cols / SUB, sub0 = (firstGroup + g) * subs, sub1 = (firstGroup + h) * subs;
        int q0 = sub0 * QUANT_SHORTS, q1 = sub1 * QUANT_SHORTS, s0 = sub0 * ROWS, s1 = sub1 * ROWS;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int j = 0; j < subs; j++) {
            int qp = q0 + j * QUANT_SHORTS, qq = q1 + j * QUANT_SHORTS, o0 = vOff + j * 2 * HALF_MULTIPLIERS;
            int o1 = o0 + HALF_MULTIPLIERS, qp1 = qp + 4 * 16, qq1 = qq + 4 * 16;
            // the offsets −32·Σhi and −32·Σlo of each half start its sums: 16-bit sums of g (v) and h (u), per half
            ShortVector hv = ShortVector.broadcast(S, act[o0]), lv = ShortVector.broadcast(S, act[o0 + 1]), hu = hv, lu = lv;
            ShortVector hv1 = ShortVector.broadcast(S, act[o1]), lv1 = ShortVector.broadcast(S, act[o1 + 1]), hu1 = hv1, lu1 = lv1;
            for (int i = 0; i < 4; i++) {
                // vector i of each half: one pass over both halves leaves one inner loop (and one set of bounds checks) per sub-block
                int k = 16 * i, m = o0 + 2 + 4 * i, n = o1 + 2 + 4 * i;
                ShortVector v = ShortVector.fromArray(S, qs, qp + k), u = ShortVector.fromArray(S, qs, qq + k);
                ShortVector xh = ShortVector.broadcast(S, act[m]), xl = ShortVector.broadcast(S, act[m + 1]);
                hv = hv.add(v.mul(xh));
                hu = hu.add(u.mul(xh));
                lv = lv.add(v.mul(xl));
                lu = lu.add(u.mul(xl));
                ShortVector v6 = v.lanewise(VectorOperators.LSHR, 6), u6 = u.lanewise(VectorOperators.LSHR, 6);
                xh = ShortVector.broadcast(S, act[m + 2]);
                xl = ShortVector.broadcast(S, act[m + 3]);
                hv = hv.add(v6.mul(xh));
                hu = hu.add(u6.mul(xh));
                lv = lv.add(v6.mul(xl));
                lu = lu.add(u6.mul(xl));
                v = ShortVector.fromArray(S, qs, qp1 + k);
                u = ShortVector.fromArray(S, qs, qq1 + k);
                xh = ShortVector.broadcast(S, act[n]);
                xl = ShortVector.broadcast(S, act[n + 1]);
                hv1 = hv1.add(v.mul(xh));
                hu1 = hu1.add(u.mul(xh));
                lv1 = lv1.add(v.mul(xl));
                lu1 = lu1.add(u.mul(xl));
                v6 = v.lanewise(VectorOperators.LSHR, 6);
                u6 = u.lanewise(VectorOperators.LSHR, 6);
                xh = ShortVector.broadcast(S, act[n + 2]);
                xl = ShortVector.broadcast(S, act[n + 3]);
                hv1 = hv1.add(v6.mul(xh));
                hu1 = hu1.add(u6.mul(xh));
                lv1 = lv1.add(v6.mul(xl));
                lu1 = lu1.add(u6.mul(xl));
            }
            // 256·hi + lo per row: rows 0-7 in the low halves of the 32-bit lanes, rows 8-15 in the high halves
            IntVector hi = hv.reinterpretAsInts(), lo = lv.reinterpretAsInts(), hi2 = hu.reinterpretAsInts(), lo2 = lu.reinterpretAsInts();
            IntVector t0 = hi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8).add(lo.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector t1 = hi.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8).add(lo.lanewise(VectorOperators.ASHR, 16));
            IntVector r0 = hi2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8).add(lo2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector r1 = hi2.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8).add(lo2.lanewise(VectorOperators.ASHR, 16));
            hi = hv1.reinterpretAsInts();
            lo = lv1.reinterpretAsInts();
            hi2 = hu1.reinterpretAsInts();
            lo2 = lu1.reinterpretAsInts();
            t0 = t0.add(hi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8)).add(lo.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            t1 = t1.add(hi.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8)).add(lo.lanewise(VectorOperators.ASHR, 16));
            r0 = r0.add(hi2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8)).add(lo2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            r1 = r1.add(hi2.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8)).add(lo2.lanewise(VectorOperators.ASHR, 16));
            float d = dx[dOff + (j >> 1)]; // the activation's scale: one per 32 values, two sub-blocks
            int p = s0 + j * ROWS, q = s1 + j * ROWS;
            // (scale·d)·t rather than t·(scale·d), the same product: on a receiver whose class C2 knows while parsing (a
            // load, not a conversion's result) it boxed none of the sums on the heap; the other way round it allocated
            // all four sums at every sub-block (seen in the machine code of a speed run)
            a0 = FloatVector.fromArray(F, sc, p).mul(d).fma((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0), a0);
            a1 = FloatVector.fromArray(F, sc, p + 8).mul(d).fma((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0), a1);
            c0 = FloatVector.fromArray(F, sc, q).mul(d).fma((FloatVector) r0.convertShape(VectorOperators.I2F, F, 0), c0);
            c1 = FloatVector.fromArray(F, sc, q + 8).mul(d).fma((FloatVector) r1.convertShape(VectorOperators.I2F, F, 0), c1);
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + 8);
        c0.intoArray(out, outH);
        c1.intoArray(out, outH + 8);
    }

    /**
     * {@link #pair16} for activations rounded to 8 bits: one product per quant. Σ(q − 32)·q8 over a half sub-block stays
     * within ±32512 (|q8| ≤ 127), so the 16-bit sums are exact.
     */
    private void pair8(int g, int h, short[] act, int vOff, float[] dx, int dOff, float[] out, int outOff, int outH) {
        short[] qs = quants;
        float[] sc = scales;
        int subs = cols / SUB, sub0 = (firstGroup + g) * subs, sub1 = (firstGroup + h) * subs;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int j = 0; j < subs; j++) {
            int qp = quantAt(sub0 + j), qq = quantAt(sub1 + j);
            IntVector t0 = IntVector.zero(I), t1 = t0, r0 = t0, r1 = t0;
            for (int half = 0; half < 2; half++) {
                int o = vOff + j * 2 * HALF_MULTIPLIERS_8 + half * HALF_MULTIPLIERS_8;
                ShortVector sv = ShortVector.broadcast(S, act[o]), su = sv;
                for (int i = 0; i < 4; i++) {
                    int k = 16 * (4 * half + i), m = o + 1 + 2 * i;
                    ShortVector v = ShortVector.fromArray(S, qs, qp + k), u = ShortVector.fromArray(S, qs, qq + k);
                    ShortVector xa = ShortVector.broadcast(S, act[m]), xb = ShortVector.broadcast(S, act[m + 1]);
                    sv = sv.add(v.mul(xa)).add(v.lanewise(VectorOperators.LSHR, 6).mul(xb));
                    su = su.add(u.mul(xa)).add(u.lanewise(VectorOperators.LSHR, 6).mul(xb));
                }
                IntVector si = sv.reinterpretAsInts(), ui = su.reinterpretAsInts();
                t0 = t0.add(si.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                t1 = t1.add(si.lanewise(VectorOperators.ASHR, 16));
                r0 = r0.add(ui.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                r1 = r1.add(ui.lanewise(VectorOperators.ASHR, 16));
            }
            float d = dx[dOff + j / 2];
            int p = scaleAt(sub0 + j), q = scaleAt(sub1 + j);
            FloatVector s0 = FloatVector.fromArray(F, sc, p), s1 = FloatVector.fromArray(F, sc, p + 8);
            FloatVector z0 = FloatVector.fromArray(F, sc, q), z1 = FloatVector.fromArray(F, sc, q + 8);
            if (compact) { // s and z hold the super-blocks' d: the sub-blocks' scales are d·scale
                int up = 8 * (j & 1);
                IntVector hg = ShortVector.fromArray(S, qs, headAt(sub0 + j)).reinterpretAsInts(), hh = ShortVector.fromArray(S, qs, headAt(sub1 + j)).reinterpretAsInts();
                s0 = ((FloatVector) hg.lanewise(VectorOperators.LSHL, 24 - up).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(s0);
                s1 = ((FloatVector) hg.lanewise(VectorOperators.LSHL, 8 - up).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(s1);
                z0 = ((FloatVector) hh.lanewise(VectorOperators.LSHL, 24 - up).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(z0);
                z1 = ((FloatVector) hh.lanewise(VectorOperators.LSHL, 8 - up).lanewise(VectorOperators.ASHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(z1);
            }
            a0 = ((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0)).fma(s0.mul(d), a0);
            a1 = ((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0)).fma(s1.mul(d), a1);
            c0 = ((FloatVector) r0.convertShape(VectorOperators.I2F, F, 0)).fma(z0.mul(d), c0);
            c1 = ((FloatVector) r1.convertShape(VectorOperators.I2F, F, 0)).fma(z1.mul(d), c1);
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + 8);
        c0.intoArray(out, outH);
        c1.intoArray(out, outH + 8);
    }

    /** This thread's arrays for {@link #widened}: quants and scales of two groups in the float-scale layout. */
    private static final ThreadLocal<short[]> WIDENED_QUANTS = new ThreadLocal<>();
    private static final ThreadLocal<float[]> WIDENED_SCALES = new ThreadLocal<>();

    /**
     * Groups g and h of this compact copy in the float-scale layout, as groups 0 and 1 of a copy on this thread's arrays
     * (valid until the next call): the quants as they are, each scale d·scale by the packer's float product.
     */
    private PackedQ6 widened(int g, int h) {
        int subs = cols / SUB;
        short[] wq = ThreadArrays.shorts(WIDENED_QUANTS, 2 * subs * QUANT_SHORTS);
        float[] ws = ThreadArrays.floats(WIDENED_SCALES, 2 * subs * ROWS);
        for (int k = 0; k < 2; k++) {
            int sub0 = (firstGroup + (k == 0 ? g : h)) * subs;
            for (int j = 0; j < subs; j++) {
                int sub = sub0 + j, at = quantAt(sub), to = k * subs + j, head = headAt(sub);
                System.arraycopy(quants, at, wq, to * QUANT_SHORTS, QUANT_SHORTS);
                for (int r = 0; r < ROWS; r++) {
                    byte scale = (byte) (quants[head + PackedQ4.lane(r)] >> 8 * (sub & 1));
                    ws[to * ROWS + r] = scales[scaleAt(sub) + r] * scale;
                }
            }
        }
        return new PackedQ6(wq, ws, 0, 2 * ROWS, cols, false);
    }
}
