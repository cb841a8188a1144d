package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
 * <p>Layout: one short array, group after group, each group's 256-value super-blocks in order, each super-block
 * (2208 shorts) holding first the 16 rows' scales d as floats (the file's halves widened, two shorts each, rows in
 * order), then per 16-value sub-block (Q6_K's scale granularity) 8 shorts of the rows' int8 scales (row r in byte r),
 * then per sub-block eight vectors of quants, vector 4h + i pairing values 8h + i and 8h + i + 4; a group streams as
 * one unbroken run of the array. Why: at 2 threads decode is bound by the bytes streamed, and float scales per
 * sub-block took 2 of the copy's 10 bits per weight; now it takes 8.625 (the file 6.5625). The kernels form d·scale in
 * float, which is exact (11 × 8 significant bits): the same floats the copy used to store, so every product keeps its
 * bits.
 *
 * <p>Activations are the 16-bit ones of the Q4 kernels (x = 256·hi + lo per block of 32, hi in [−127, 127], lo in
 * [−127, 128]); Σ(q − 32)·hi and Σ(q − 32)·lo over 8 values stay within the 16-bit range (|q − 32| ≤ 32), so the
 * 16-bit sums are widened after each half of a sub-block. With activations rounded as llama.cpp does (Q8_K, |q| ≤ 127)
 * there is one product per weight, and the integer sums per sub-block are ggml's; only the float order in which the
 * sub-blocks are added differs.
 */
public final class PackedQ6 implements PackedMatrix {
    private static final int QK = KQuant.QK_K;
    private static final int BLOCK = 210;
    /** Values per sub-block: Q6_K has one scale per 16 values. */
    private static final int SUB = 16;
    /** Sub-blocks per super-block. */
    private static final int SUBS = QK / SUB;
    /** Shorts of the quants of one sub-block of a group: 16 rows × 8 shorts. */
    private static final int QUANT_SHORTS = ROWS * 8;
    /** Shorts of the int8 scales of one sub-block of a group: 16 rows, two per short (row r in byte r). */
    private static final int SCALE_SHORTS = ROWS / 2;
    /** Where a super-block's scales start: after the 16 rows' d, a float (two shorts) each. */
    private static final int SCALES_AT = 2 * ROWS;
    /** Where a super-block's quants start: after d and the 16 sub-blocks' scales. */
    private static final int QUANTS_AT = SCALES_AT + SUBS * SCALE_SHORTS;
    /** Shorts per super-block of a group: d, scales, quants. */
    private static final int SUPER_SHORTS = QUANTS_AT + SUBS * QUANT_SHORTS;
    /** Multipliers per half sub-block, 16-bit activations: the two offsets −32·Σhi and −32·Σlo, then four per vector. */
    private static final int HALF_MULTIPLIERS = 18;
    /** Multipliers per half sub-block, 8-bit activations: the offset −32·Σq, then two per vector. */
    private static final int HALF_MULTIPLIERS_8 = 9;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    /** Half a sub-block's int8 scales: 4 shorts, the bytes of 8 rows, widened to 8 ints. */
    private static final VectorSpecies<Short> S4 = ShortVector.SPECIES_64;

    /** Per super-block of each group: 16 float d, 16 × 8 shorts of int8 scales, 16 × 128 shorts of quants (8 vectors of 16 lanes). */
    private final short[] quants;
    private final int firstGroup;
    private final int rows, cols;

    private PackedQ6(short[] quants, int firstGroup, int rows, int cols) {
        this.quants = quants;
        this.firstGroup = firstGroup;
        this.rows = rows;
        this.cols = cols;
    }

    /** Whether {@code m} can be packed: Q6_K with whole groups of 16 rows, its packed copy fitting one Java array. */
    public static boolean canPack(Matrix m) {
        return m.type() == GgmlType.Q6_K && m.rows() % ROWS == 0 && m.cols() % QK == 0 && shorts(m.rows(), m.cols()) <= Integer.MAX_VALUE - 64;
    }

    /** Bytes a packed copy of {@code m} takes ({@link #canPack} must hold). */
    public static long packedBytes(Matrix m) {
        return bytes(m.rows(), m.cols());
    }

    private static long bytes(int rows, int cols) {
        return 2 * shorts(rows, cols);
    }

    private static long shorts(int rows, int cols) {
        return (long) (rows / ROWS) * (cols / QK) * SUPER_SHORTS;
    }

    /** Regroups {@code m} ({@link #canPack} must hold), the groups split over {@code pool} (null: this thread). */
    public static PackedQ6 pack(Matrix m, Parallel pool) {
        if (!canPack(m)) {
            throw new IllegalArgumentException("only Q6_K matrices with a multiple of " + ROWS + " rows can be packed as Q6, got " + m.type() + " "
                    + m.rows() + "x" + m.cols());
        }
        return packInto(m, new short[quantShorts(m)], null, pool);
    }

    /** Length of the short array a packed copy of {@code m} needs, scales included ({@link #canPack} must hold). */
    static int quantShorts(Matrix m) {
        return (int) shorts(m.rows(), m.cols());
    }

    /** Length of the float array of scales a packed copy of {@code m} needs: none, its scales are in the short array. */
    static int scaleFloats(Matrix m) {
        return 0;
    }

    /**
     * As {@link #pack}, into a short array the caller owns and reuses (a fast-memory slot), at least {@link #quantShorts}
     * long; {@code scales} (null, or any length: the other packed formats' float array) is not used.
     */
    static PackedQ6 packInto(Matrix m, short[] quants, float[] scales, Parallel pool) {
        if (!canPack(m)) throw new IllegalArgumentException("cannot pack a " + m.type() + " " + m.rows() + "x" + m.cols() + " matrix as Q6");
        if (quants.length < quantShorts(m)) {
            throw new IllegalArgumentException("a short array of " + quants.length + " is too small for the packed copy of a Q6_K " + m.rows() + "x" + m.cols()
                    + " matrix (" + quantShorts(m) + ")");
        }
        int groups = m.rows() / ROWS;
        Parallel.RangeTask task = (g0, g1) -> packGroups(m, quants, g0, g1);
        if (pool == null || groups < 2) task.run(0, groups);
        else pool.forRange(groups, 1, task);
        return new PackedQ6(quants, 0, m.rows(), m.cols());
    }

    /** Per thread: scales as {@link #decodeScales} gives them, a panel's super-blocks or a product's two groups. */
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[2 * SUBS * ROWS]);

    private static final VarHandle SHORT_LE = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private static void packGroups(Matrix m, short[] quants, int g0, int g1) {
        int rowBytes = (int) m.rowBytes(), supers = m.cols() / QK;
        byte[] in = new byte[ROWS * rowBytes];
        int[] q = new int[QK];
        for (int g = g0; g < g1; g++) {
            MemorySegment.copy(m.data(), ValueLayout.JAVA_BYTE, (long) g * ROWS * rowBytes, in, 0, in.length);
            for (int r = 0; r < ROWS; r++) {
                int lane = PackedQ4.lane(r), scaleShort = r / 2, scaleShift = 8 * (r % 2);
                for (int s = 0; s < supers; s++) {
                    int p = r * rowBytes + s * BLOCK, at = (g * supers + s) * SUPER_SHORTS;
                    quants(in, p, q);
                    // d widened here (exactly, infinities and NaNs too) rather than in the kernels: with the widening
                    // the product methods grew past what C2 inlines in the full program, and their vectors were boxed
                    int d = Float.floatToRawIntBits(Float.float16ToFloat((short) SHORT_LE.get(in, p + 208)));
                    quants[at + 2 * r] = (short) d; // little-endian, as the kernels reinterpret the shorts as floats
                    quants[at + 2 * r + 1] = (short) (d >>> 16);
                    for (int j = 0; j < SUBS; j++) {
                        // this row's byte of the short it shares with row r ± 1 (the array may hold an earlier copy)
                        int sp = at + SCALES_AT + j * SCALE_SHORTS + scaleShort;
                        quants[sp] = (short) (quants[sp] & ~(0xFF << scaleShift) | (in[p + 192 + j] & 0xFF) << scaleShift);
                        int qp = at + QUANTS_AT + j * QUANT_SHORTS;
                        for (int k = 0; k < 8; k++) {
                            int a = SUB * j + 8 * (k / 4) + k % 4;
                            quants[qp + 16 * k + lane] = (short) (q[a] | q[a + 4] << 6);
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
        int supers = cols / QK, s0 = c0 / QK, s1 = (c1 + QK - 1) / QK, at = (firstGroup + g) * supers * SUPER_SHORTS;
        float[] sc = SCALES.get();
        if (sc.length < (s1 - s0) * SUBS * ROWS) SCALES.set(sc = new float[(s1 - s0) * SUBS * ROWS]);
        for (int s = s0; s < s1; s++) decodeScales(quants, at + s * SUPER_SHORTS, sc, (s - s0) * SUBS * ROWS);
        panelValues(at, s0, c0, c1, sc, p);
    }

    /**
     * {@link #panel} once the scales of super-blocks s0 .. are in sc: a method of its own (too large for C2 to inline
     * into panel), so that the decoding's vector calls do not count against its inlining budget; with them inside, the
     * full program's C2 left some of its vector calls uninlined and boxed the vectors.
     */
    private void panelValues(int at, int s0, int c0, int c1, float[] sc, float[] p) {
        short[] qs = quants;
        for (int j = c0 / SUB; j < c1 / SUB; j++) {
            int sp = (j - s0 * SUBS) * ROWS;
            FloatVector v0 = FloatVector.fromArray(F, sc, sp), v1 = FloatVector.fromArray(F, sc, sp + 8);
            FloatVector m0 = v0.mul(-32f), m1 = v1.mul(-32f);
            int qp = at + j / SUBS * SUPER_SHORTS + QUANTS_AT + j % SUBS * QUANT_SHORTS, at0 = (SUB * j - c0) * ROWS;
            for (int k = 0; k < 8; k++) {
                // int lane i: rows i (low short) and i + 8 (high short), each short the quants of values a and a + 4
                IntVector w = ShortVector.fromArray(S, qs, qp + 16 * k).reinterpretAsInts();
                int o = at0 + (8 * (k / 4) + k % 4) * ROWS;
                ((FloatVector) w.and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(v0, m0).intoArray(p, o);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 16).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(v1, m1).intoArray(p, o + 8);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 6).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(v0, m0).intoArray(p, o + 4 * ROWS);
                ((FloatVector) w.lanewise(VectorOperators.LSHR, 22).and(0x3F).convertShape(VectorOperators.I2F, F, 0)).fma(v1, m1).intoArray(p, o + 4 * ROWS + 8);
            }
        }
    }

    /**
     * Super-block b's scales d·scale into sc[o ..], sub-block after sub-block, 16 rows each: the file's d (stored widened
     * to float) times the int8 scale, exact in float, so the very floats the float-scale layout stored.
     */
    private static void decodeScales(short[] qs, int b, float[] sc, int o) {
        FloatVector d0 = ShortVector.fromArray(S, qs, b).reinterpretAsFloats(), d1 = ShortVector.fromArray(S, qs, b + 16).reinterpretAsFloats();
        for (int jj = 0; jj < SUBS; jj++) {
            int sp = b + SCALES_AT + jj * SCALE_SHORTS; // rows 0-7, then rows 8-15, a byte each
            ((FloatVector) ShortVector.fromArray(S4, qs, sp).reinterpretAsBytes().convertShape(VectorOperators.B2I, I, 0)
                    .convertShape(VectorOperators.I2F, F, 0)).mul(d0).intoArray(sc, o + jj * ROWS);
            ((FloatVector) ShortVector.fromArray(S4, qs, sp + 4).reinterpretAsBytes().convertShape(VectorOperators.B2I, I, 0)
                    .convertShape(VectorOperators.I2F, F, 0)).mul(d1).intoArray(sc, o + jj * ROWS + 8);
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
     * −32·Σq of its 8 values, then per vector i the pair A = q_a, B = q_b − 64·q_a.
     */
    static void layOut8(short[] v, int o, byte[] q, int xo) {
        for (int sub = 0; sub < 2; sub++) {
            for (int h = 0; h < 2; h++) {
                int p = o + (2 * sub + h) * HALF_MULTIPLIERS_8, first = xo + SUB * sub + 8 * h, sum = 0;
                for (int j = 0; j < 8; j++) sum += q[first + j];
                v[p] = (short) (-32 * sum);
                for (int i = 0; i < 4; i++) {
                    int a = first + i, m = p + 1 + 2 * i;
                    v[m] = q[a];
                    v[m + 1] = (short) (q[a + 4] - 64 * q[a]);
                }
            }
        }
    }

    @Override public GgmlType type() { return GgmlType.Q6_K; }
    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long byteSize() { return bytes(rows, cols); }

    @Override
    public PackedQ4.Precision precision(QuantizedActivation.Scheme rounding) {
        if (rounding == null) return PackedQ4.Precision.Q6_BITS_16;
        return rounding == QuantizedActivation.Scheme.Q8_K ? PackedQ4.Precision.Q6_BITS_8 : null;
    }

    @Override
    public PackedQ6 rows(int first, int count) {
        if (first % ROWS != 0 || count % ROWS != 0) return null;
        return new PackedQ6(quants, firstGroup + first / ROWS, count, cols);
    }

    @Override
    public void product(PackedQ4.Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff) {
        boolean rounded = a.precision == PackedQ4.Precision.Q6_BITS_8;
        if (a.cols != cols || !rounded && a.precision != PackedQ4.Precision.Q6_BITS_16) {
            throw new IllegalArgumentException("activation of " + a.cols + " values laid out for " + a.precision + ", not for a Q6 matrix of " + cols + " columns");
        }
        // pairs (g, g + half), as in PackedQ4.product: two unbroken streams through the range
        int supers = cols / QK, groupScales = supers * SUBS * ROWS;
        float[] sc = SCALES.get();
        if (sc.length < 2 * groupScales) SCALES.set(sc = new float[2 * groupScales]);
        int half = (g1 - g0) / 2;
        for (int i = 0; i < half; i++) {
            int g = g0 + i, h = g + half, outG = outOff + i * ROWS, outH = outOff + (i + half) * ROWS;
            decodeGroupScales(g, sc, 0);
            decodeGroupScales(h, sc, groupScales);
            if (rounded) pair8(g, h, a.v, vOff, a.d, dOff, sc, out, outG, outH);
            else pair16(g, h, a.v, vOff, a.d, dOff, sc, out, outG, outH);
        }
        int g = g0 + 2 * half;
        if (g < g1) {
            // a last odd group runs as a pair with itself, its second copy going to scratch
            float[] two = new float[2 * ROWS];
            decodeGroupScales(g, sc, 0);
            decodeGroupScales(g, sc, groupScales);
            if (rounded) pair8(g, g, a.v, vOff, a.d, dOff, sc, two, 0, ROWS);
            else pair16(g, g, a.v, vOff, a.d, dOff, sc, two, 0, ROWS);
            System.arraycopy(two, 0, out, outOff + (g - g0) * ROWS, ROWS);
        }
    }

    /**
     * Group g's scales, super-block after super-block, into sc[o ..]: decoded here, before {@link #pair16}/{@link #pair8}
     * run, so that those load float scales as they did on main and stay within what C2 inlines in the full program
     * (with the decoding inside them, even as a call once per super-block, which C2 inlined, it left some of their vector
     * calls uninlined and boxed the vectors: decode several times slower in rounds).
     */
    private void decodeGroupScales(int g, float[] sc, int o) {
        int supers = cols / QK, at = (firstGroup + g) * supers * SUPER_SHORTS;
        for (int s = 0; s < supers; s++) decodeScales(quants, at + s * SUPER_SHORTS, sc, o + s * SUBS * ROWS);
    }

    /**
     * Groups g and h (any other group, or g again) at once, each multiplier broadcast once for both: out[outOff ..] gets
     * g's 16 rows, out[outH ..] h's.
     */
    private void pair16(int g, int h, short[] act, int vOff, float[] dx, int dOff, float[] sc, float[] out, int outOff, int outH) {
        short[] qs = quants;
        int supers = cols / QK, at0 = (firstGroup + g) * supers * SUPER_SHORTS, at1 = (firstGroup + h) * supers * SUPER_SHORTS;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int s = 0; s < supers; s++) {
            int b0 = at0 + s * SUPER_SHORTS, b1 = at1 + s * SUPER_SHORTS;
            for (int jj = 0; jj < SUBS; jj++) {
                int j = s * SUBS + jj, qp = b0 + QUANTS_AT + jj * QUANT_SHORTS, qq = b1 + QUANTS_AT + jj * QUANT_SHORTS;
                IntVector t0 = IntVector.zero(I), t1 = t0, r0 = t0, r1 = t0;
                for (int half = 0; half < 2; half++) {
                    int o = vOff + j * 2 * HALF_MULTIPLIERS + half * HALF_MULTIPLIERS;
                    ShortVector kh = ShortVector.broadcast(S, act[o]), kl = ShortVector.broadcast(S, act[o + 1]);
                    ShortVector hv = kh, lv = kl, hu = kh, lu = kl;
                    for (int i = 0; i < 4; i++) {
                        int k = 16 * (4 * half + i), m = o + 2 + 4 * i;
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
                    }
                    // 256·hi + lo per row: rows 0-7 in the low halves of the 32-bit lanes, rows 8-15 in the high halves
                    IntVector hi = hv.reinterpretAsInts(), lo = lv.reinterpretAsInts(), hi2 = hu.reinterpretAsInts(), lo2 = lu.reinterpretAsInts();
                    t0 = t0.add(hi.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8))
                            .add(lo.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    t1 = t1.add(hi.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8)).add(lo.lanewise(VectorOperators.ASHR, 16));
                    r0 = r0.add(hi2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 8))
                            .add(lo2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                    r1 = r1.add(hi2.lanewise(VectorOperators.ASHR, 16).lanewise(VectorOperators.LSHL, 8)).add(lo2.lanewise(VectorOperators.ASHR, 16));
                }
                float d = dx[dOff + j / 2]; // the activation's scale: one per 32 values, two sub-blocks
                int p = j * ROWS, q = (supers * SUBS + j) * ROWS; // the scales decodeGroupScales laid out
                a0 = ((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p).mul(d), a0);
                a1 = ((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p + 8).mul(d), a1);
                c0 = ((FloatVector) r0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q).mul(d), c0);
                c1 = ((FloatVector) r1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q + 8).mul(d), c1);
            }
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
    private void pair8(int g, int h, short[] act, int vOff, float[] dx, int dOff, float[] sc, float[] out, int outOff, int outH) {
        short[] qs = quants;
        int supers = cols / QK, at0 = (firstGroup + g) * supers * SUPER_SHORTS, at1 = (firstGroup + h) * supers * SUPER_SHORTS;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int s = 0; s < supers; s++) {
            int b0 = at0 + s * SUPER_SHORTS, b1 = at1 + s * SUPER_SHORTS;
            for (int jj = 0; jj < SUBS; jj++) {
                int j = s * SUBS + jj, qp = b0 + QUANTS_AT + jj * QUANT_SHORTS, qq = b1 + QUANTS_AT + jj * QUANT_SHORTS;
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
                float d = dx[dOff + j / 2]; // the activation's scale: one per 32 values, two sub-blocks
                int p = j * ROWS, q = (supers * SUBS + j) * ROWS; // the scales decodeGroupScales laid out
                a0 = ((FloatVector) t0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p).mul(d), a0);
                a1 = ((FloatVector) t1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, p + 8).mul(d), a1);
                c0 = ((FloatVector) r0.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q).mul(d), c0);
                c1 = ((FloatVector) r1.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, sc, q + 8).mul(d), c1);
            }
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + 8);
        c0.intoArray(out, outH);
        c1.intoArray(out, outH + 8);
    }
}
