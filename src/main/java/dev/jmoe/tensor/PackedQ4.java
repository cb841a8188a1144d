package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A Q4_0 or Q4_K matrix regrouped 16 rows at a time so that one 16-lane vector of 16-bit integers holds the
 * same two quant bytes of 16 rows, for integer matrix-vector products ({@link Kernels#matVec} takes this path
 * when {@link Matrix#packed} is set).
 *
 * <p>Why: a row-by-row dot spends most of its time turning nibbles into floats and handling each block's
 * scale. Here a block of 32 values of 16 rows is 16 float scales (Q4_K: then 16 float offsets) and eight
 * 16-lane vectors of shorts; each vector lane holds four nibbles of one row, and four 16-bit multiplies per vector
 * (the nibbles shifted down by 0, 4, 8, 12 bits, times activations arranged so the neighbouring nibbles
 * cancel) give 64 products at once. The scales of 16 rows are one vector load, so a block costs a few
 * instructions for 16 rows.
 *
 * <p>The sums are exact integers computed modulo 2^16: a block's Σ(q−8)·x stays within the 16-bit range, so
 * wrapping in the middle of the sum does not matter. A Q4_K sub-block of 32 values is w = d·sc·q − dmin·m
 * with q in [0, 15]; its dot is d·sc·Σ(q−8)·x + (8·d·sc − dmin·m)·Σx, so it is stored as a Q4_0-like block
 * with scale d·sc plus the per-row offset 8·d·sc − dmin·m, which multiplies the block's activation sum.
 * Activations are integers per block of 32:
 * <ul>
 *   <li>{@link Precision#BITS_8}: llama.cpp's rounding (Q8_0 per 32 values for Q4_0, Q8_K per 256 for Q4_K;
 *       used with {@link Kernels#withActivationQuantization(boolean, Runnable)}); the integer sums are the ones ggml's dots form.</li>
 *   <li>{@link Precision#BITS_16}: x rounded to ±32512 steps of its block's maximum and split into a high and a
 *       low byte, two products per weight; off from float activations by about 1e-5 of a block's largest
 *       product, well inside the conformance tolerance, and still faster than the float path.</li>
 * </ul>
 * Rows of the original layout stay available in the {@link Matrix} (the scalar reference reads them).
 *
 * <p>The copy lives in Java arrays, not off-heap memory: C2 compiles the int-indexed array loads of the inner loop
 * without the long-offset bounds checks that {@code MemorySegment} loads there kept (a pre- and post-loop with
 * checks around every 8-step inner loop); the same kernel over arrays measured 15-40% faster, in and out of cache.
 */
public final class PackedQ4 implements PackedMatrix {
    private static final int QK = 32;
    /** Shorts of the quants of one block of a group: 16 rows × 8 shorts. */
    private static final int QUANT_SHORTS = ROWS * 8;
    /** Compact Q4_K: shorts at the head of each block of a group, one per row (in its lane): the file's 6-bit sc and m as sc | m << 8. */
    private static final int K_HEAD = ROWS;
    /** Q4_K: 32-value blocks per 256-value super-block, which share d and dmin. */
    private static final int K_BLOCKS = KQuant.QK_K / QK;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    // group8Quad's 512-bit vectors: it calls lanewise(op, ...) and stores through intoMemorySegment, as PackedQ8's 512-bit
    // kernels do, so that the JDK's shared dispatch is profiled at its own call sites (docs/speed.md, session 30)
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Long> L16 = LongVector.SPECIES_512;
    private static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    /** Int lane i of a 512-bit vector from lane i / 2 (a 256-bit vector's lanes, each twice); PackedQ6's pass uses it too. */
    static final VectorShuffle<Integer> DUPLICATE = VectorShuffle.fromOp(IntVector.SPECIES_512, i -> i / 2);
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_256;
    /** A block's 32 bytes with its two halves zipped: byte 2i from byte i, byte 2i + 1 from byte 16 + i ({@link Activation#layOutNibbles}). */
    private static final VectorShuffle<Byte> ZIP_HALVES = VectorShuffle.fromOp(B, j -> j % 2 == 0 ? j / 2 : 16 + j / 2);
    /** Lane i from lane i − 1 (lane 0's value is not used). */
    private static final VectorShuffle<Short> PREVIOUS = VectorShuffle.fromOp(S, i -> Math.max(i - 1, 0));
    /** Every lane but each step's first of four, which takes its value as it is. */
    private static final VectorMask<Short> NOT_STEP_HEAD = VectorMask.fromLong(S, 0xEEEEL);

    /** How activations are rounded to integers and laid out for the packed products. */
    enum Precision {
        /** Q4 kernels, 8-bit activations (llama.cpp's rounding). */
        BITS_8(33, true),
        /** Q4 kernels, 16-bit activations. */
        BITS_16(66, false),
        /** {@link PackedQ6}'s kernels, 8-bit activations (Q8_K): per 16 values two halves of 1 + 8 multipliers. */
        Q6_BITS_8(36, true),
        /** {@link PackedQ6}'s kernels, 16-bit activations: per 16 values two halves of 2 + 16 multipliers. */
        Q6_BITS_16(72, false),
        /** {@link PackedQ8}'s kernels: the float activations as they are ({@link Activation#f}). */
        FLOAT(0, false),
        /**
         * {@link PackedQ8}'s kernels, 8-bit activations (Q8_0): each block's rounded values as floats ({@link Activation#f},
         * integers, so the kernels' float sums of four products are the exact integer sums llama.cpp forms) and its scale
         * ({@link Activation#d}).
         */
        Q8_FLOATS(0, true);

        /** Shorts of prepared activation per block of 32 values: one per multiplier, which the kernels broadcast to 16 lanes (0: {@link #floats}). */
        final int blockShorts;
        /** Whether the activations are rounded to 8 bits by a {@link QuantizedActivation.Scheme}. */
        final boolean rounded;

        Precision(int multipliers, boolean rounded) {
            this.blockShorts = multipliers;
            this.rounded = rounded;
        }

        /** Whether the activations are laid out as floats ({@link Activation#f}, {@link PackedQ8}'s kernels) rather than shorts. */
        boolean floats() {
            return blockShorts == 0;
        }
    }

    /**
     * Per block of each group: 128 shorts of quants (8 vectors of 16 lanes); compact Q4_K: after {@link #K_HEAD} shorts of sc
     * and m; Q4_0 with {@link #halfHeads}: after {@link #K_HEAD} shorts of half scales.
     */
    private final short[] quants;
    /** Per block of each group: 16 scales, then for Q4_K 16 offsets; compact Q4_K: per super-block of each group, 16 d then 16 dmin. */
    private final float[] scales;
    /** The first group of this copy in the arrays (a row slice shares them). */
    private final int firstGroup;
    private final int rows, cols;
    /** Q4_K: each block carries per-row offsets (the mins) after its scales. */
    private final boolean offsets;
    /**
     * Q4_K laid out for 8-bit activations ({@link Packing#pack}): each block keeps the file's sc and m (16 bytes per 16
     * rows, at its head) and each super-block its d and dmin as floats, and the 8-bit kernels widen them to the scales
     * and offsets in line: 1.06× the file's bytes instead of 1.33×. Those kernels are bound by memory, the 16-bit ones
     * by their arithmetic, which the widening would add to (and written into {@link #group16Pair}, it made C2 box its
     * vectors in 4 of 5 runs): so only copies for 8-bit products take this layout.
     */
    private final boolean compact;
    /** Floats per block of a group in {@link #scales} (16, or 32 with offsets); compact: per super-block. */
    private final int blockFloats;
    /** Shorts per block of a group in {@link #quants} and where its quants start among them: 128 and 0, compact 144 and 16. */
    private final int blockShorts, quantHead;
    /** Block B's floats in {@link #scales} start at (B >>> scaleShift)·blockFloats: 0, compact 3 (per super-block). */
    private final int scaleShift;
    /**
     * Q4_0 copies for 8-bit activations: each block's 16 scales also sit at its head in {@link #quants}, as the file's
     * halves (row r at short {@link #lane}(r)). The 8-bit matrix-vector kernel ({@link #group8}) widens these in line and
     * reads no float scale: a decode step then streams the file's bytes per weight instead of 1.11×, and as one stream.
     * With the halves in a run of their own after all the quants (sessions 38-40), each thread read two streams, and a
     * second stream at an eighth of the first's rate cost a plain two-thread read ~15% of its rate (AMD EPYC, 2026-12-07).
     * The batch kernels keep the float scales (a widening pass per group cost prompts more than it saved, docs/speed.md,
     * session 37). A copy with an infinite or NaN scale has no heads (the lane widening would make it finite).
     */
    private final boolean halfHeads;

    private PackedQ4(short[] quants, float[] scales, int firstGroup, int rows, int cols, boolean offsets, boolean compact) {
        this(quants, scales, firstGroup, rows, cols, offsets, compact, false);
    }

    private PackedQ4(short[] quants, float[] scales, int firstGroup, int rows, int cols, boolean offsets, boolean compact, boolean halfHeads) {
        this.halfHeads = halfHeads;
        this.quants = quants;
        this.scales = scales;
        this.firstGroup = firstGroup;
        this.rows = rows;
        this.cols = cols;
        this.offsets = offsets;
        this.compact = compact;
        this.blockFloats = blockFloats(offsets);
        this.blockShorts = blockShorts(compact || halfHeads);
        this.quantHead = compact || halfHeads ? K_HEAD : 0;
        this.scaleShift = compact ? Integer.numberOfTrailingZeros(K_BLOCKS) : 0;
    }

    /** Shorts per block of a group: 128 quants, after a head of {@link #K_HEAD} ({@code headed}: compact Q4_K, {@link #halfHeads}). */
    private static int blockShorts(boolean headed) {
        return headed ? K_HEAD + QUANT_SHORTS : QUANT_SHORTS;
    }

    private static int blockFloats(boolean offsets) {
        return offsets ? 2 * ROWS : ROWS;
    }

    /** Whether {@code m} can be packed: Q4_0 or Q4_K with whole groups of 16 rows, and its quants fit one Java array. */
    public static boolean canPack(Matrix m) {
        return m.rows() % ROWS == 0 && (long) m.rows() * m.cols() / 4 <= Integer.MAX_VALUE - 64
                && (m.type() == GgmlType.Q4_0 && m.cols() % QK == 0 || m.type() == GgmlType.Q4_K && m.cols() % KQuant.QK_K == 0);
    }

    /** Bytes a packed copy of {@code m} takes ({@link #canPack} must hold): quants plus float scales (and offsets) per block. */
    public static long packedBytes(Matrix m) {
        return packedBytes(m, false);
    }

    /** Bytes a packed copy of {@code m} takes, laid out for 8-bit activations ({@link Packing#pack}) or not. */
    static long packedBytes(Matrix m, boolean forBits8) {
        return bytes(m.rows(), m.cols(), m.type() == GgmlType.Q4_K, compact(m, forBits8), halfHeads(m, forBits8));
    }

    /** Whether a copy of {@code m} for 8-bit activations ({@code forBits8}) takes the compact Q4_K layout. */
    private static boolean compact(Matrix m, boolean forBits8) {
        return forBits8 && m.type() == GgmlType.Q4_K;
    }

    /** Whether a copy of {@code m} for 8-bit activations ({@code forBits8}) keeps half scales at its blocks' heads ({@link #halfHeads}). */
    private static boolean halfHeads(Matrix m, boolean forBits8) {
        return forBits8 && m.type() == GgmlType.Q4_0;
    }

    private static long bytes(int rows, int cols, boolean offsets, boolean compact, boolean halfHeads) {
        long blocks = (long) rows / ROWS * (cols / QK);
        return blocks * blockShorts(compact || halfHeads) * 2L + (compact ? blocks / K_BLOCKS : blocks) * blockFloats(offsets) * 4L;
    }

    /** Regroups {@code m} on this thread; {@link #canPack} must hold. */
    public static PackedQ4 pack(Matrix m) {
        return pack(m, null);
    }

    /**
     * As {@link #pack(Matrix)}, with the groups split over {@code pool} (null: this thread). Experts are packed on
     * first use, in the middle of a prompt, where the pool's other threads would otherwise wait.
     */
    public static PackedQ4 pack(Matrix m, Parallel pool) {
        return pack(m, pool, false);
    }

    /**
     * As {@link #pack(Matrix, Parallel)}; {@code forBits8}: laid out for 8-bit activations (Q4_K {@link #compact}, Q4_0
     * {@link #halfHeads}).
     */
    static PackedQ4 pack(Matrix m, Parallel pool, boolean forBits8) {
        if (!canPack(m)) {
            throw new IllegalArgumentException("only Q4_0 and Q4_K matrices with a multiple of " + ROWS + " rows can be packed, got " + m.type() + " "
                    + m.rows() + "x" + m.cols());
        }
        boolean c = compact(m, forBits8), heads = halfHeads(m, forBits8);
        PackedQ4 packed = packInto(m, new short[quantShorts(m, c || heads)], new float[scaleFloats(m, c)], pool, c, heads);
        if (!heads) return packed;
        for (float scale : packed.scales) {
            // the lane widening would make an infinite or NaN scale finite: such a copy takes no heads
            if (!Float.isFinite(scale)) return packInto(m, new short[quantShorts(m, false)], new float[scaleFloats(m, false)], pool, false, false);
        }
        return packed;
    }

    /** Length of the quant array a packed copy of {@code m} needs ({@link #canPack} must hold). */
    static int quantShorts(Matrix m) {
        return quantShorts(m, false);
    }

    private static int quantShorts(Matrix m, boolean headed) {
        return m.rows() / ROWS * (m.cols() / QK) * blockShorts(headed);
    }

    /** Length of the scale array a packed copy of {@code m} needs ({@link #canPack} must hold). */
    static int scaleFloats(Matrix m) {
        return scaleFloats(m, false);
    }

    private static int scaleFloats(Matrix m, boolean compact) {
        int blocks = m.rows() / ROWS * (m.cols() / QK);
        return (compact ? blocks / K_BLOCKS : blocks) * blockFloats(m.type() == GgmlType.Q4_K);
    }

    /**
     * As {@link #pack(Matrix, Parallel)}, into arrays the caller owns and reuses (a fast-memory slot): at least
     * {@link #quantShorts} and {@link #scaleFloats} long. The copy is valid until the caller overwrites them.
     */
    static PackedQ4 packInto(Matrix m, short[] quants, float[] scales, Parallel pool) {
        return packInto(m, quants, scales, pool, false, false);
    }

    private static PackedQ4 packInto(Matrix m, short[] quants, float[] scales, Parallel pool, boolean compact, boolean halfHeads) {
        if (!canPack(m)) throw new IllegalArgumentException("cannot pack a " + m.type() + " " + m.rows() + "x" + m.cols() + " matrix as Q4");
        if (quants.length < quantShorts(m, compact || halfHeads) || scales.length < scaleFloats(m, compact)) throw new IllegalArgumentException("arrays too small for the packed copy");
        boolean k = m.type() == GgmlType.Q4_K;
        int groups = m.rows() / ROWS;
        Parallel.RangeTask task = (g0, g1) -> packGroups(m, k, compact, halfHeads, quants, scales, g0, g1);
        if (pool == null || groups < 2) task.run(0, groups);
        else pool.forRange(groups, 1, task);
        return new PackedQ4(quants, scales, 0, m.rows(), m.cols(), k, compact, halfHeads);
    }

    private static final VarHandle SHORT_LE = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    /** Groups [g0, g1) of {@code m}, through a heap copy of one group's rows at a time (element-wise segment accesses cost several times more). */
    private static void packGroups(Matrix m, boolean k, boolean compact, boolean halfHeads, short[] quants, float[] scales, int g0, int g1) {
        int nb = m.cols() / QK, rowBytes = (int) m.rowBytes();
        byte[] in = new byte[ROWS * rowBytes];
        for (int g = g0; g < g1; g++) {
            MemorySegment.copy(m.data(), ValueLayout.JAVA_BYTE, (long) g * ROWS * rowBytes, in, 0, in.length);
            int block = g * nb;
            for (int r = 0; r < ROWS; r++) {
                if (k) packRowQ4_K(in, r * rowBytes, nb, r, quants, scales, block, compact);
                else packRowQ4_0(in, r * rowBytes, nb, r, quants, scales, block, halfHeads);
            }
        }
    }

    /**
     * The 16-bit lane of row r of a group: rows 0-7 in the even lanes, rows 8-15 in the odd ones, so that the low and
     * high halves of each 32-bit lane are rows r and r + 8, and widening the 16-bit sums to rows 0-7 and 8-15 is two
     * shifts per half (a first/second-half split compiles to byte shuffles and blends on AVX2).
     */
    static int lane(int r) {
        return r < ROWS / 2 ? 2 * r : 2 * (r - ROWS / 2) + 1;
    }

    /** Row r of a group, Q4_0: each block's scale (also as the file's half at the block's head: {@code halfHeads}), and its eight quant byte pairs to their lanes. */
    private static void packRowQ4_0(byte[] in, int off, int nb, int r, short[] quants, float[] scales, int block, boolean halfHeads) {
        for (int b = 0; b < nb; b++) {
            int sp = off + b * Q4_0Kernel.BLOCK, qo = (block + b) * blockShorts(halfHeads) + lane(r);
            short half = (short) SHORT_LE.get(in, sp);
            scales[(block + b) * ROWS + r] = Float.float16ToFloat(half);
            if (halfHeads) {
                quants[qo] = half;
                qo += K_HEAD;
            }
            for (int q = 0; q < 8; q++) quants[qo + 16 * q] = (short) SHORT_LE.get(in, sp + 2 + 2 * q);
        }
    }

    /**
     * Row r of a group, Q4_K, as 32-value blocks: scale d·sc, offset 8·d·sc − dmin·m, and the quants re-paired from
     * Q4_K's layout (byte l of a 64-value chunk: value l low, value 32 + l high) into Q4_0's (byte t: value t low,
     * value t + 16 high). Compact: d and dmin per super-block and sc | m << 8 at each block's head instead, from which
     * the kernels compute the same scale and offset, by the same operations.
     */
    private static void packRowQ4_K(byte[] in, int off, int nb, int r, short[] quants, float[] scales, int block, boolean compact) {
        int superBytes = GgmlType.Q4_K.blockBytes();
        for (int s = 0; s < nb / 8; s++) {
            int p = off + s * superBytes;
            float d = Float.float16ToFloat((short) SHORT_LE.get(in, p)), dmin = Float.float16ToFloat((short) SHORT_LE.get(in, p + 2));
            if (compact) {
                scales[(block / K_BLOCKS + s) * 2 * ROWS + r] = d;
                scales[(block / K_BLOCKS + s) * 2 * ROWS + ROWS + r] = dmin;
            }
            for (int j = 0; j < 8; j++) {
                // ggml's get_scale_min_k4 on the 12 bytes at p + 4
                int sc, mn;
                if (j < 4) {
                    sc = in[p + 4 + j] & 63;
                    mn = in[p + 8 + j] & 63;
                } else {
                    sc = (in[p + 8 + j] & 0xF) | ((in[p + j] & 0xFF) >>> 6) << 4;
                    mn = (in[p + 8 + j] & 0xFF) >>> 4 | ((in[p + 4 + j] & 0xFF) >>> 6) << 4;
                }
                int b = block + 8 * s + j, qo = b * blockShorts(compact) + lane(r);
                if (compact) {
                    quants[qo] = (short) (sc | mn << 8);
                    qo += K_HEAD;
                } else {
                    storeScaleAndOffset(scales, b * 2 * ROWS, r, d, dmin, sc, mn);
                }
                int q = p + 16 + 32 * (j / 2), shift = 4 * (j % 2);
                for (int t = 0; t < 16; t += 2) {
                    int b0 = (in[q + t] >>> shift) & 0xF | ((in[q + t + 16] >>> shift) & 0xF) << 4;
                    int b1 = (in[q + t + 1] >>> shift) & 0xF | ((in[q + t + 17] >>> shift) & 0xF) << 4;
                    quants[qo + 8 * t] = (short) (b0 | b1 << 8);
                }
            }
        }
    }

    /**
     * Row r's scale d·sc and offset 8·d·sc − dmin·m of a Q4_K block of the float-scale layout, at scales[at + r] and
     * scales[at + 16 + r]. The compact kernels widen sc and m to the same values by the same operations.
     */
    private static void storeScaleAndOffset(float[] scales, int at, int r, float d, float dmin, int sc, int mn) {
        float scale = d * sc;
        scales[at + r] = scale;
        scales[at + ROWS + r] = 8 * scale - dmin * mn;
    }

    @Override public GgmlType type() { return offsets ? GgmlType.Q4_K : GgmlType.Q4_0; }
    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long byteSize() { return bytes(rows, cols, offsets, compact, halfHeads); }

    @Override
    public Precision precision(QuantizedActivation.Scheme rounding) {
        return rounding == null ? Precision.BITS_16 : Precision.BITS_8;
    }

    @Override
    public PackedQ4 rows(int first, int count) {
        if (first % ROWS != 0 || count % ROWS != 0) return null;
        return new PackedQ4(quants, scales, firstGroup + first / ROWS, count, cols, offsets, compact, halfHeads);
    }

    /**
     * The weights of group g's 16 rows in columns [c0, c1) (multiples of 32) as floats, column by column:
     * p[16·(c − c0) + r] is row 16·g + r, column c ({@link FloatGemm#panel16} multiplies such panels). Each value is
     * n·scale + (offset − 8·scale) in one FMA: for Q4_0, whose offset is 0, that is (n − 8)·d rounded once, the
     * value the file's rows decode to.
     */
    @Override
    public void panel(int g, int c0, int c1, float[] p) {
        short[] qs = quants;
        float[] sc = scales;
        int block0 = (firstGroup + g) * (cols / QK);
        for (int b = c0 / QK; b < c1 / QK; b++) {
            int qp = (block0 + b) * blockShorts + quantHead, sp = ((block0 + b) >>> scaleShift) * blockFloats;
            FloatVector s0 = FloatVector.fromArray(F, sc, sp), s1 = FloatVector.fromArray(F, sc, sp + 8);
            if (compact) { // s0 and s1 hold the super-block's d: the block's scales are d·sc
                IntVector km = ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretAsInts();
                s0 = ((FloatVector) km.and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(s0);
                s1 = ((FloatVector) km.lanewise(VectorOperators.LSHR, 16).and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(s1);
            }
            FloatVector m0 = s0.mul(-8f), m1 = s1.mul(-8f);
            if (offsets) {
                FloatVector f0 = FloatVector.fromArray(F, sc, sp + 16), f1 = FloatVector.fromArray(F, sc, sp + 24);
                if (compact) { // f0 and f1 hold the super-block's dmin: the block's offsets are 8·d·sc − dmin·m
                    IntVector km = ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretAsInts();
                    f0 = s0.mul(8f).sub(((FloatVector) km.lanewise(VectorOperators.LSHR, 8).and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(f0));
                    f1 = s1.mul(8f).sub(((FloatVector) km.lanewise(VectorOperators.LSHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(f1));
                }
                m0 = m0.add(f0);
                m1 = m1.add(f1);
            }
            int at = (QK * b - c0) * ROWS;
            for (int s = 0; s < 8; s++) {
                // an int lane holds the shorts of rows j (low half) and j + 8 (high half); nibble q of a short is
                // value 2s, 2s + 16, 2s + 1, 2s + 17 of the block for q = 0, 1, 2, 3
                IntVector w = ShortVector.fromArray(S, qs, qp + 16 * s).reinterpretAsInts();
                for (int q = 0; q < 4; q++) {
                    int o = at + (2 * s + (q & 1) * 16 + (q >> 1)) * ROWS;
                    IntVector lo = w.lanewise(VectorOperators.LSHR, 4 * q).and(0xF);
                    IntVector hi = w.lanewise(VectorOperators.LSHR, 16 + 4 * q).and(0xF);
                    ((FloatVector) lo.convertShape(VectorOperators.I2F, F, 0)).fma(s0, m0).intoArray(p, o);
                    ((FloatVector) hi.convertShape(VectorOperators.I2F, F, 0)).fma(s1, m1).intoArray(p, o + 8);
                }
            }
        }
    }

    // ---- activations -------------------------------------------------------------------------------------

    /**
     * Activation vectors laid out for the kernels: shorts per block, one float scale per block, and per block the
     * sum of the block's rounded values times its scale (what Q4_K's offsets multiply).
     */
    static final class Activation {
        Precision precision;
        int cols;
        short[] v = new short[0];
        float[] d = new float[0];
        float[] sums = new float[0];
        /** {@link Precision#FLOAT}: the vectors' floats, {@link #stride} apart. */
        float[] f = new float[0];
        private byte[] q8 = new byte[0];
        private float[] d8 = new float[0];
        /**
         * Batches of 8-bit activations ({@link Precision#rounded}), by pairs of vectors (2i, 2i + 1; an odd batch's last
         * vector paired with itself): a pair's multiplier for a value is one int, the first vector's in the low half. Per
         * two pairs (2j, 2j + 1) and per multiplier of a block, both pairs' ints as one long, the first pair's in the low
         * half: {@link #group8Quad}, {@link #group8Pairs} and PackedQ6's group8Pairs broadcast it to 512 bits, the first
         * pair's int in the even int lanes and the second's in the odd ones (one load, where 16-bit broadcasts also take a
         * shuffle).
         */
        long[] quads = new long[0];
        /** The batch {@link #quads} were laid out for (0: none; laying out anything anew forgets them). */
        int pairedBatch;

        /** Shorts per vector of x (floats, for {@link Precision#floats}). */
        int stride() {
            return precision.floats() ? cols : cols / QK * precision.blockShorts;
        }

        /**
         * Lays out {@code batch} vectors x[b·xStride + xOff ..] of {@code cols} values for kernels of {@code precision}:
         * rounded as {@code rounding} does (Q8_0 or Q8_K, 8 bits) or, for null, to 16 bits per block of 32.
         */
        void prepare(Precision precision, QuantizedActivation.Scheme rounding, float[] x, int xOff, int xStride, int batch, int cols) {
            size(precision, rounding, cols, batch);
            int nb = cols / QK, stride = stride();
            for (int b = 0; b < batch; b++) blocks(rounding, x, xOff + b * xStride, 0, nb, b * stride, b * nb);
            if (precision.rounded && !precision.floats() && batch >= 2) layOutQuads(batch, stride);
        }

        /**
         * {@link #quads} from the {@code batch} vectors laid out in {@link #v}, padded with zero pairs (and zero scales
         * and sums for the tokens past the batch) to whole quads of pairs: {@link #productBatch} can then run a batch's
         * last six or seven vectors as one pass for eight, its padding rows computed and thrown away.
         */
        private void layOutQuads(int batch, int stride) {
            int count = (batch + 1) / 2, padded = paddedPairs(batch);
            if (quads.length < padded / 2 * stride) quads = new long[padded / 2 * stride];
            for (int q = 0; q < padded / 2; q++) {
                int at = q * stride;
                for (int i = 0; i < stride; i++) quads[at + i] = pairAt(2 * q, i, count, batch, stride) & 0xFFFFFFFFL | (long) pairAt(2 * q + 1, i, count, batch, stride) << 32;
            }
            int nb = cols / QK;
            java.util.Arrays.fill(d, batch * nb, 2 * padded * nb, 0f);
            java.util.Arrays.fill(sums, batch * nb, 2 * padded * nb, 0f);
            pairedBatch = batch;
        }

        /** Pair p's multiplier int at short i of a vector: vector 2p's in the low half, 2p + 1's (or 2p's again past the batch) in the high; 0 past the pairs. */
        private int pairAt(int p, int i, int count, int batch, int stride) {
            if (p >= count) return 0;
            return (v[2 * p * stride + i] & 0xFFFF) | v[Math.min(2 * p + 1, batch - 1) * stride + i] << 16;
        }

        /** Pairs of a batch rounded up to whole quads (four pairs, eight vectors). */
        static int paddedPairs(int batch) {
            return ((batch + 1) / 2 + 3) / 4 * 4;
        }

        /**
         * Makes room for one vector of {@code cols} values, to be laid out by {@link #prepareBlocks} (a product can
         * then lay out each range of values as soon as its threads have computed them).
         */
        void size(Precision precision, QuantizedActivation.Scheme rounding, int cols) {
            size(precision, rounding, cols, 1);
        }

        /**
         * Blocks [b0, b1) of 32 values of the vector x[xOff ..] sized by {@link #size}: threads may lay out disjoint
         * ranges at once (with Q8_K rounding, ranges of whole 256-value blocks, whose values share a scale).
         */
        void prepareBlocks(QuantizedActivation.Scheme rounding, float[] x, int xOff, int b0, int b1) {
            if (rounding == QuantizedActivation.Scheme.Q8_K && (b0 % (KQuant.QK_K / QK) != 0 || b1 % (KQuant.QK_K / QK) != 0)) {
                throw new IllegalArgumentException("Q8_K rounding lays out whole blocks of " + KQuant.QK_K + " values, got blocks " + b0 + ".." + b1);
            }
            blocks(rounding, x, xOff, b0, b1, 0, 0);
        }

        private void size(Precision precision, QuantizedActivation.Scheme rounding, int cols, int batch) {
            if (rounding == QuantizedActivation.Scheme.Q8_K && cols % KQuant.QK_K != 0) {
                throw new IllegalArgumentException("Q8_K rounding needs whole blocks of " + KQuant.QK_K + " values, got " + cols);
            }
            if (precision.rounded != (rounding != null)) {
                throw new IllegalArgumentException(precision + " layout with " + (rounding == null ? "unrounded" : rounding + "-rounded") + " activations");
            }
            this.precision = precision;
            this.cols = cols;
            pairedBatch = 0; // the quads, if any, were laid out from the previous vectors
            int nb = cols / QK;
            int stride = stride();
            if (precision.floats()) {
                if (f.length < stride * batch) f = new float[stride * batch];
            } else if (v.length < stride * batch) {
                v = new short[stride * batch];
            }
            int tokens = 2 * paddedPairs(batch); // room for the padding of a batch's last quad (layOutQuads)
            if (d.length < nb * tokens) {
                d = new float[nb * tokens];
                sums = new float[nb * tokens];
            }
            if (rounding != null && q8.length < cols) {
                q8 = new byte[cols];
                d8 = new float[nb];
            }
        }

        /** Blocks [b0, b1) of x[xOff ..], laid out at vOff / dOff (block b at vOff + b·blockShorts, dOff + b). */
        private void blocks(QuantizedActivation.Scheme rounding, float[] x, int xOff, int b0, int b1, int vOff, int dOff) {
            if (precision == Precision.FLOAT) System.arraycopy(x, xOff + QK * b0, f, vOff + QK * b0, QK * (b1 - b0));
            else if (precision == Precision.Q8_FLOATS) roundToFloats(rounding, x, xOff, b0, b1, vOff, dOff);
            else if (rounding == null) prepare16(x, xOff, b0, b1, vOff, dOff);
            else prepare8(rounding, x, xOff, b0, b1, vOff, dOff);
        }

        /** {@link Precision#Q8_FLOATS}: the blocks rounded as the file's Q8_0 rows round them ({@link Q8_0Kernel#dotQ8}), the integers as floats. */
        private void roundToFloats(QuantizedActivation.Scheme rounding, float[] x, int xOff, int b0, int b1, int vOff, int dOff) {
            if (rounding != QuantizedActivation.Scheme.Q8_0) throw new IllegalArgumentException(precision + " layout with " + rounding + "-rounded activations");
            int v0 = QK * b0, n = QK * (b1 - b0);
            QuantizedActivation.quantizeQ8_0(x, xOff + v0, n, q8, v0, d8, b0);
            for (int i = v0; i < v0 + n; i++) f[vOff + i] = q8[i];
            System.arraycopy(d8, b0, d, dOff + b0, b1 - b0);
        }

        private void prepare8(QuantizedActivation.Scheme rounding, float[] x, int xOff, int b0, int b1, int vOff, int dOff) {
            // Q8_K has one scale per 256 values: each of its 32-value blocks takes that scale
            int per = rounding == QuantizedActivation.Scheme.Q8_K ? KQuant.QK_K / QK : 1;
            int v0 = QK * b0, n = QK * (b1 - b0);
            if (per == 1) QuantizedActivation.quantizeQ8_0(x, xOff + v0, n, q8, v0, d8, b0);
            else QuantizedActivation.quantizeQ8_K(x, xOff + v0, n, q8, v0, d8, b0 / per);
            boolean q6 = precision == Precision.Q6_BITS_8;
            for (int b = b0; b < b1; b++) {
                int o = vOff + b * precision.blockShorts, xo = QK * b;
                // each layout sums the block's values as it reads them (a loop of its own over the bytes took ~0.3 ns per
                // value, two thirds of what the Q4 layout itself takes)
                int sum = q6 ? PackedQ6.layOut8(v, o, q8, xo) : layOutNibbles(o, q8, xo);
                float db = d8[b / per];
                d[dOff + b] = db;
                sums[dOff + b] = sum * db;
            }
        }

        /**
         * Each thread's split halves for {@link #prepare16}, hi and lo (fresh arrays per call were ~3 GB of garbage per
         * speed run).
         */
        private static final ThreadLocal<int[][]> SPLIT = ThreadLocal.withInitial(() -> new int[2][QK]);

        /**
         * Scale amax/32512 per block; x = 256·hi + lo with hi in [−127, 127] and lo in [−127, 128]. The split is
         * computed 8 values at a time (the serial part of a decode step: the other threads wait for it); the values
         * are those of {@link #prepare16Scalar}, which the tests compare it with.
         */
        private void prepare16(float[] x, int xOff, int b0, int b1, int vOff, int dOff) {
            int[][] split = SPLIT.get(); // this thread's own: others may lay out other blocks meanwhile
            int[] hi = split[0], lo = split[1];
            for (int b = b0; b < b1; b++) {
                int xo = xOff + QK * b;
                FloatVector x0 = FloatVector.fromArray(F, x, xo), x1 = FloatVector.fromArray(F, x, xo + 8);
                FloatVector x2 = FloatVector.fromArray(F, x, xo + 16), x3 = FloatVector.fromArray(F, x, xo + 24);
                float amax = x0.abs().max(x1.abs()).max(x2.abs().max(x3.abs())).reduceLanes(VectorOperators.MAX);
                float id = amax != 0 ? 32512f / amax : 0f;
                // integer sums: their order changes nothing
                int sumHi = split(x, xo, id, hi, lo, 0) + split(x, xo, id, hi, lo, 8) + split(x, xo, id, hi, lo, 16) + split(x, xo, id, hi, lo, 24);
                int sumLo = IntVector.fromArray(I, lo, 0).add(IntVector.fromArray(I, lo, 8))
                        .add(IntVector.fromArray(I, lo, 16).add(IntVector.fromArray(I, lo, 24))).reduceLanes(VectorOperators.ADD);
                layOut16(vOff, dOff, b, amax, hi, lo, sumHi, sumLo);
            }
        }

        /**
         * Rounds the 8 values x[xo + at ..] times id to integers (half to even, as Math.rint), splits them into hi[at..]
         * and lo[at..] and returns the sum of the hi parts. It takes and returns no vector: when C2 did not inline a
         * helper that did, every vector passed was boxed on the heap (gigabytes per speed run, JFR).
         */
        private static int split(float[] x, int xo, float id, int[] hi, int[] lo, int at) {
            // adding and subtracting 1.5·2^23 leaves the float rounded to an integer: exact for |v| <= 32512 < 2^22
            FloatVector r = FloatVector.fromArray(F, x, xo + at).mul(id).add(QuantizedActivation.ROUNDING).sub(QuantizedActivation.ROUNDING);
            IntVector v16 = (IntVector) r.convertShape(VectorOperators.F2I, I, 0);
            IntVector h = v16.add(127).lanewise(VectorOperators.ASHR, 8); // floor((v + 127) / 256)
            h.intoArray(hi, at);
            v16.sub(h.lanewise(VectorOperators.LSHL, 8)).intoArray(lo, at);
            return h.reduceLanes(VectorOperators.ADD);
        }

        /** {@link #prepare16} one value at a time over a vector of n values: the definition the vector form must equal. */
        void prepare16Scalar(float[] x, int xOff, int n, int vOff, int dOff) {
            int[] hi = new int[QK], lo = new int[QK];
            for (int b = 0; b < n / QK; b++) {
                int xo = xOff + QK * b;
                float amax = 0;
                for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
                float id = amax != 0 ? 32512f / amax : 0f;
                int sumHi = 0, sumLo = 0;
                for (int j = 0; j < QK; j++) {
                    int v16 = (int) Math.rint(x[xo + j] * id);
                    int h = Math.floorDiv(v16 + 127, 256);
                    hi[j] = h;
                    lo[j] = v16 - 256 * h;
                    sumHi += h;
                    sumLo += lo[j];
                }
                layOut16(vOff, dOff, b, amax, hi, lo, sumHi, sumLo);
            }
        }

        /** Block b's multipliers from hi and lo (for the Q4 or the Q6 kernels), its scale and its scaled sum. */
        private void layOut16(int vOff, int dOff, int b, float amax, int[] hi, int[] lo, int sumHi, int sumLo) {
            d[dOff + b] = amax / 32512f;
            sums[dOff + b] = (256 * sumHi + sumLo) * d[dOff + b];
            int o = vOff + b * precision.blockShorts;
            if (precision == Precision.Q6_BITS_16) {
                PackedQ6.layOut(v, o, hi, lo);
                return;
            }
            fill(o, -8 * sumHi);
            fill(o + 1, -8 * sumLo);
            for (int s = 0; s < 8; s++) {
                int p = o + 2 + s * 8;
                nibbleVector(p, hi[2 * s], hi[2 * s + 16], hi[2 * s + 1], hi[2 * s + 17]);
                nibbleVector(p + 4, lo[2 * s], lo[2 * s + 16], lo[2 * s + 1], lo[2 * s + 17]);
            }
        }

        /**
         * The 8-bit block q[xo .. xo + 32) laid out at v[o ..] for the Q4 kernels: −8·Σq, then per step s the four
         * multipliers of {@link #nibbleVector} for values 2s, 2s+16, 2s+1, 2s+17. Returns Σq.
         */
        int layOutNibbles(int o, byte[] q, int xo) {
            // In lanes (each step's four values are the bytes 2s, 2s+16, 2s+1, 2s+17: the block's two halves zipped).
            // One value at a time, this layout and the rest of prepare8 took ~2.3% of an 8-bit prompt's CPU samples (perf,
            // Qwen3-like Q4_K_M); in lanes prompts ran ~1% faster (one JVM, the two forms alternated per round).
            // Step s's multipliers never reach into the next step's lanes, so the 32 values go as two vectors of 16.
            ByteVector zipped = ByteVector.fromArray(B, q, xo).rearrange(ZIP_HALVES);
            ShortVector y0 = (ShortVector) zipped.convertShape(VectorOperators.B2S, S, 0);
            ShortVector y1 = (ShortVector) zipped.convertShape(VectorOperators.B2S, S, 1);
            y0.sub(y0.rearrange(PREVIOUS).lanewise(VectorOperators.LSHL, 4), NOT_STEP_HEAD).intoArray(v, o + 1);
            y1.sub(y1.rearrange(PREVIOUS).lanewise(VectorOperators.LSHL, 4), NOT_STEP_HEAD).intoArray(v, o + 17);
            int sum = y0.add(y1).reduceLanes(VectorOperators.ADD); // at most 32·128 in magnitude: exact in 16 bits
            fill(o, -8 * sum);
            return sum;
        }

        /** {@link #layOutNibbles} one value at a time: the definition the vector form must equal. */
        int layOutNibblesScalar(int o, byte[] q, int xo) {
            int sum = 0;
            for (int s = 0; s < 8; s++) {
                int x0 = q[xo + 2 * s], x1 = q[xo + 2 * s + 16], x2 = q[xo + 2 * s + 1], x3 = q[xo + 2 * s + 17];
                nibbleVector(o + 1 + 4 * s, x0, x1, x2, x3);
                sum += x0 + x1 + x2 + x3;
            }
            fill(o, -8 * sum);
            return sum;
        }

        /**
         * The four multipliers of one packed short w = n0 + 16·n1 + 256·n2 + 4096·n3 (values 2s, 2s+16, 2s+1, 2s+17
         * of the block): w·A + (w>>4)·B + (w>>8)·C + (w>>12)·D = n0·x0 + n1·x1 + n2·x2 + n3·x3 modulo 2^16.
         */
        private void nibbleVector(int p, int x0, int x1, int x2, int x3) {
            fill(p, x0);
            fill(p + 1, x1 - 16 * x0);
            fill(p + 2, x2 - 16 * x1);
            fill(p + 3, x3 - 16 * x2);
        }

        private void fill(int o, int value) {
            v[o] = (short) value;
        }
    }

    // ---- kernels -----------------------------------------------------------------------------------------

    // Each multiplier of a prepared activation is broadcast to 16 lanes where it is used (a vpbroadcastw from memory).
    // Stored once rather than as 16-lane copies, a 3584-value activation takes 15 KB instead of 236 KB: it stays in L1
    // instead of streaming from L2 next to the weights (Q4_0 decode, alternating with the copies in three rounds:
    // 73/89/85 against 67/79/79 tokens/s). The kernels call ShortVector.broadcast themselves, not a helper: C2 refuses
    // to inline an ordinary helper once a compilation has created NodeCountInliningCutoff nodes, and a helper left as a
    // call returns its vector boxed, which makes every vector operation after it fall back to boxed Java code (seen in
    // the full program, not in JMH: 40 GB of garbage per speed run, decode 1.6x slower). Vector API methods are
    // force-inlined: over that limit they are inlined later instead of refused. The kernels that boxed in only some
    // JVM runs were not over a node budget (raising the cutoffs did not help): 512-bit vectors elsewhere had passed
    // through the JDK's shared dispatch (FloatVector.fma/add/mul, intoArray, IntVector shifts), and C2 compiled these
    // 256-bit kernels against those two-shape profiles where an operand's class is unknown at parse time (loop phis).
    // A 512-bit kernel must therefore call lanewise(op, ...) and store through intoMemorySegment, as PackedQ8 does;
    // bench/boxcheck.py tells a boxed run from a clean one (docs/speed.md, session 30).


    /**
     * out[outOff + 16·(g − g0) + i] = row (16·g + i) · x for groups g in [g0, g1), x the vector at {@code vOff}/{@code dOff}
     * of {@code a}.
     */
    @Override
    public void product(Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff) {
        if (a.cols != cols) throw new IllegalArgumentException("activation of " + a.cols + " values for a matrix of " + cols + " columns");
        if (quantHead != 0 && a.precision == Precision.BITS_16) {
            product16K(a, vOff, dOff, g0, g1, out, outOff); // apart, so the default path's loop stays as it was
            return;
        }
        int g = g0;
        if (a.precision == Precision.BITS_16) {
            // two groups per pass over the activation (each multiplier broadcast once for both): measured 5-15%
            // faster than one group at a time, where at 8 bits pairs were no faster or slower. The pairs are
            // (g, g + half), not neighbours: the two groups' weights are then two streams that run on unbroken from
            // pair to pair through the range, which the hardware prefetchers keep ahead of; neighbour pairs began
            // a new stream every pair, and an expert's gate and up (32 blocks per group) streamed 10-15% slower
            // than its down (112 blocks per group).
            int half = (g1 - g0) / 2;
            for (int i = 0; i < half; i++) {
                group16Pair(g0 + i, g0 + i + half, a.v, vOff, a.d, a.sums, dOff, out, outOff + i * ROWS, outOff + (i + half) * ROWS);
            }
            g = g0 + 2 * half;
        }
        for (; g < g1; g++) {
            int o = outOff + (g - g0) * ROWS;
            if (a.precision == Precision.BITS_8) group8(g, a.v, vOff, a.d, a.sums, dOff, out, o);
            else group16(g, a.v, vOff, a.d, a.sums, dOff, out, o);
        }
    }

    /** Pairs of vectors per chunk of {@link #productBatch}: 32 vectors of 3584 values take 236 KB of multipliers. */
    static final int CHUNK_PAIRS = 16;

    /**
     * 8-bit activations laid out with their {@link Activation#quads}: eight vectors (four
     * pairs, {@link #group8Quad}) or four (two pairs, {@link #group8Pairs}) per pass over a group's weights, so each weight
     * vector is loaded and shifted once for all of them and each multiplier is a plain 32- or 64-bit broadcast. Every
     * vector gets exactly {@link #group8}'s bits: the integer sums are the same sums modulo 2^16, and each vector's float
     * operations are group8's, in its order. Otherwise as {@link PackedMatrix#productBatch}.
     */
    @Override
    public void productBatch(Activation a, int batch, int stride, int blocks, int g0, int g1, float[] out, int outOff, int outStride) {
        if (a.precision != Precision.BITS_8 || batch < 2 || a.pairedBatch != batch || stride != a.stride() || blocks != cols / QK) {
            PackedMatrix.super.productBatch(a, batch, stride, blocks, g0, g1, out, outOff, outStride);
            return;
        }
        if (a.cols != cols) throw new IllegalArgumentException("activation of " + a.cols + " values for a matrix of " + cols + " columns");
        // Passes by what a group's pass costs (JMH MatMulBench Q4_K 768x1024, hot, one thread, AMD EPYC Zen 4 class:
        // ~152 us for eight vectors, ~91 for four, ~35 for one, with the 256-bit quad kernel): whole quads of eight
        // vectors first; a rest of six or seven as a quad padded to eight; of three to five, a pass for four (a third
        // vector runs as a pair with itself) and a fifth alone; of one or two, each vector alone (a pass for four costs
        // more than two alone). With both kernels at 512 bits (session 43: ~76-80 us for a pass of six to eight, ~46 us
        // for a pass for four, ~68 for five as four and one) the same rule holds: a padded eight-vector pass for three to
        // five measured 73-76 us, more than the 256-bit pass for four (55-58) already took. A rest of two as one pass for
        // four (the second pair padding) measured 38.5-41.5 us against 34.7-41.1 for the two alone (session 44): the same.
        // Every vector gets group8's bits whichever pass computes it.
        int quads = batch / 8 * 4; // pairs in whole quads (an odd batch's last vector is paired with itself)
        float[] acc = batch >= 3 ? QUAD_ACCUMULATORS.get() : null;
        int rest = batch - 2 * quads;
        // the pairs a chunk at a time, over all the groups: a long batch's multipliers stay in L2 while every group reads them
        for (int c0 = 0; c0 < quads; c0 += CHUNK_PAIRS) {
            int c1 = Math.min(quads, c0 + CHUNK_PAIRS);
            for (int g = g0; g < g1; g++) {
                for (int p = c0; p < c1; p += 4) group8Quad(g, a.quads, p, stride, a.d, a.sums, blocks, acc, out, outOff + (g - g0) * ROWS, outStride);
            }
        }
        if (rest == 0) return;
        float[] padded = rest >= 6 ? QUAD_ROWS.get() : null;
        for (int g = g0; g < g1; g++) {
            int o = outOff + (g - g0) * ROWS;
            if (rest >= 6) {
                // pairs [quads, quads + 4), the padding among them zero (Activation.layOutQuads): all eight rows into a
                // scratch block, then the batch's own rows out of it
                int t0 = 2 * quads;
                group8Quad(g, a.quads, quads, stride, a.d, a.sums, blocks, acc, padded, -t0 * ROWS, ROWS);
                for (int t = t0; t < batch; t++) System.arraycopy(padded, (t - t0) * ROWS, out, o + t * outStride, ROWS);
                continue;
            }
            int t = 2 * quads;
            if (rest >= 3) {
                // tokens t .. t + 3; of three, the third is the batch's last and its pair's second vector is itself:
                // its row is written twice with the same bits
                int p = quads;
                group8Pairs(g, a.quads, p / 2 * stride, a.d, a.sums, blocks, t, t + 1, t + 2, Math.min(t + 3, batch - 1), acc, out, o, outStride);
                t += 4;
            }
            for (; t < batch; t++) group8(g, a.v, t * stride, a.d, a.sums, t * blocks, out, o + t * outStride);
        }
    }

    /** Each thread's accumulators of {@link #group8Quad} (eight vectors' rows), and the rows {@link #group8Pairs} hands out. */
    private static final ThreadLocal<float[]> QUAD_ACCUMULATORS = ThreadLocal.withInitial(() -> new float[8 * ROWS]);

    /** Each thread's eight rows of sixteen for a padded quad of {@link #productBatch}. */
    private static final ThreadLocal<float[]> QUAD_ROWS = ThreadLocal.withInitial(() -> new float[8 * ROWS]);

    /**
     * {@link #group8} of group g for the eight vectors of pairs [p, p + 4) (all distinct; p even), their multipliers in
     * {@link Activation#quads} at quads[(p / 2 + i)·stride ..]: twice the vectors per weight loaded and shifted of
     * {@link #group8Pairs}, in 512-bit vectors. Each weight int is loaded once and duplicated into two neighbouring int
     * lanes, so that one 64-bit broadcast multiplies it by two pairs' multipliers (even lanes the first pair's, odd lanes
     * the second's): each lane computes what the 256-bit form computes, with half the instructions. The float sums gather
     * block by block in {@code acc} (per thread, 128 floats), the two pairs' rows interleaved as their lanes are, with
     * group8's operations in its order; the rows go to {@code out} at the end.
     */
    private void group8Quad(int g, long[] quads, int p, int stride, float[] dx, float[] sums, int blocks, float[] acc, float[] out, int outOff, int outStride) {
        short[] qs = quants;
        float[] sc = scales;
        int nb = cols / QK, block0 = (firstGroup + g) * nb, per = Precision.BITS_8.blockShorts;
        java.util.Arrays.fill(acc, 0, 8 * ROWS, 0f);
        MemorySegment accs = MemorySegment.ofArray(acc);
        // shift counts and constants as vectors: the rule for 512-bit code (WideVectorRuleTest) keeps scalar operands out
        ShortVector s4 = ShortVector.broadcast(S32, (short) 4), s8 = ShortVector.broadcast(S32, (short) 8), s12 = ShortVector.broadcast(S32, (short) 12);
        IntVector i16 = IntVector.broadcast(I16, 16), ff = IntVector.broadcast(I, 0xFF);
        IntVector i8n = IntVector.broadcast(I, 8), i16n = IntVector.broadcast(I, 16), i24n = IntVector.broadcast(I, 24);
        FloatVector eight = FloatVector.broadcast(F, 8f);
        int qa = p / 2 * stride, qc = qa + stride, t = 2 * p;
        for (int b = 0; b < nb; b++) {
            int qp = (block0 + b) * blockShorts + quantHead, sp = ((block0 + b) >>> scaleShift) * blockFloats, m = b * per;
            ShortVector wab = (ShortVector) LongVector.broadcast(L16, quads[qa + m]).reinterpretShape(S32, 0), uab = wab;
            ShortVector wcd = (ShortVector) LongVector.broadcast(L16, quads[qc + m]).reinterpretShape(S32, 0), ucd = wcd;
            for (int s = 0; s < 8; s++) {
                ShortVector w = (ShortVector) ShortVector.fromArray(S, qs, qp + 16 * s).reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(S32, 0);
                ShortVector u = (ShortVector) ((IntVector) w.reinterpretShape(I16, 0)).lanewise(VectorOperators.ROL, i16).reinterpretShape(S32, 0);
                int k = m + 1 + s * 4;
                {
                    ShortVector wn = w, un = u;
                    ShortVector xa = (ShortVector) LongVector.broadcast(L16, quads[qa + k + 0]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xa));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xa));
                    ShortVector xc = (ShortVector) LongVector.broadcast(L16, quads[qc + k + 0]).reinterpretShape(S32, 0);
                    wcd = wcd.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xc));
                    ucd = ucd.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xc));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s4), un = u.lanewise(VectorOperators.LSHR, s4);
                    ShortVector xa = (ShortVector) LongVector.broadcast(L16, quads[qa + k + 1]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xa));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xa));
                    ShortVector xc = (ShortVector) LongVector.broadcast(L16, quads[qc + k + 1]).reinterpretShape(S32, 0);
                    wcd = wcd.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xc));
                    ucd = ucd.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xc));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s8), un = u.lanewise(VectorOperators.LSHR, s8);
                    ShortVector xa = (ShortVector) LongVector.broadcast(L16, quads[qa + k + 2]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xa));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xa));
                    ShortVector xc = (ShortVector) LongVector.broadcast(L16, quads[qc + k + 2]).reinterpretShape(S32, 0);
                    wcd = wcd.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xc));
                    ucd = ucd.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xc));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s12), un = u.lanewise(VectorOperators.LSHR, s12);
                    ShortVector xa = (ShortVector) LongVector.broadcast(L16, quads[qa + k + 3]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xa));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xa));
                    ShortVector xc = (ShortVector) LongVector.broadcast(L16, quads[qc + k + 3]).reinterpretShape(S32, 0);
                    wcd = wcd.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, xc));
                    ucd = ucd.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, xc));
                }
            }
            // (written out: a helper taking these vectors would box them when C2 does not inline it)
            FloatVector e0 = FloatVector.fromArray(F, sc, sp), e1 = FloatVector.fromArray(F, sc, sp + 8);
            if (compact) { // e0 and e1 hold the super-block's d: the block's scales are d·sc
                IntVector km = (IntVector) ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretShape(I, 0);
                e0 = ((FloatVector) km.lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, e0);
                e1 = ((FloatVector) km.lanewise(VectorOperators.LSHR, i16n).lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0))
                        .lanewise(VectorOperators.MUL, e1);
            }
            FloatVector g0 = e0, g1 = e1; // Q4_K's offsets (Q4_0 has none)
            if (offsets) {
                g0 = FloatVector.fromArray(F, sc, sp + 16);
                g1 = FloatVector.fromArray(F, sc, sp + 24);
                if (compact) { // g0 and g1 hold the super-block's dmin: the block's offsets are 8·d·sc − dmin·m
                    IntVector km = (IntVector) ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretShape(I, 0);
                    g0 = e0.lanewise(VectorOperators.MUL, eight).lanewise(VectorOperators.SUB, ((FloatVector) km.lanewise(VectorOperators.LSHR, i8n)
                            .lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, g0));
                    g1 = e1.lanewise(VectorOperators.MUL, eight).lanewise(VectorOperators.SUB, ((FloatVector) km.lanewise(VectorOperators.LSHR, i24n)
                            .convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, g1));
                }
            }
            // each row's scale and offset in two neighbouring lanes, one per pair
            FloatVector s0 = (FloatVector) e0.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            FloatVector s1 = (FloatVector) e1.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            FloatVector f0 = (FloatVector) g0.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            FloatVector f1 = (FloatVector) g1.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            { // tokens t .. t + 3: pair (t, t + 1) in the even lanes, (t + 2, t + 3) in the odd ones
                IntVector wi = (IntVector) wab.reinterpretShape(I16, 0), ui = (IntVector) uab.reinterpretShape(I16, 0);
                int first = t, d0 = first * blocks + b, d1 = d0 + blocks, d2 = d1 + blocks, d3 = d2 + blocks;
                // a first vector's rows 0-7 in w's low halves, 8-15 in u's; a second's rows 0-7 in u's high halves, 8-15 in w's.
                // The float pairs are built in line, here and in the other 512-bit passes: a static helper for them was left
                // as a call by C2 (8 calls per block, every vector register spilled around them; JMH half the speed).
                FloatVector lo = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(dx[d0]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d2]) << 32)).reinterpretShape(F16, 0);
                FloatVector hi = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(dx[d1]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d3]) << 32)).reinterpretShape(F16, 0);
                FloatVector r00 = ((FloatVector) wi.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, lo), FloatVector.fromArray(F16, acc, 0));
                FloatVector r01 = ((FloatVector) ui.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, lo), FloatVector.fromArray(F16, acc, 16));
                FloatVector r10 = ((FloatVector) ui.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, hi), FloatVector.fromArray(F16, acc, 32));
                FloatVector r11 = ((FloatVector) wi.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, hi), FloatVector.fromArray(F16, acc, 48));
                if (offsets) {
                    FloatVector xlo = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(sums[d0]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(sums[d2]) << 32)).reinterpretShape(F16, 0);
                    FloatVector xhi = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(sums[d1]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(sums[d3]) << 32)).reinterpretShape(F16, 0);
                    r00 = f0.lanewise(VectorOperators.FMA, xlo, r00);
                    r01 = f1.lanewise(VectorOperators.FMA, xlo, r01);
                    r10 = f0.lanewise(VectorOperators.FMA, xhi, r10);
                    r11 = f1.lanewise(VectorOperators.FMA, xhi, r11);
                }
                r00.intoMemorySegment(accs, 0, ByteOrder.nativeOrder());
                r01.intoMemorySegment(accs, 16 * 4L, ByteOrder.nativeOrder());
                r10.intoMemorySegment(accs, 32 * 4L, ByteOrder.nativeOrder());
                r11.intoMemorySegment(accs, 48 * 4L, ByteOrder.nativeOrder());
            }
            { // tokens t + 4 .. t + 7: pair (t + 4, t + 5) in the even lanes, (t + 6, t + 7) in the odd ones
                IntVector wi = (IntVector) wcd.reinterpretShape(I16, 0), ui = (IntVector) ucd.reinterpretShape(I16, 0);
                int first = t + 4, d0 = first * blocks + b, d1 = d0 + blocks, d2 = d1 + blocks, d3 = d2 + blocks;
                // a first vector's rows 0-7 in w's low halves, 8-15 in u's; a second's rows 0-7 in u's high halves, 8-15 in w's
                FloatVector lo = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(dx[d0]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d2]) << 32)).reinterpretShape(F16, 0);
                FloatVector hi = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(dx[d1]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d3]) << 32)).reinterpretShape(F16, 0);
                FloatVector r00 = ((FloatVector) wi.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, lo), FloatVector.fromArray(F16, acc, 64));
                FloatVector r01 = ((FloatVector) ui.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, lo), FloatVector.fromArray(F16, acc, 80));
                FloatVector r10 = ((FloatVector) ui.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, hi), FloatVector.fromArray(F16, acc, 96));
                FloatVector r11 = ((FloatVector) wi.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                        .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, hi), FloatVector.fromArray(F16, acc, 112));
                if (offsets) {
                    FloatVector xlo = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(sums[d0]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(sums[d2]) << 32)).reinterpretShape(F16, 0);
                    FloatVector xhi = (FloatVector) LongVector.broadcast(L16, (Float.floatToRawIntBits(sums[d1]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(sums[d3]) << 32)).reinterpretShape(F16, 0);
                    r00 = f0.lanewise(VectorOperators.FMA, xlo, r00);
                    r01 = f1.lanewise(VectorOperators.FMA, xlo, r01);
                    r10 = f0.lanewise(VectorOperators.FMA, xhi, r10);
                    r11 = f1.lanewise(VectorOperators.FMA, xhi, r11);
                }
                r00.intoMemorySegment(accs, 64 * 4L, ByteOrder.nativeOrder());
                r01.intoMemorySegment(accs, 80 * 4L, ByteOrder.nativeOrder());
                r10.intoMemorySegment(accs, 96 * 4L, ByteOrder.nativeOrder());
                r11.intoMemorySegment(accs, 112 * 4L, ByteOrder.nativeOrder());
            }
        }
        // the interleaved rows out: acc[64·h + 32·second + 16·upper + 2·r + odd] is row r + 8·upper of token
        // t + 4·h + 2·odd + second
        for (int h = 0; h < 2; h++) {
            for (int second = 0; second < 2; second++) {
                for (int odd = 0; odd < 2; odd++) {
                    int o = outOff + (t + 4 * h + 2 * odd + second) * outStride, a = 64 * h + 32 * second + odd;
                    for (int r = 0; r < ROWS; r++) out[o + r] = acc[a + 16 * (r >> 3) + 2 * (r & 7)];
                }
            }
        }
    }


    /**
     * {@link #group8} of group g for two pairs of vectors (pairs 2i and 2i + 1, their multipliers in
     * {@link Activation#quads} at {@code quads[q ..]}: tokens ta0/ta1 and tb0/tb1; token t's scales at dx[t·blocks ..],
     * results at out[outOff + t·outStride ..]): {@link #group8Quad} for one of its two halves, its sums kept in registers.
     *
     * <p>A multiplier int puts a pair's first vector in the even 16-bit lanes (rows 0-7) and its second in the odd ones
     * (rows 8-15). The weights as loaded (w) thus give rows 0-7 of the first vector and rows 8-15 of the second; the
     * weights with the halves of each 32-bit lane swapped (u) give rows 8-15 of the first and rows 0-7 of the second,
     * each in the half group8's widening reads them from. Each weight int is duplicated into two neighbouring int lanes,
     * the first pair's in the even lanes and the second's in the odd ones.
     */
    private void group8Pairs(int g, long[] quads, int q, float[] dx, float[] sums, int blocks, int ta0, int ta1, int tb0, int tb1,
                             float[] rows, float[] out, int outOff, int outStride) {
        short[] qs = quants;
        float[] sc = scales;
        int nb = cols / QK, block0 = (firstGroup + g) * nb, per = Precision.BITS_8.blockShorts;
        // shift counts and constants as vectors: the rule for 512-bit code (WideVectorRuleTest) keeps scalar operands out
        ShortVector s4 = ShortVector.broadcast(S32, (short) 4), s8 = ShortVector.broadcast(S32, (short) 8), s12 = ShortVector.broadcast(S32, (short) 12);
        IntVector i16 = IntVector.broadcast(I16, 16), ff = IntVector.broadcast(I, 0xFF);
        IntVector i8n = IntVector.broadcast(I, 8), i16n = IntVector.broadcast(I, 16), i24n = IntVector.broadcast(I, 24);
        FloatVector eight = FloatVector.broadcast(F, 8f);
        FloatVector r00 = FloatVector.zero(F16), r01 = r00, r10 = r00, r11 = r00;
        for (int b = 0; b < nb; b++) {
            int qp = (block0 + b) * blockShorts + quantHead, sp = ((block0 + b) >>> scaleShift) * blockFloats, m = b * per;
            // the -8·Σx terms of every vector start the sums
            ShortVector wab = (ShortVector) LongVector.broadcast(L16, quads[q + m]).reinterpretShape(S32, 0), uab = wab;
            for (int s = 0; s < 8; s++) {
                ShortVector w = (ShortVector) ShortVector.fromArray(S, qs, qp + 16 * s).reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(S32, 0);
                ShortVector u = (ShortVector) ((IntVector) w.reinterpretShape(I16, 0)).lanewise(VectorOperators.ROL, i16).reinterpretShape(S32, 0);
                int k = m + 1 + s * 4;
                {
                    ShortVector wn = w, un = u;
                    ShortVector x = (ShortVector) LongVector.broadcast(L16, quads[q + k + 0]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, x));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, x));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s4), un = u.lanewise(VectorOperators.LSHR, s4);
                    ShortVector x = (ShortVector) LongVector.broadcast(L16, quads[q + k + 1]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, x));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, x));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s8), un = u.lanewise(VectorOperators.LSHR, s8);
                    ShortVector x = (ShortVector) LongVector.broadcast(L16, quads[q + k + 2]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, x));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, x));
                }
                {
                    ShortVector wn = w.lanewise(VectorOperators.LSHR, s12), un = u.lanewise(VectorOperators.LSHR, s12);
                    ShortVector x = (ShortVector) LongVector.broadcast(L16, quads[q + k + 3]).reinterpretShape(S32, 0);
                    wab = wab.lanewise(VectorOperators.ADD, wn.lanewise(VectorOperators.MUL, x));
                    uab = uab.lanewise(VectorOperators.ADD, un.lanewise(VectorOperators.MUL, x));
                }
            }
            FloatVector e0 = FloatVector.fromArray(F, sc, sp), e1 = FloatVector.fromArray(F, sc, sp + 8);
            if (compact) { // e0 and e1 hold the super-block's d: the block's scales are d·sc
                IntVector km = (IntVector) ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretShape(I, 0);
                e0 = ((FloatVector) km.lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, e0);
                e1 = ((FloatVector) km.lanewise(VectorOperators.LSHR, i16n).lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0))
                        .lanewise(VectorOperators.MUL, e1);
            }
            FloatVector s0 = (FloatVector) e0.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            FloatVector s1 = (FloatVector) e1.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
            IntVector wi = (IntVector) wab.reinterpretShape(I16, 0), ui = (IntVector) uab.reinterpretShape(I16, 0);
            int d0 = ta0 * blocks + b, d1 = ta1 * blocks + b, d2 = tb0 * blocks + b, d3 = tb1 * blocks + b;
            FloatVector lo = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(dx[d0]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d2]) << 32)
                    .reinterpretShape(F16, 0);
            FloatVector hi = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(dx[d1]) & 0xFFFFFFFFL | (long) Float.floatToRawIntBits(dx[d3]) << 32)
                    .reinterpretShape(F16, 0);
            // first vectors: rows 0-7 in w's low halves, rows 8-15 in u's; second: rows 0-7 in u's high halves, 8-15 in w's
            r00 = ((FloatVector) wi.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                    .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, lo), r00);
            r01 = ((FloatVector) ui.lanewise(VectorOperators.LSHL, i16).lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                    .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, lo), r01);
            r10 = ((FloatVector) ui.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                    .lanewise(VectorOperators.FMA, s0.lanewise(VectorOperators.MUL, hi), r10);
            r11 = ((FloatVector) wi.lanewise(VectorOperators.ASHR, i16).convertShape(VectorOperators.I2F, F16, 0))
                    .lanewise(VectorOperators.FMA, s1.lanewise(VectorOperators.MUL, hi), r11);
            if (offsets) {
                FloatVector g0 = FloatVector.fromArray(F, sc, sp + 16), g1 = FloatVector.fromArray(F, sc, sp + 24);
                if (compact) { // g0 and g1 hold the super-block's dmin: the block's offsets are 8·d·sc − dmin·m
                    IntVector km = (IntVector) ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretShape(I, 0);
                    g0 = e0.lanewise(VectorOperators.MUL, eight).lanewise(VectorOperators.SUB, ((FloatVector) km.lanewise(VectorOperators.LSHR, i8n)
                            .lanewise(VectorOperators.AND, ff).convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, g0));
                    g1 = e1.lanewise(VectorOperators.MUL, eight).lanewise(VectorOperators.SUB, ((FloatVector) km.lanewise(VectorOperators.LSHR, i24n)
                            .convertShape(VectorOperators.I2F, F, 0)).lanewise(VectorOperators.MUL, g1));
                }
                FloatVector f0 = (FloatVector) g0.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
                FloatVector f1 = (FloatVector) g1.reinterpretShape(I16, 0).rearrange(DUPLICATE).reinterpretShape(F16, 0);
                FloatVector xlo = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(sums[d0]) & 0xFFFFFFFFL
                        | (long) Float.floatToRawIntBits(sums[d2]) << 32).reinterpretShape(F16, 0);
                FloatVector xhi = (FloatVector) LongVector.broadcast(L16, Float.floatToRawIntBits(sums[d1]) & 0xFFFFFFFFL
                        | (long) Float.floatToRawIntBits(sums[d3]) << 32).reinterpretShape(F16, 0);
                r00 = f0.lanewise(VectorOperators.FMA, xlo, r00);
                r01 = f1.lanewise(VectorOperators.FMA, xlo, r01);
                r10 = f0.lanewise(VectorOperators.FMA, xhi, r10);
                r11 = f1.lanewise(VectorOperators.FMA, xhi, r11);
            }
        }
        MemorySegment rs = MemorySegment.ofArray(rows);
        r00.intoMemorySegment(rs, 0, ByteOrder.nativeOrder());
        r01.intoMemorySegment(rs, 16 * 4L, ByteOrder.nativeOrder());
        r10.intoMemorySegment(rs, 32 * 4L, ByteOrder.nativeOrder());
        r11.intoMemorySegment(rs, 48 * 4L, ByteOrder.nativeOrder());
        // rows[32·second + 16·upper + 2·r + odd]: row r + 8·upper of the pair's first (second = 0) or second vector, of the
        // first pair (odd = 0) or the second (tb1 may be tb0 again: the same bits written twice)
        for (int pair = 0; pair < 2; pair++) {
            int oa = outOff + (pair == 0 ? ta0 : tb0) * outStride, ob = outOff + (pair == 0 ? ta1 : tb1) * outStride;
            for (int r = 0; r < ROWS; r++) {
                int at = 16 * (r >> 3) + 2 * (r & 7) + pair;
                out[oa + r] = rows[at];
                out[ob + r] = rows[32 + at];
            }
        }
    }

    // group8 and group16 share their frame on purpose: each is a single hot loop that C2 compiles tightly, where one
    // loop branching on the precision inside would not be.
    private void group8(int g, short[] act, int vOff, float[] dx, float[] sums, int dOff, float[] out, int outOff) {
        short[] qs = quants;
        float[] sc = scales;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            int qp = (block0 + b) * blockShorts + quantHead, p = ((block0 + b) >>> scaleShift) * blockFloats;
            int o = vOff + b * Precision.BITS_8.blockShorts;
            ShortVector s0 = ShortVector.broadcast(S, act[o]), s1 = ShortVector.zero(S), s2 = ShortVector.zero(S), s3 = ShortVector.zero(S);
            for (int s = 0; s < 8; s++) {
                ShortVector w = ShortVector.fromArray(S, qs, qp + 16 * s);
                int a = o + 1 + s * 4;
                s0 = s0.add(w.mul(ShortVector.broadcast(S, act[a])));
                s1 = s1.add(w.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.broadcast(S, act[a + 1])));
                s2 = s2.add(w.lanewise(VectorOperators.LSHR, 8).mul(ShortVector.broadcast(S, act[a + 2])));
                s3 = s3.add(w.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.broadcast(S, act[a + 3])));
            }
            ShortVector sum = s0.add(s1).add(s2.add(s3));
            IntVector si = sum.reinterpretAsInts();
            FloatVector f0 = (FloatVector) si.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).convertShape(VectorOperators.I2F, F, 0);
            FloatVector f1 = (FloatVector) si.lanewise(VectorOperators.ASHR, 16).convertShape(VectorOperators.I2F, F, 0);
            float d = dx[dOff + b];
            FloatVector e0, e1;
            if (halfHeads) { // Q4_0's halves: rows 0-7 in the int lanes' low halves, rows 8-15 in the high ones
                IntVector hd = ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretAsInts();
                e0 = hd.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16Kernel.FLOAT_FIELDS).reinterpretAsFloats()
                        .mul(F16Kernel.HALF_TO_FLOAT_SCALE);
                e1 = hd.lanewise(VectorOperators.ASHR, 3).and(F16Kernel.FLOAT_FIELDS).reinterpretAsFloats().mul(F16Kernel.HALF_TO_FLOAT_SCALE);
            } else {
                e0 = FloatVector.fromArray(F, sc, p);
                e1 = FloatVector.fromArray(F, sc, p + 8);
            }
            if (compact) { // e0 and e1 hold the super-block's d: the block's scales are d·sc
                IntVector km = ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretAsInts();
                e0 = ((FloatVector) km.and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(e0);
                e1 = ((FloatVector) km.lanewise(VectorOperators.LSHR, 16).and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(e1);
            }
            acc0 = f0.fma(e0.mul(d), acc0);
            acc1 = f1.fma(e1.mul(d), acc1);
            if (offsets) {
                FloatVector xs = FloatVector.broadcast(F, sums[dOff + b]);
                FloatVector o0 = FloatVector.fromArray(F, sc, p + 16), o1 = FloatVector.fromArray(F, sc, p + 24);
                if (compact) { // o0 and o1 hold the super-block's dmin: the block's offsets are 8·d·sc − dmin·m
                    IntVector km = ShortVector.fromArray(S, qs, qp - K_HEAD).reinterpretAsInts();
                    o0 = e0.mul(8f).sub(((FloatVector) km.lanewise(VectorOperators.LSHR, 8).and(0xFF).convertShape(VectorOperators.I2F, F, 0)).mul(o0));
                    o1 = e1.mul(8f).sub(((FloatVector) km.lanewise(VectorOperators.LSHR, 24).convertShape(VectorOperators.I2F, F, 0)).mul(o1));
                }
                acc0 = o0.fma(xs, acc0);
                acc1 = o1.fma(xs, acc1);
            }
        }
        acc0.intoArray(out, outOff);
        acc1.intoArray(out, outOff + 8);
    }

    private void group16(int g, short[] act, int vOff, float[] dx, float[] sums, int dOff, float[] out, int outOff) {
        short[] qs = quants;
        float[] sc = scales;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            int qp = (block0 + b) * QUANT_SHORTS, p = (block0 + b) * blockFloats;
            int o = vOff + b * Precision.BITS_16.blockShorts;
            ShortVector h0 = ShortVector.broadcast(S, act[o]), h1 = ShortVector.zero(S);
            ShortVector l0 = ShortVector.broadcast(S, act[o + 1]), l1 = ShortVector.zero(S);
            for (int s = 0; s < 8; s++) {
                ShortVector w = ShortVector.fromArray(S, qs, qp + 16 * s);
                ShortVector w4 = w.lanewise(VectorOperators.LSHR, 4), w8 = w.lanewise(VectorOperators.LSHR, 8), w12 = w.lanewise(VectorOperators.LSHR, 12);
                int a = o + 2 + s * 8;
                h0 = h0.add(w.mul(ShortVector.broadcast(S, act[a]))).add(w4.mul(ShortVector.broadcast(S, act[a + 1])));
                h1 = h1.add(w8.mul(ShortVector.broadcast(S, act[a + 2]))).add(w12.mul(ShortVector.broadcast(S, act[a + 3])));
                l0 = l0.add(w.mul(ShortVector.broadcast(S, act[a + 4]))).add(w4.mul(ShortVector.broadcast(S, act[a + 5])));
                l1 = l1.add(w8.mul(ShortVector.broadcast(S, act[a + 6]))).add(w12.mul(ShortVector.broadcast(S, act[a + 7])));
            }
            ShortVector hs = h0.add(h1), ls = l0.add(l1);
            IntVector hi = hs.reinterpretAsInts(), lo = ls.reinterpretAsInts();
            IntVector t0 = hi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8)
                    .add(lo.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector t1 = hi.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8).add(lo.lanewise(VectorOperators.ASHR, 16));
            float d = dx[dOff + b];
            acc0 = ((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p).mul(d), acc0);
            acc1 = ((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p + 8).mul(d), acc1);
            if (offsets) {
                FloatVector xs = FloatVector.broadcast(F, sums[dOff + b]);
                acc0 = FloatVector.fromArray(F, sc, p + 16).fma(xs, acc0);
                acc1 = FloatVector.fromArray(F, sc, p + 24).fma(xs, acc1);
            }
        }
        acc0.intoArray(out, outOff);
        acc1.intoArray(out, outOff + 8);
    }

    /**
     * {@link #group16} for groups g and g2 at once, into out[outG ..] and out[outH ..]: each activation vector is loaded
     * once for both.
     */
    private void group16Pair(int g, int g2, short[] act, int vOff, float[] dx, float[] sums, int dOff, float[] out, int outG, int outH) {
        short[] qs = quants;
        float[] sc = scales;
        int nb = cols / QK, block0 = (firstGroup + g) * nb, other = (g2 - g) * nb;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            // this block of group g, and the same block of group g2
            int qp = (block0 + b) * QUANT_SHORTS, qq = qp + other * QUANT_SHORTS, p = (block0 + b) * blockFloats, q = p + other * blockFloats;
            int o = vOff + b * Precision.BITS_16.blockShorts;
            ShortVector kh = ShortVector.broadcast(S, act[o]), kl = ShortVector.broadcast(S, act[o + 1]);
            // one high and one low accumulator per group: four chains, and registers left for both groups' weights
            ShortVector h = kh, l = kl, hh = kh, ll = kl;
            for (int s = 0; s < 8; s++) {
                ShortVector v = ShortVector.fromArray(S, qs, qp + 16 * s);
                ShortVector u = ShortVector.fromArray(S, qs, qq + 16 * s);
                int a = o + 2 + s * 8;
                // the four nibbles of each short as a loop (shifting by 0 leaves v as it is): a quarter of the
                // written-out form's inlined Vector API code, so a compilation stays further from C2's node limits
                for (int n = 0; n < 4; n++) {
                    ShortVector vn = v.lanewise(VectorOperators.LSHR, 4 * n), un = u.lanewise(VectorOperators.LSHR, 4 * n);
                    ShortVector xh = ShortVector.broadcast(S, act[a + n]), xl = ShortVector.broadcast(S, act[a + 4 + n]);
                    h = h.add(vn.mul(xh));
                    hh = hh.add(un.mul(xh));
                    l = l.add(vn.mul(xl));
                    ll = ll.add(un.mul(xl));
                }
            }
            float d = dx[dOff + b];
            // (vectors passed to a helper method that is not inlined get boxed: the conversions stay written out here)
            // convertShape names the float species: convert(I2F, 0) computes it, and when C2 inlines that call late
            // (this method passes its inlining budget) the species is no constant, the conversion intrinsic fails and
            // so does every fma its boxed result feeds (-XX:+PrintIntrinsics: "missing constant ... vclass_to=LoadP")
            IntVector hi = h.reinterpretAsInts(), lo = l.reinterpretAsInts(), hi2 = hh.reinterpretAsInts(), lo2 = ll.reinterpretAsInts();
            IntVector t0 = hi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8)
                    .add(lo.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector t1 = hi.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8).add(lo.lanewise(VectorOperators.ASHR, 16));
            IntVector r0 = hi2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8)
                    .add(lo2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
            IntVector r1 = hi2.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8).add(lo2.lanewise(VectorOperators.ASHR, 16));
            a0 = ((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p).mul(d), a0);
            a1 = ((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p + 8).mul(d), a1);
            c0 = ((FloatVector) r0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q).mul(d), c0);
            c1 = ((FloatVector) r1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q + 8).mul(d), c1);
            if (offsets) {
                FloatVector xs = FloatVector.broadcast(F, sums[dOff + b]);
                a0 = FloatVector.fromArray(F, sc, p + 16).fma(xs, a0);
                a1 = FloatVector.fromArray(F, sc, p + 24).fma(xs, a1);
                c0 = FloatVector.fromArray(F, sc, q + 16).fma(xs, c0);
                c1 = FloatVector.fromArray(F, sc, q + 24).fma(xs, c1);
            }
        }
        a0.intoArray(out, outG);
        a1.intoArray(out, outG + 8);
        c0.intoArray(out, outH);
        c1.intoArray(out, outH + 8);
    }

    /**
     * {@link #product} with 16-bit activations on a copy with heads (compact Q4_K, or Q4_0 with {@link #halfHeads}), which
     * only the other rounding's model view sharing the copy asks for: each pair of groups is widened to the float-scale
     * layout ({@link #widened}) and multiplied by
     * {@link #group16Pair} and {@link #group16}, giving the float-scale copy's bits at the price of the widening (correct,
     * not tuned). The default path's own copies keep float scales: the widening written into group16Pair boxed its
     * vectors in 4 of 5 runs (session 34).
     */
    private void product16K(Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff) {
        int half = (g1 - g0) / 2;
        for (int i = 0; i < half; i++) {
            widened(g0 + i, g0 + i + half).group16Pair(0, 1, a.v, vOff, a.d, a.sums, dOff, out, outOff + i * ROWS, outOff + (i + half) * ROWS);
        }
        if ((g1 - g0) % 2 != 0) widened(g1 - 1, g1 - 1).group16(0, a.v, vOff, a.d, a.sums, dOff, out, outOff + (g1 - 1 - g0) * ROWS);
    }

    /** This thread's arrays for {@link #widened}: quants and scales of two groups in the float-scale layout. */
    private static final ThreadLocal<short[]> WIDENED_QUANTS = new ThreadLocal<>();
    private static final ThreadLocal<float[]> WIDENED_SCALES = new ThreadLocal<>();

    /**
     * Groups g and h of this copy with heads in the float-scale layout, as groups 0 and 1 of a copy on this thread's
     * arrays (valid until the next call): the quants as they are without the heads; compact Q4_K: each block's scale and
     * offset from its sc and m and its super-block's d and dmin by the packer's operations ({@link #storeScaleAndOffset});
     * Q4_0: the float scales as they are.
     */
    private PackedQ4 widened(int g, int h) {
        // the target is the float-scale layout: a scale (and for Q4_K an offset) per row and block (a compact copy's
        // blockFloats counts per super-block, the same number by coincidence)
        int nb = cols / QK, floats = blockFloats(offsets);
        short[] wq = ThreadArrays.shorts(WIDENED_QUANTS, 2 * nb * QUANT_SHORTS);
        float[] ws = ThreadArrays.floats(WIDENED_SCALES, 2 * nb * floats);
        for (int k = 0; k < 2; k++) {
            int block0 = (firstGroup + (k == 0 ? g : h)) * nb;
            for (int b = 0; b < nb; b++) {
                // this copy's own layout: the block's head, its quants quantHead shorts on, its super-block's d and dmin
                int head = (block0 + b) * blockShorts, sp = ((block0 + b) >>> scaleShift) * blockFloats, to = k * nb + b;
                System.arraycopy(quants, head + quantHead, wq, to * QUANT_SHORTS, QUANT_SHORTS);
                if (!compact) {
                    System.arraycopy(scales, sp, ws, to * floats, floats);
                    continue;
                }
                for (int r = 0; r < ROWS; r++) {
                    int km = quants[head + lane(r)];
                    storeScaleAndOffset(ws, to * floats, r, scales[sp + r], scales[sp + ROWS + r], km & 0xFF, (km >>> 8) & 0xFF);
                }
            }
        }
        return new PackedQ4(wq, ws, 0, 2 * ROWS, cols, offsets, false);
    }
}
