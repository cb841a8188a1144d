package dev.jmoe.tensor;

import jdk.incubator.vector.ByteVector;
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
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Q8_0 matrix regrouped 16 rows at a time, for products with float activations: per group and block of 32 values, the
 * 16 rows' scales d as the file's halves (32 bytes), then for each of the 32 columns the 16 rows' quants side by side
 * (16 bytes), all in one byte array. A column is one 16-byte load widened to 16 floats (one 512-bit vector, a row per
 * lane) and one FMA with the activation value broadcast; a block ends with one FMA by its 16 scales, widened from the
 * halves in registers.
 *
 * <p>Why: on the file's rows a Q8_0 dot costs about one instruction per weight (the 32 quants of a block split into
 * four float vectors by shifts and masks, plus the bounds checks of long segment offsets in every block), and a
 * decode step is bound by that, not by memory: one thread reached ~12 GB/s from cache or memory alike. Here a weight
 * costs about a quarter of an instruction, in Java arrays C2 compiles without bounds checks, on the heap's transparent huge
 * pages (the file's mapping has 4 KB pages, at whose boundaries the hardware prefetchers stop). A prompt batch
 * decodes the same groups to column-major float panels for {@link FloatGemm#panel16}.
 *
 * <p>The copy holds exactly the file's bytes (34 per 32 weights), in one stream: decode reads every weight once per
 * token and is bound by memory at two threads, and with the scales as floats (36 bytes per 32 weights, the layout
 * until session 33) Mixtral-like Q8_0 decode read 1.06× llama.cpp's bytes at the same ~28 GB/s (AMD EPYC, Zen 4 class;
 * docs/speed.md).
 *
 * <p>A row's product is bit for bit the row kernel's ({@link Q8_0Kernel#dotPrepared}: the same float operations in the same
 * order), so packing changes no result. With 8-bit activations (llama.cpp's rounding) the same kernels take the rounded
 * integers as floats and each block's d_w·d_x, and give the row kernel's integer arithmetic bit for bit ({@link #precision}).
 * Until session 42 such products took the file's rows: compute-bound at ~12 GB/s per thread in decode, and over the
 * file's 4 KB pages in prompts.
 */
public final class PackedQ8 implements PackedMatrix {
    private static final int QK = 32;
    private static final int BLOCK = Q8_0Kernel.BLOCK;
    /** Bytes of the quants of one block of a group: 32 columns × 16 rows. */
    private static final int QUANT_BYTES = QK * ROWS;
    /** Bytes of the scales of one block of a group: 16 halves, before its quants. */
    private static final int SCALE_BYTES = 2 * ROWS;
    /** Bytes of one block of a group: its scales, then its quants. */
    private static final int BLOCK_BYTES = SCALE_BYTES + QUANT_BYTES;
    // The group kernels call lanewise(op, ...) itself, never the final add/mul/fma: those dispatch inside the JDK,
    // where the receiver type profile is shared with every other kernel's calls, and 512-bit vectors there made C2
    // compile the 256-bit kernels (PackedQ4, PackedQ6) against bimorphic profiles and box their vectors in some JVM
    // runs (session 30, AMD EPYC Zen 4: docs/speed.md). Called here, the dispatch is profiled at this call site.
    // For the same reason the 512-bit sums are stored with intoMemorySegment, which no 256-bit kernel uses:
    // FloatVector.intoArray asks its receiver for length() and vspecies(), and even the few dozen 512-bit stores
    // made before this kernel was compiled left those two calls bimorphic for PackedQ4 (1 boxed run of 12).
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    /** Vectors per pass of {@link #productBatch}: their accumulators stay in L1 between blocks. */
    private static final int BATCH_TILE = 4;
    /**
     * Vectors per pass with rounded activations, whose scales take a multiply per block and vector on top: eight widen
     * each column once for twice the vectors (JMH MatMulBench Q8_0 8-bit, hot, one thread, AMD EPYC Zen 4 class, measured
     * with one group per pass: 768×1024 batch 64 42.2 GFLOP/s against 28.6 with four, 1024×3584 43.6 against 33.2;
     * sixteen no faster). In the full program
     * the two could not be told apart (8-bit prompts, one JVM, alternated rounds: Mixtral-like Q8_0 0.996, Qwen3-like Q8_0
     * 1.049, Qwen3-like Q4_K_M 1.005).
     */
    private static final int ROUNDED_TILE = 8;
    /** Each thread's accumulators for {@link #groupBatch}: two groups' eight per row and vector of a pass. */
    private static final ThreadLocal<float[]> BATCH_ACCUMULATORS = ThreadLocal.withInitial(() -> new float[2 * Math.max(BATCH_TILE, ROUNDED_TILE) * 8 * ROWS]);
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    // A block's 16 halves as bytes, as shorts, as ints (the 512-bit kernels); and 8 of them for the 256-bit ones.
    // Session 33 tried keeping 512-bit integer vectors out of the JDK's shared templates (the Q4/Q6 kernels run through
    // them at 256 bits): the halves widened by two 256-bit passes in a helper, into a per-thread array. Its decode was
    // slower in every batch against this form (1.03x against 1.08-1.09x llama.cpp; 147-177 against 190-192 t/s), and in
    // one JFR-recorded run its helper ran the Vector API's Java fall-back (55% of samples in its load's index checks).
    // With this form PackedQ4.group16Pair's compiles kept 16 unfolded species checks and 4 bimorphic inlines in 2 of 2
    // Mixtral-like Q4_0 runs (bench/boxcheck.py; main none), the state that precedes its boxed runs, though neither run
    // boxed it and the Q4 rows' speed did not move (docs/speed.md, session 33): one to watch.
    private static final VectorSpecies<Byte> HB16 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> H16 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I16 = IntVector.SPECIES_512;
    private static final VectorSpecies<Short> H8 = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I8 = IntVector.SPECIES_256;
    // A half becomes a float in three lane operations, as F16Kernel widens its rows (its constants): the sign-extended
    // half shifted left by 13 and masked to a float's sign, exponent and fraction fields (FLOAT_FIELDS), then scaled by
    // 2^112 to rebias the exponent (HALF_TO_FLOAT_SCALE). Exact for every finite half, subnormal ones included; a copy
    // with an infinite or NaN scale (finiteScales false) takes the scalar path instead.

    /** Per block of each group: the 16 rows' d (halves, little-endian), then 32 columns of 16 quants. */
    private final byte[] quants;
    /**
     * Whether every scale is finite. An infinite or NaN d (a damaged file, but one the row kernel multiplies as it is)
     * would come out finite from the vector widening, so such a copy multiplies by the scalar definitions instead.
     */
    private final boolean finiteScales;
    private final int firstGroup;
    private final int rows, cols;

    private PackedQ8(byte[] quants, boolean finiteScales, int firstGroup, int rows, int cols) {
        this.quants = quants;
        this.finiteScales = finiteScales;
        this.firstGroup = firstGroup;
        this.rows = rows;
        this.cols = cols;
    }

    /** Whether {@code m} can be packed: Q8_0 with whole groups of 16 rows, its quants fitting one Java array. */
    public static boolean canPack(Matrix m) {
        return m.type() == GgmlType.Q8_0 && m.rows() % ROWS == 0 && m.cols() % QK == 0 && (long) m.rows() * m.cols() <= Integer.MAX_VALUE - 64;
    }

    /** Bytes a packed copy of {@code m} takes ({@link #canPack} must hold): the file's, the quants and a half scale per row and block. */
    public static long packedBytes(Matrix m) {
        return bytes(m.rows(), m.cols());
    }

    private static long bytes(int rows, int cols) {
        return (long) rows * cols + (long) rows * (cols / QK) * 2L;
    }

    /** Regroups {@code m} ({@link #canPack} must hold), the groups split over {@code pool} (null: this thread). */
    public static PackedQ8 pack(Matrix m, Parallel pool) {
        if (!canPack(m)) {
            throw new IllegalArgumentException("only Q8_0 matrices with a multiple of " + ROWS + " rows can be packed as Q8, got " + m.type() + " "
                    + m.rows() + "x" + m.cols());
        }
        return packInto(m, new byte[quantBytes(m)], pool);
    }

    /** Length of the byte array a packed copy of {@code m} takes ({@link #canPack} must hold): scales and quants. */
    static int quantBytes(Matrix m) {
        return m.rows() / ROWS * (m.cols() / QK) * BLOCK_BYTES;
    }

    /** Floats of scales a packed copy of {@code m} takes apart from its bytes: none (its halves are in the byte array). */
    static int scaleFloats(Matrix m) {
        return 0;
    }

    /**
     * As {@link #pack}, into an array the caller owns and reuses (a fast-memory slot), at least {@link #quantBytes}
     * long. The copy equals {@link #pack}'s byte for byte; it is valid until the array is overwritten.
     */
    static PackedQ8 packInto(Matrix m, byte[] quants, Parallel pool) {
        if (!canPack(m)) throw new IllegalArgumentException("cannot pack a " + m.type() + " " + m.rows() + "x" + m.cols() + " matrix as Q8");
        if (quants == null || quants.length < quantBytes(m)) throw new IllegalArgumentException("array too small for the packed copy");
        int groups = m.rows() / ROWS;
        AtomicBoolean nonFinite = new AtomicBoolean();
        Parallel.RangeTask task = (g0, g1) -> {
            if (packGroups(m, quants, g0, g1)) nonFinite.set(true);
        };
        if (pool == null || groups < 2) task.run(0, groups);
        else pool.forRange(groups, 1, task);
        return new PackedQ8(quants, !nonFinite.get(), 0, m.rows(), m.cols());
    }

    private static final VarHandle SHORT_LE = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    /**
     * Groups [g0, g1), through a heap copy of one group's rows at a time (element-wise segment reads cost several times
     * more); whether any of their scales is infinite or NaN (a half's exponent 31).
     */
    private static boolean packGroups(Matrix m, byte[] quants, int g0, int g1) {
        int nb = m.cols() / QK, rowBytes = (int) m.rowBytes();
        byte[] in = new byte[ROWS * rowBytes];
        boolean nonFinite = false;
        for (int g = g0; g < g1; g++) {
            MemorySegment.copy(m.data(), ValueLayout.JAVA_BYTE, (long) g * ROWS * rowBytes, in, 0, in.length);
            for (int r = 0; r < ROWS; r++) {
                for (int b = 0; b < nb; b++) {
                    int p = r * rowBytes + b * BLOCK, bp = (g * nb + b) * BLOCK_BYTES;
                    quants[bp + 2 * r] = in[p];
                    quants[bp + 2 * r + 1] = in[p + 1];
                    nonFinite |= (in[p + 1] & 0x7c) == 0x7c;
                    for (int c = 0; c < QK; c++) quants[bp + SCALE_BYTES + c * ROWS + r] = in[p + 2 + c];
                }
            }
        }
        return nonFinite;
    }

    /** Row r's scale in block {@code blk} (counted from the array's first group), as the file's rows read it. */
    private float scale(int blk, int r) {
        return Float.float16ToFloat((short) SHORT_LE.get(quants, blk * BLOCK_BYTES + 2 * r));
    }

    @Override public GgmlType type() { return GgmlType.Q8_0; }
    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public long byteSize() { return bytes(rows, cols); }

    /**
     * Float activations, or activations rounded to Q8_0 as floats ({@link PackedQ4.Precision#Q8_FLOATS}). With those the
     * kernels give llama.cpp's integer sums (those of the file's rows, {@link Q8_0Kernel#dotQ8}) bit for bit: a partial sum
     * of four products of integers up to 128·127 is exact in float, and each block adds it times d_w·d_x by one FMA, as
     * dotQ8 adds its integer lane; the row kernel's lanes i hold values 4i .. 4i + 3, the accumulators here. A copy with a
     * non-finite scale leaves rounded activations to the file's rows.
     */
    @Override
    public PackedQ4.Precision precision(QuantizedActivation.Scheme rounding) {
        if (rounding == null) return PackedQ4.Precision.FLOAT;
        return rounding == QuantizedActivation.Scheme.Q8_0 && finiteScales ? PackedQ4.Precision.Q8_FLOATS : null;
    }

    @Override
    public PackedQ8 rows(int first, int count) {
        if (first % ROWS != 0 || count % ROWS != 0) return null;
        return new PackedQ8(quants, finiteScales, firstGroup + first / ROWS, count, cols);
    }

    /**
     * This copy multiplies activations of its own width laid out as floats ({@link #precision}); the scales of rounded
     * ones, or null for plain floats.
     */
    private float[] requireFloats(PackedQ4.Activation a) {
        boolean rounded = a.precision == PackedQ4.Precision.Q8_FLOATS;
        if (a.cols != cols || a.precision != PackedQ4.Precision.FLOAT && !rounded) {
            throw new IllegalArgumentException("activation of " + a.cols + " values laid out for " + a.precision + ", not for a Q8 matrix of " + cols + " columns");
        }
        if (rounded && !finiteScales) throw new IllegalArgumentException("a Q8 copy with a non-finite scale multiplies no rounded activations");
        return rounded ? a.d : null;
    }

    /**
     * out[outOff + 16·(g − g0) + i] = row (16·g + i) · x for groups g in [g0, g1), x the floats at a.f[vOff ..] (rounded
     * ones: their block scales at a.d[dOff ..]).
     */
    @Override
    public void product(PackedQ4.Activation a, int vOff, int dOff, int g0, int g1, float[] out, int outOff) {
        float[] dx = requireFloats(a);
        for (int g = g0; g < g1; g++) {
            if (finiteScales) group(g, a.f, vOff, dx, dOff, out, outOff + (g - g0) * ROWS);
            else groupScalar(g, a.f, vOff, out, outOff + (g - g0) * ROWS);
        }
    }

    /**
     * Several vectors against the same groups, four at a time (rounded ones eight, {@link #ROUNDED_TILE}) and two groups
     * at a time: each column's 16 weights are widened to floats once for the pass, and each vector's operations are
     * exactly {@link #group}'s, in its order, so every vector gets the bits it gets alone (a batch of sequences decoding
     * together stays batch-invariant).
     */
    @Override
    public void productBatch(PackedQ4.Activation a, int batch, int stride, int blocks, int g0, int g1, float[] out, int outOff, int outStride) {
        if (batch == 1) {
            product(a, 0, 0, g0, g1, out, outOff);
            return;
        }
        float[] dx = requireFloats(a);
        if (!finiteScales) {
            for (int b = 0; b < batch; b++) product(a, b * stride, b * blocks, g0, g1, out, outOff + b * outStride);
            return;
        }
        float[] acc = BATCH_ACCUMULATORS.get();
        int tile = dx == null ? BATCH_TILE : ROUNDED_TILE;
        for (int b0 = 0; b0 < batch; b0 += tile) {
            int tokens = Math.min(tile, batch - b0);
            for (int g = g0; g < g1; g += 2) {
                int h = Math.min(g + 1, g1 - 1);
                int o = outOff + b0 * outStride;
                groupBatch(g, h, a.f, b0 * stride, stride, dx, b0 * blocks, blocks, tokens, out, o + (g - g0) * ROWS, o + (h - g0) * ROWS, outStride, acc);
            }
        }
    }

    /**
     * {@link #group} of groups g and h (h may be g again: its rows are then written twice, with the same bits) for
     * {@code tokens} vectors (x at xOff + t·xStride, rounded ones' scales at dx[dOff + t·blocks ..]), results at
     * outOff + t·outStride for g and outH + t·outStride for h; weights widened once per pass.
     *
     * <p>Two groups per pass so that each activation value broadcast to a 512-bit vector serves both: with one group
     * the loop over the vectors did five broadcasts per four FMAs, and neither removing its index checks (31 instructions
     * instead of 41) nor computing d_w·d_x once per block and vector made it faster. With two, 8-bit batches ran 25-34%
     * more GFLOP/s (JMH MatMulBench Q8_0, hot, one thread, AMD EPYC Zen 4 class: 768×1024 batch 64 55.9 against 42.2,
     * 1024×3584 58.3 against 43.6; batch 8 49.4 against 39.5, and 46.0 against 46.1).
     */
    private void groupBatch(int g, int h, float[] x, int xOff, int xStride, float[] dx, int dOff, int blocks, int tokens, float[] out, int outOff, int outH,
                            int outStride, float[] acc) {
        byte[] qs = quants;
        int nb = cols / QK, block0 = (firstGroup + g) * nb, blockH = (firstGroup + h) * nb, second = tokens * 8 * ROWS;
        java.util.Arrays.fill(acc, 0, 2 * second, 0f);
        MemorySegment accs = MemorySegment.ofArray(acc), outs = MemorySegment.ofArray(out);
        IntVector by13 = IntVector.broadcast(I16, 13), fields = IntVector.broadcast(I16, F16Kernel.FLOAT_FIELDS);
        FloatVector rebias = FloatVector.broadcast(F, F16Kernel.HALF_TO_FLOAT_SCALE);
        for (int b = 0; b < nb; b++) {
            int bp = (block0 + b) * BLOCK_BYTES, qp = bp + SCALE_BYTES, xb = xOff + b * QK;
            int bh = (blockH + b) * BLOCK_BYTES, qh = bh + SCALE_BYTES;
            FloatVector d = ((IntVector) ByteVector.fromArray(HB16, qs, bp).reinterpretShape(H16, 0).convertShape(VectorOperators.S2I, I16, 0))
                    .lanewise(VectorOperators.LSHL, by13).lanewise(VectorOperators.AND, fields).viewAsFloatingLanes()
                    .lanewise(VectorOperators.MUL, rebias);
            FloatVector e = ((IntVector) ByteVector.fromArray(HB16, qs, bh).reinterpretShape(H16, 0).convertShape(VectorOperators.S2I, I16, 0))
                    .lanewise(VectorOperators.LSHL, by13).lanewise(VectorOperators.AND, fields).viewAsFloatingLanes()
                    .lanewise(VectorOperators.MUL, rebias);
            for (int i = 0; i < 8; i++) {
                int q = qp + 4 * ROWS * i, r = qh + 4 * ROWS * i;
                FloatVector w0 = (FloatVector) ByteVector.fromArray(B, qs, q).convertShape(VectorOperators.B2F, F, 0);
                FloatVector w1 = (FloatVector) ByteVector.fromArray(B, qs, q + ROWS).convertShape(VectorOperators.B2F, F, 0);
                FloatVector w2 = (FloatVector) ByteVector.fromArray(B, qs, q + 2 * ROWS).convertShape(VectorOperators.B2F, F, 0);
                FloatVector w3 = (FloatVector) ByteVector.fromArray(B, qs, q + 3 * ROWS).convertShape(VectorOperators.B2F, F, 0);
                FloatVector v0 = (FloatVector) ByteVector.fromArray(B, qs, r).convertShape(VectorOperators.B2F, F, 0);
                FloatVector v1 = (FloatVector) ByteVector.fromArray(B, qs, r + ROWS).convertShape(VectorOperators.B2F, F, 0);
                FloatVector v2 = (FloatVector) ByteVector.fromArray(B, qs, r + 2 * ROWS).convertShape(VectorOperators.B2F, F, 0);
                FloatVector v3 = (FloatVector) ByteVector.fromArray(B, qs, r + 3 * ROWS).convertShape(VectorOperators.B2F, F, 0);
                for (int t = 0; t < tokens; t++) {
                    int xi = xb + t * xStride + 4 * i, ao = (8 * t + i) * ROWS;
                    FloatVector x0 = FloatVector.broadcast(F, x[xi]), x1 = FloatVector.broadcast(F, x[xi + 1]);
                    FloatVector x2 = FloatVector.broadcast(F, x[xi + 2]), x3 = FloatVector.broadcast(F, x[xi + 3]);
                    FloatVector s = w0.lanewise(VectorOperators.MUL, x0);
                    s = w1.lanewise(VectorOperators.FMA, x1, s);
                    s = w2.lanewise(VectorOperators.FMA, x2, s);
                    s = w3.lanewise(VectorOperators.FMA, x3, s);
                    FloatVector u = v0.lanewise(VectorOperators.MUL, x0);
                    u = v1.lanewise(VectorOperators.FMA, x1, u);
                    u = v2.lanewise(VectorOperators.FMA, x2, u);
                    u = v3.lanewise(VectorOperators.FMA, x3, u);
                    FloatVector dt = d, et = e;
                    if (dx != null) {
                        FloatVector xd = FloatVector.broadcast(F, dx[dOff + t * blocks + b]);
                        dt = d.lanewise(VectorOperators.MUL, xd);
                        et = e.lanewise(VectorOperators.MUL, xd);
                    }
                    s.lanewise(VectorOperators.FMA, dt, FloatVector.fromArray(F, acc, ao)).intoMemorySegment(accs, (long) ao * Float.BYTES, ByteOrder.nativeOrder());
                    u.lanewise(VectorOperators.FMA, et, FloatVector.fromArray(F, acc, second + ao)).intoMemorySegment(accs, (long) (second + ao) * Float.BYTES, ByteOrder.nativeOrder());
                }
            }
        }
        for (int k = 0; k < 2 * tokens; k++) {
            int ao = 8 * k * ROWS, t = k % tokens, o = (k < tokens ? outOff : outH) + t * outStride;
            FloatVector a0 = FloatVector.fromArray(F, acc, ao), a1 = FloatVector.fromArray(F, acc, ao + ROWS);
            FloatVector a2 = FloatVector.fromArray(F, acc, ao + 2 * ROWS), a3 = FloatVector.fromArray(F, acc, ao + 3 * ROWS);
            FloatVector a4 = FloatVector.fromArray(F, acc, ao + 4 * ROWS), a5 = FloatVector.fromArray(F, acc, ao + 5 * ROWS);
            FloatVector a6 = FloatVector.fromArray(F, acc, ao + 6 * ROWS), a7 = FloatVector.fromArray(F, acc, ao + 7 * ROWS);
            a0.lanewise(VectorOperators.ADD, a4).lanewise(VectorOperators.ADD, a2.lanewise(VectorOperators.ADD, a6)).lanewise(VectorOperators.ADD, a1.lanewise(VectorOperators.ADD, a5).lanewise(VectorOperators.ADD, a3.lanewise(VectorOperators.ADD, a7))).intoMemorySegment(outs, (long) o * Float.BYTES, ByteOrder.nativeOrder());
        }
    }

    /**
     * One group, each row the float operations of {@link Q8_0Kernel#dotPrepared} in its order, so that a packed product
     * is bit for bit the product of the file's rows (the scalar reference's rows and offloaded experts, which are never
     * packed, agree with resident packed ones): per block eight partial sums of four values each (values 4i .. 4i + 3:
     * a product, then three FMAs), each times d into its own accumulator, blocks in order; then the accumulators' fixed
     * sum ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). With 16 rows in lanes the row kernel's eight lanes are eight
     * vectors. (The row kernel scales quants by 2^24 and d by 2^-24, which changes no rounding of normal floats.)
     */
    private void group(int g, float[] x, int xOff, float[] dx, int dOff, float[] out, int outOff) {
        // A quarter of a block per iteration (8 columns into two accumulators), then the eight accumulators rotate by
        // two, so after a whole block each has summed exactly its columns, blocks in order: the same bits. Written out
        // in one body, the 32 columns of a block sometimes exceeded C2's inlining budget in the full program (and half
        // a block per iteration still did, at the final sum): the Vector API calls past that point were not inlined
        // and every vector was boxed on the heap, 0.6-1.9 GB of garbage per run, and decode rounds ran 2-10x slower
        // (JFR, qwen3moe-bench Q8_0 and Q4_K_M). Accumulators kept in memory between blocks, or two passes over the
        // group, avoided that but cost 15-45% when the weights stream from memory (JMH MatVecBench).
        byte[] qs = quants;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        FloatVector z = FloatVector.zero(F);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
        IntVector by13 = IntVector.broadcast(I16, 13), fields = IntVector.broadcast(I16, F16Kernel.FLOAT_FIELDS);
        FloatVector rebias = FloatVector.broadcast(F, F16Kernel.HALF_TO_FLOAT_SCALE);
        for (int h = 0; h < 4 * nb; h++) {
            int blk = block0 + (h >> 2), c0 = (h & 3) * 8;
            int bp = blk * BLOCK_BYTES, qp = bp + SCALE_BYTES + ROWS * c0, xp = xOff + (h >> 2) * QK + c0;
            // the block's scales are widened again in each of its four quarters: a few lane operations, which cost
            // less than carrying them across the quarters (C2's inlining budget, above)
            FloatVector d = ((IntVector) ByteVector.fromArray(HB16, qs, bp).reinterpretShape(H16, 0).convertShape(VectorOperators.S2I, I16, 0))
                    .lanewise(VectorOperators.LSHL, by13).lanewise(VectorOperators.AND, fields).viewAsFloatingLanes()
                    .lanewise(VectorOperators.MUL, rebias), s;
            if (dx != null) d = d.lanewise(VectorOperators.MUL, FloatVector.broadcast(F, dx[dOff + (h >> 2)])); // rounded activations: d_w·d_x
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.MUL, FloatVector.broadcast(F, x[xp]));
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 16).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 1]), s);
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 32).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 2]), s);
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 48).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 3]), s);
            a0 = s.lanewise(VectorOperators.FMA, d, a0);
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 64).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.MUL, FloatVector.broadcast(F, x[xp + 4]));
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 80).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 5]), s);
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 96).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 6]), s);
            s = ((FloatVector) ByteVector.fromArray(B, qs, qp + 112).convertShape(VectorOperators.B2F, F, 0)).lanewise(VectorOperators.FMA, FloatVector.broadcast(F, x[xp + 7]), s);
            a1 = s.lanewise(VectorOperators.FMA, d, a1);
            FloatVector t0 = a0, t1 = a1;
            a0 = a2;
            a1 = a3;
            a2 = a4;
            a3 = a5;
            a4 = a6;
            a5 = a7;
            a6 = t0;
            a7 = t1;
        }
        // a multiple of four quarters: every accumulator is back in its place
        a0.lanewise(VectorOperators.ADD, a4).lanewise(VectorOperators.ADD, a2.lanewise(VectorOperators.ADD, a6)).lanewise(VectorOperators.ADD, a1.lanewise(VectorOperators.ADD, a5).lanewise(VectorOperators.ADD, a3.lanewise(VectorOperators.ADD, a7))).intoMemorySegment(MemorySegment.ofArray(out), (long) outOff * Float.BYTES, ByteOrder.nativeOrder());
    }

    /** {@link #group} one value at a time, in the same order: the definition the vector form must equal bit for bit. */
    void groupScalar(int g, float[] x, int xOff, float[] out, int outOff) {
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        for (int r = 0; r < ROWS; r++) {
            float[] a = new float[8];
            for (int b = 0; b < nb; b++) {
                int qp = (block0 + b) * BLOCK_BYTES + SCALE_BYTES, xp = xOff + b * QK;
                float d = scale(block0 + b, r);
                for (int i = 0; i < 8; i++) {
                    float s = quants[qp + 4 * i * ROWS + r] * x[xp + 4 * i];
                    for (int j = 1; j < 4; j++) s = Math.fma(quants[qp + (4 * i + j) * ROWS + r], x[xp + 4 * i + j], s);
                    a[i] = Math.fma(s, d, a[i]);
                }
            }
            out[outOff + r] = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
        }
    }

    /** Token forms of {@link #panelProduct}: 4, 6 or 8 tokens per pass over a group's weights. */
    private static final int[] FORMS = {4, 6, 8};
    /** For a batch of n &lt; FIRST_FORM.length tokens, the form its first pass takes (the cheapest split, see panelProduct). */
    private static final byte[] FIRST_FORM = firstForms(64);

    /**
     * Per batch size, the first pass of the split into passes of 4, 6 or 8 tokens (the last one padded) with the fewest
     * token columns in all, ties going to fewer passes: a pass costs its width in FMAs per column whether its tokens are
     * real or repeated, and below 4 tokens the FMA chains wait on their latency instead.
     */
    private static byte[] firstForms(int max) {
        int[] cost = new int[max + 1], passes = new int[max + 1];
        byte[] first = new byte[max + 1];
        for (int n = 1; n <= max; n++) {
            cost[n] = Integer.MAX_VALUE;
            for (int f : FORMS) {
                int rest = Math.max(0, n - f), c = f + cost[rest], p = 1 + passes[rest];
                if (c < cost[n] || (c == cost[n] && p < passes[n])) {
                    cost[n] = c;
                    passes[n] = p;
                    first[n] = (byte) f;
                }
            }
        }
        return first;
    }

    /**
     * out[outOff + b·outStride + 16·(g − g0) + r] = Σ_c w[16·g + r][c]·x[xOff + b·xStride + c] for groups [g0, g1) and
     * tokens b &lt; batch: {@link #panel} and {@link FloatGemm#panel16} in one pass, the weights widened and scaled in
     * registers (no panel written and read back). Each output is the same chain of FMAs, column by column from zero, over
     * the same products q·d, as the panels give it (and {@link FloatGemm#rowTile} on the file's rows): the same bits.
     * Tokens go 4, 6 or 8 per pass over the group's quants (16 FMA chains for 8), widening each column again per pass;
     * they are read at their stride, so neither {@code xt} nor {@code panel} is used.
     */
    @Override
    public void panelProduct(int g0, int g1, float[] x, int xOff, int xStride, float[] xt, int batch, float[] panel, int panelCols,
                             float[] out, int outOff, int outStride) {
        if (!finiteScales) { // the decoded panels (scales widened one by one) against FloatGemm: the same bits
            PackedMatrix.super.panelProduct(g0, g1, x, xOff, xStride, xt, batch, panel, panelCols, out, outOff, outStride);
            return;
        }
        for (int g = g0; g < g1; g++) {
            int o = outOff + (g - g0) * ROWS;
            for (int b = 0; b < batch; ) {
                int n = batch - b;
                int f = n < FIRST_FORM.length ? FIRST_FORM[n] : 8;
                int real = Math.min(f, n), x0 = xOff + b * xStride, o0 = o + b * outStride;
                if (f == 8) tokens8(g, x, x0, xStride, real, out, o0, outStride);
                else if (f == 6) tokens6(g, x, x0, xStride, real, out, o0, outStride);
                else tokens4(g, x, x0, xStride, real, out, o0, outStride);
                b += real;
            }
        }
    }

    /** 8 tokens of {@link #panelProduct} (n of them real, the others repeating the last): 16 accumulators. */
    private void tokens8(int g, float[] x, int x0, int xStride, int n, float[] out, int o0, int outStride) {
        byte[] qs = quants;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        int x1 = x0 + Math.min(1, n - 1) * xStride, x2 = x0 + Math.min(2, n - 1) * xStride, x3 = x0 + Math.min(3, n - 1) * xStride, x4 = x0 + Math.min(4, n - 1) * xStride, x5 = x0 + Math.min(5, n - 1) * xStride, x6 = x0 + Math.min(6, n - 1) * xStride, x7 = x0 + Math.min(7, n - 1) * xStride;
        FloatVector z = FloatVector.zero(F8);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        for (int b = 0; b < nb; b++) {
            int bp = (block0 + b) * BLOCK_BYTES, qp = bp + SCALE_BYTES, xb = b * QK;
            FloatVector d0 = halves8(qs, bp), d1 = halves8(qs, bp + 16);
            for (int c = 0; c < QK; c++) {
                int q = qp + c * ROWS, k = xb + c;
                FloatVector w0 = ((FloatVector) ByteVector.fromArray(B8, qs, q).convertShape(VectorOperators.B2F, F8, 0)).mul(d0);
                FloatVector w1 = ((FloatVector) ByteVector.fromArray(B8, qs, q + 8).convertShape(VectorOperators.B2F, F8, 0)).mul(d1);
                FloatVector t = FloatVector.broadcast(F8, x[x0 + k]);
                c00 = w0.fma(t, c00);
                c01 = w1.fma(t, c01);
                t = FloatVector.broadcast(F8, x[x1 + k]);
                c10 = w0.fma(t, c10);
                c11 = w1.fma(t, c11);
                t = FloatVector.broadcast(F8, x[x2 + k]);
                c20 = w0.fma(t, c20);
                c21 = w1.fma(t, c21);
                t = FloatVector.broadcast(F8, x[x3 + k]);
                c30 = w0.fma(t, c30);
                c31 = w1.fma(t, c31);
                t = FloatVector.broadcast(F8, x[x4 + k]);
                c40 = w0.fma(t, c40);
                c41 = w1.fma(t, c41);
                t = FloatVector.broadcast(F8, x[x5 + k]);
                c50 = w0.fma(t, c50);
                c51 = w1.fma(t, c51);
                t = FloatVector.broadcast(F8, x[x6 + k]);
                c60 = w0.fma(t, c60);
                c61 = w1.fma(t, c61);
                t = FloatVector.broadcast(F8, x[x7 + k]);
                c70 = w0.fma(t, c70);
                c71 = w1.fma(t, c71);
            }
        }
        c00.intoArray(out, o0);
        c01.intoArray(out, o0 + 8);
        int o1 = o0 + Math.min(1, n - 1) * outStride;
        c10.intoArray(out, o1);
        c11.intoArray(out, o1 + 8);
        int o2 = o0 + Math.min(2, n - 1) * outStride;
        c20.intoArray(out, o2);
        c21.intoArray(out, o2 + 8);
        int o3 = o0 + Math.min(3, n - 1) * outStride;
        c30.intoArray(out, o3);
        c31.intoArray(out, o3 + 8);
        int o4 = o0 + Math.min(4, n - 1) * outStride;
        c40.intoArray(out, o4);
        c41.intoArray(out, o4 + 8);
        int o5 = o0 + Math.min(5, n - 1) * outStride;
        c50.intoArray(out, o5);
        c51.intoArray(out, o5 + 8);
        int o6 = o0 + Math.min(6, n - 1) * outStride;
        c60.intoArray(out, o6);
        c61.intoArray(out, o6 + 8);
        int o7 = o0 + Math.min(7, n - 1) * outStride;
        c70.intoArray(out, o7);
        c71.intoArray(out, o7 + 8);
    }

    /** 6 tokens of {@link #panelProduct} (n of them real, the others repeating the last): 12 accumulators. */
    private void tokens6(int g, float[] x, int x0, int xStride, int n, float[] out, int o0, int outStride) {
        byte[] qs = quants;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        int x1 = x0 + Math.min(1, n - 1) * xStride, x2 = x0 + Math.min(2, n - 1) * xStride, x3 = x0 + Math.min(3, n - 1) * xStride, x4 = x0 + Math.min(4, n - 1) * xStride, x5 = x0 + Math.min(5, n - 1) * xStride;
        FloatVector z = FloatVector.zero(F8);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
        for (int b = 0; b < nb; b++) {
            int bp = (block0 + b) * BLOCK_BYTES, qp = bp + SCALE_BYTES, xb = b * QK;
            FloatVector d0 = halves8(qs, bp), d1 = halves8(qs, bp + 16);
            for (int c = 0; c < QK; c++) {
                int q = qp + c * ROWS, k = xb + c;
                FloatVector w0 = ((FloatVector) ByteVector.fromArray(B8, qs, q).convertShape(VectorOperators.B2F, F8, 0)).mul(d0);
                FloatVector w1 = ((FloatVector) ByteVector.fromArray(B8, qs, q + 8).convertShape(VectorOperators.B2F, F8, 0)).mul(d1);
                FloatVector t = FloatVector.broadcast(F8, x[x0 + k]);
                c00 = w0.fma(t, c00);
                c01 = w1.fma(t, c01);
                t = FloatVector.broadcast(F8, x[x1 + k]);
                c10 = w0.fma(t, c10);
                c11 = w1.fma(t, c11);
                t = FloatVector.broadcast(F8, x[x2 + k]);
                c20 = w0.fma(t, c20);
                c21 = w1.fma(t, c21);
                t = FloatVector.broadcast(F8, x[x3 + k]);
                c30 = w0.fma(t, c30);
                c31 = w1.fma(t, c31);
                t = FloatVector.broadcast(F8, x[x4 + k]);
                c40 = w0.fma(t, c40);
                c41 = w1.fma(t, c41);
                t = FloatVector.broadcast(F8, x[x5 + k]);
                c50 = w0.fma(t, c50);
                c51 = w1.fma(t, c51);
            }
        }
        c00.intoArray(out, o0);
        c01.intoArray(out, o0 + 8);
        int o1 = o0 + Math.min(1, n - 1) * outStride;
        c10.intoArray(out, o1);
        c11.intoArray(out, o1 + 8);
        int o2 = o0 + Math.min(2, n - 1) * outStride;
        c20.intoArray(out, o2);
        c21.intoArray(out, o2 + 8);
        int o3 = o0 + Math.min(3, n - 1) * outStride;
        c30.intoArray(out, o3);
        c31.intoArray(out, o3 + 8);
        int o4 = o0 + Math.min(4, n - 1) * outStride;
        c40.intoArray(out, o4);
        c41.intoArray(out, o4 + 8);
        int o5 = o0 + Math.min(5, n - 1) * outStride;
        c50.intoArray(out, o5);
        c51.intoArray(out, o5 + 8);
    }

    /** 4 tokens of {@link #panelProduct} (n of them real, the others repeating the last): 8 accumulators. */
    private void tokens4(int g, float[] x, int x0, int xStride, int n, float[] out, int o0, int outStride) {
        byte[] qs = quants;
        int nb = cols / QK, block0 = (firstGroup + g) * nb;
        int x1 = x0 + Math.min(1, n - 1) * xStride, x2 = x0 + Math.min(2, n - 1) * xStride, x3 = x0 + Math.min(3, n - 1) * xStride;
        FloatVector z = FloatVector.zero(F8);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int b = 0; b < nb; b++) {
            int bp = (block0 + b) * BLOCK_BYTES, qp = bp + SCALE_BYTES, xb = b * QK;
            FloatVector d0 = halves8(qs, bp), d1 = halves8(qs, bp + 16);
            for (int c = 0; c < QK; c++) {
                int q = qp + c * ROWS, k = xb + c;
                FloatVector w0 = ((FloatVector) ByteVector.fromArray(B8, qs, q).convertShape(VectorOperators.B2F, F8, 0)).mul(d0);
                FloatVector w1 = ((FloatVector) ByteVector.fromArray(B8, qs, q + 8).convertShape(VectorOperators.B2F, F8, 0)).mul(d1);
                FloatVector t = FloatVector.broadcast(F8, x[x0 + k]);
                c00 = w0.fma(t, c00);
                c01 = w1.fma(t, c01);
                t = FloatVector.broadcast(F8, x[x1 + k]);
                c10 = w0.fma(t, c10);
                c11 = w1.fma(t, c11);
                t = FloatVector.broadcast(F8, x[x2 + k]);
                c20 = w0.fma(t, c20);
                c21 = w1.fma(t, c21);
                t = FloatVector.broadcast(F8, x[x3 + k]);
                c30 = w0.fma(t, c30);
                c31 = w1.fma(t, c31);
            }
        }
        c00.intoArray(out, o0);
        c01.intoArray(out, o0 + 8);
        int o1 = o0 + Math.min(1, n - 1) * outStride;
        c10.intoArray(out, o1);
        c11.intoArray(out, o1 + 8);
        int o2 = o0 + Math.min(2, n - 1) * outStride;
        c20.intoArray(out, o2);
        c21.intoArray(out, o2 + 8);
        int o3 = o0 + Math.min(3, n - 1) * outStride;
        c30.intoArray(out, o3);
        c31.intoArray(out, o3 + 8);
    }

    /**
     * Group g's weights in columns [c0, c1) (multiples of 32) as floats, column by column, as {@link PackedMatrix#panel}:
     * each value q·d, what the file's rows decode to.
     */
    @Override
    public void panel(int g, int c0, int c1, float[] p) {
        byte[] qs = quants;
        int block0 = (firstGroup + g) * (cols / QK);
        float[] ds = finiteScales ? null : new float[ROWS];
        for (int b = c0 / QK; b < c1 / QK; b++) {
            int bp = (block0 + b) * BLOCK_BYTES, qp = bp + SCALE_BYTES, at = (QK * b - c0) * ROWS;
            FloatVector d0, d1;
            if (finiteScales) {
                d0 = halves8(qs, bp);
                d1 = halves8(qs, bp + 16);
            } else { // infinities and NaNs widened as the file's rows widen them
                for (int r = 0; r < ROWS; r++) ds[r] = scale(block0 + b, r);
                d0 = FloatVector.fromArray(F8, ds, 0);
                d1 = FloatVector.fromArray(F8, ds, 8);
            }
            for (int c = 0; c < QK; c++) {
                int q = qp + c * ROWS, o = at + c * ROWS;
                ((FloatVector) ByteVector.fromArray(B8, qs, q).convertShape(VectorOperators.B2F, F8, 0)).mul(d0).intoArray(p, o);
                ((FloatVector) ByteVector.fromArray(B8, qs, q + 8).convertShape(VectorOperators.B2F, F8, 0)).mul(d1).intoArray(p, o + 8);
            }
        }
    }

    /** The 8 finite halves at qs[p ..] as floats (256 bits: the panels' width), widened as {@link #group} widens them. */
    private static FloatVector halves8(byte[] qs, int p) {
        return ((IntVector) ByteVector.fromArray(B, qs, p).reinterpretShape(H8, 0).convertShape(VectorOperators.S2I, I8, 0))
                .lanewise(VectorOperators.LSHL, 13).and(F16Kernel.FLOAT_FIELDS).reinterpretAsFloats().mul(F16Kernel.HALF_TO_FLOAT_SCALE);
    }
}
