package dev.jmoe.tensor;

import java.util.concurrent.atomic.AtomicBoolean;

/** Making {@link PackedMatrix} copies: which matrices can be packed, and packing within the Java heap's room. */
public final class Packing {
    private static final AtomicBoolean WARNED_NO_ROOM = new AtomicBoolean();

    private Packing() {}

    /** Whether {@code m} can be packed: Q4_0, Q4_K, Q6_K or Q8_0 with whole groups of 16 rows whose quants fit Java arrays. */
    public static boolean canPack(Matrix m) {
        return PackedQ4.canPack(m) || PackedQ6.canPack(m) || PackedQ8.canPack(m);
    }

    /**
     * Bytes a packed copy of {@code m} takes ({@link #canPack} must hold), as {@link #packInto} lays it out ({@link #pack}'s
     * copies for 8-bit activations differ: Q4_K and Q6_K ones take less, Q4_0 ones more).
     */
    public static long packedBytes(Matrix m) {
        return switch (m.type()) {
            case Q6_K -> PackedQ6.packedBytes(m);
            case Q8_0 -> PackedQ8.packedBytes(m);
            default -> PackedQ4.packedBytes(m);
        };
    }

    /** The most any packed copy of {@code m} takes, whatever the activation rounding ({@link #canPack} must hold). */
    public static long largestPackedBytes(Matrix m) {
        return PackedQ4.canPack(m) ? Math.max(PackedQ4.packedBytes(m, false), PackedQ4.packedBytes(m, true)) : packedBytes(m); // Q6_K: the float-scale copy is the larger
    }

    /**
     * Regroups {@code m} ({@link #canPack} must hold), with the groups split over {@code pool} (null: this thread), laid
     * out for the products of the calling thread's activation rounding ({@link Kernels#withActivationQuantization}): a
     * Q4_K copy made for 8-bit activations keeps the file's 6-bit scales and mins and takes 1.06× the file's bytes
     * instead of 1.33×, because those products are bound by memory (PackedQ4's {@code compact}); a Q6_K one likewise
     * keeps the file's 8-bit scales, 1.31× the file's bytes instead of 1.52× (PackedQ6's {@code compact}); a Q4_0 one also
     * keeps the file's half scales, which its matrix-vector kernel reads instead of the float ones (1.17× the file's
     * bytes instead of 1.11×, at each block's head: PackedQ4's {@code halfHeads}). A copy multiplies correctly, to the same bits, with either
     * rounding; the other is only slower on it.
     */
    public static PackedMatrix pack(Matrix m, Parallel pool) {
        return switch (m.type()) {
            case Q6_K -> PackedQ6.pack(m, pool, Kernels.activationQuantization());
            case Q8_0 -> PackedQ8.pack(m, pool);
            default -> PackedQ4.pack(m, pool, Kernels.activationQuantization());
        };
    }

    /** Bytes {@link #pack} would take for {@code m} on this thread ({@link #canPack} must hold). */
    static long packBytes(Matrix m) {
        boolean bits8 = Kernels.activationQuantization();
        return switch (m.type()) {
            case Q6_K -> PackedQ6.packedBytes(m, bits8);
            case Q8_0 -> PackedQ8.packedBytes(m);
            default -> PackedQ4.packedBytes(m, bits8);
        };
    }

    /** Length of the short array of quants a packed copy of {@code m} takes ({@link #canPack} must hold). */
    public static int quantShorts(Matrix m) {
        return switch (m.type()) {
            case Q6_K -> PackedQ6.quantShorts(m);
            case Q8_0 -> 0; // 8-bit quants: a byte array (quantBytes)
            default -> PackedQ4.quantShorts(m);
        };
    }

    /** Length of the byte array a packed copy of {@code m} takes ({@link #canPack} must hold): Q8_0's quants and scales; 0 for the others. */
    public static int quantBytes(Matrix m) {
        return m.type() == GgmlType.Q8_0 ? PackedQ8.quantBytes(m) : 0;
    }

    /** Length of the float array of scales (and offsets) a packed copy of {@code m} takes ({@link #canPack} must hold). */
    public static int scaleFloats(Matrix m) {
        return switch (m.type()) {
            case Q6_K -> PackedQ6.scaleFloats(m);
            case Q8_0 -> PackedQ8.scaleFloats(m); // none: its half scales sit among its quant bytes
            default -> PackedQ4.scaleFloats(m);
        };
    }

    /**
     * Regroups {@code m} ({@link #canPack} must hold) into arrays the caller owns, at least {@link #quantShorts} (or, for
     * Q8_0, {@link #quantBytes}) and {@link #scaleFloats} long: an expert's slot in fast memory keeps its arrays and packs
     * each expert it receives into them. The copy equals {@link #pack}'s value for value, so products on it give the same
     * bits; it is valid until the arrays are overwritten.
     */
    public static PackedMatrix packInto(Matrix m, short[] quants, byte[] quantBytes, float[] scales, Parallel pool) {
        return switch (m.type()) {
            case Q6_K -> PackedQ6.packInto(m, quants, scales, pool);
            case Q8_0 -> PackedQ8.packInto(m, quantBytes, pool);
            default -> PackedQ4.packInto(m, quants, scales, pool);
        };
    }

    /** {@code m} with a packed copy if it can be packed (on this thread), else {@code m} itself. */
    public static Matrix packed(Matrix m) {
        return canPack(m) ? m.withPacked(pack(m, null)) : m;
    }

    /**
     * {@link #pack} if the Java heap has room for the copy, else null (the caller keeps the file's rows, which are
     * slower to multiply but need no memory): a model too big to pack must still run, not die of an OutOfMemoryError
     * halfway through a prompt. Warns once on stderr when it first declines.
     */
    public static PackedMatrix packIfRoom(Matrix m, Parallel pool) {
        Runtime rt = Runtime.getRuntime();
        if (roomFor(packBytes(m), rt.maxMemory(), rt.totalMemory() - rt.freeMemory())) return pack(m, pool);
        if (!WARNED_NO_ROOM.getAndSet(true)) {
            System.err.printf("jmoe: the Java heap (max %d MiB) has no room for more packed weights; the rest multiply from the"
                    + " file's rows (slower). Give the JVM more heap with JMOE_JAVA_OPTS=-Xmx<size>, or pass --no-pack.%n", rt.maxMemory() >> 20);
        }
        return null;
    }

    /** Whether {@code bytes} more fit a heap of {@code maxHeap} with {@code usedHeap} in use, keeping an eighth of it (at least 64 MiB) free. */
    static boolean roomFor(long bytes, long maxHeap, long usedHeap) {
        long reserve = Math.max(64L << 20, maxHeap / 8);
        return usedHeap + bytes + reserve <= maxHeap;
    }
}
