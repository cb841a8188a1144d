package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Fast memory for experts: {@code slots} fixed-size slots reused for whichever experts the cache holds. The memory
 * never exceeds the budget: a slot is sized for the largest expert in the {@link SlotFormat} fast memory holds experts
 * in (the file's bytes rounded up to 64 for vector loads, plus packed copies where the model packs), and there are
 * {@code floor(budget / slot)} of them, less what is set aside for transient use: {@code scratch} slots (an expert
 * computed once on the slow side and not cached) and staging buffers (a packed expert read from a store without an
 * addressable copy before it is packed). Those are expert bytes in memory too, so they come out of the same budget.
 * Which expert a slot holds and whether it is pinned is the cache's business ({@link ExpertSlots}).
 */
public final class ExpertMemory implements AutoCloseable {
    private static final long SLOT_ALIGN = 64, PAGE = 4096;

    /**
     * One slot's memory: off-heap bytes for the parts held in the file's layout, and per part (gate, up, down) the
     * arrays its packed copy lives in (null for a part never packed) with the packed copy now there.
     */
    public record Slot(MemorySegment raw, short[][] quants, byte[][] quantBytes, float[][] scales, dev.jmoe.tensor.PackedMatrix[] packed) {
        Slot(MemorySegment raw, short[][] quants, byte[][] quantBytes, float[][] scales) {
            this(raw, quants, quantBytes, scales, new dev.jmoe.tensor.PackedMatrix[3]);
        }
    }

    private final Arena arena = Arena.ofShared();
    private final MemorySegment all;
    private final long slotBytes;
    private final int slots;
    private final long budget;
    private final SlotFormat format; // null: plain slots of the given expert size (no layout known)
    private final Slot[] memory, scratch;
    private final MemorySegment[] staging;
    private final long rawStride; // bytes between two slots' off-heap parts (the raw slot size, rounded up to PAGE when phased)

    public ExpertMemory(long budgetBytes, long expertBytes) {
        this(budgetBytes, expertBytes, 0);
    }

    /** {@code scratchSlots} of the budget's slots are kept out of the cache for transient use. */
    public ExpertMemory(long budgetBytes, long expertBytes, int scratchSlots) {
        this(budgetBytes, null, expertBytes, scratchSlots, 0, -1);
    }

    /**
     * With {@code phase} in [0, 4096): every slot's off-heap bytes start at that offset modulo 4096 (the stride rounded up
     * to 4096), as the store asks ({@link dev.jmoe.experts.store.ExpertStore#slotPhase}) to read experts straight into
     * slots; the shift comes out of the budget like the slots. -1: 64-byte slots from a 4096-aligned start.
     */
    public ExpertMemory(long budgetBytes, long expertBytes, int scratchSlots, long phase) {
        this(budgetBytes, null, expertBytes, scratchSlots, 0, phase);
    }

    /**
     * Slots in {@code format}; {@code scratchSlots} slots and {@code stagingBuffers} staging buffers
     * ({@link SlotFormat#stagingBytes}) come out of the budget before the cache's slots.
     */
    public ExpertMemory(long budgetBytes, SlotFormat format, int scratchSlots, int stagingBuffers) {
        this(budgetBytes, format, 0, scratchSlots, stagingBuffers, -1);
    }

    /** Slots in {@code format} at the store's {@code phase} (see {@link #ExpertMemory(long, long, int, long)}). */
    public ExpertMemory(long budgetBytes, SlotFormat format, int scratchSlots, int stagingBuffers, long phase) {
        this(budgetBytes, format, 0, scratchSlots, stagingBuffers, phase);
    }

    private ExpertMemory(long budgetBytes, SlotFormat format, long expertBytes, int scratchSlots, int stagingBuffers, long phase) {
        if (format == null && expertBytes <= 0) throw new IllegalArgumentException("expert size must be positive, got " + expertBytes);
        if (budgetBytes <= 0) throw new IllegalArgumentException("--expert-memory must be positive, got " + budgetBytes + " bytes");
        if (scratchSlots < 0 || stagingBuffers < 0) throw new IllegalArgumentException("scratch slots and staging buffers must be >= 0");
        if (phase < -1 || phase >= PAGE) throw new IllegalArgumentException("slot phase must be in [0, " + PAGE + ") or -1, got " + phase);
        long raw = format != null ? format.rawSlotBytes() : (expertBytes + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
        // Phased slots (and staging buffers, which a direct store reads into too) sit a whole number of pages apart, so
        // each keeps the phase; the padding is fast memory like the rest and counts against the budget.
        long stride = stride(raw, phase);
        this.format = format;
        this.rawStride = stride;
        this.slotBytes = (format != null ? format.slotBytes() - raw : 0) + stride;
        long stagingBytes = format != null ? format.stagingBytes() : 0;
        long stagingStride = stride(stagingBytes, phase);
        long shift = phase > 0 ? phase : 0;
        long transientBytes = scratchSlots * slotBytes + stagingBuffers * stagingStride;
        long n = (budgetBytes - shift - transientBytes) / slotBytes;
        if (n < 1) {
            if (transientBytes > 0 && budgetBytes / slotBytes >= 1) {
                throw new IllegalArgumentException("--expert-memory of " + OffloadStats.bytes(budgetBytes) + " holds " + budgetBytes / slotBytes
                        + " expert(s), not enough for " + describeTransient(scratchSlots, stagingBuffers) + " and a cache slot ("
                        + OffloadStats.bytes(transientBytes + slotBytes) + " together)");
            }
            throw new IllegalArgumentException("--expert-memory of " + OffloadStats.bytes(budgetBytes) + " is below one expert ("
                    + OffloadStats.bytes(slotBytes) + "): fast memory needs room for at least one expert");
        }
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("--expert-memory gives " + n + " slots, more than jmoe can index");
        this.slots = (int) n;
        this.budget = budgetBytes;
        this.all = arena.allocate(shift + stride * (slots + scratchSlots) + stagingStride * stagingBuffers, PAGE).asSlice(shift);
        try {
            this.memory = new Slot[slots];
            for (int i = 0; i < slots; i++) memory[i] = newSlot(all.asSlice(i * stride, raw));
            this.scratch = new Slot[scratchSlots];
            for (int i = 0; i < scratchSlots; i++) scratch[i] = newSlot(all.asSlice((slots + (long) i) * stride, raw));
            this.staging = new MemorySegment[stagingBuffers];
            for (int i = 0; i < stagingBuffers; i++) staging[i] = all.asSlice((slots + (long) scratchSlots) * stride + i * stagingStride, stagingBytes);
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new IllegalStateException("the Java heap has no room for " + slots + " packed expert slots (" + OffloadStats.bytes(budgetBytes)
                    + "); give the JVM more heap (JMOE_JAVA_OPTS=-Xmx<size>), a smaller --expert-memory, or --no-pack");
        }
    }

    private Slot newSlot(MemorySegment raw) {
        return format != null ? format.newSlot(raw) : new Slot(raw, new short[3][], new byte[3][], new float[3][]);
    }

    /**
     * The budget bytes one slot of {@code format} takes when slots are placed at {@code phase} (-1: unphased): its
     * off-heap bytes at their stride plus the arrays of its packed copies.
     */
    public static long slotBytes(SlotFormat format, long phase) {
        return format.slotBytes() - format.rawSlotBytes() + stride(format.rawSlotBytes(), phase);
    }

    /** The budget bytes of one staging buffer of {@code format} at {@code phase}, and of the phase shift: what is set aside besides slots. */
    public static long stagingBytes(SlotFormat format, long phase) {
        return stride(format.stagingBytes(), phase);
    }

    /** {@code bytes} rounded up to whole pages when slots are phased (each then keeps the phase), else to 64 for vector loads. */
    private static long stride(long bytes, long phase) {
        long align = phase >= 0 ? PAGE : SLOT_ALIGN;
        return (bytes + align - 1) / align * align;
    }

    private static String describeTransient(int scratch, int staging) {
        String s = scratch > 0 ? scratch + " transient slot(s)" : "";
        if (staging > 0) s += (s.isEmpty() ? "" : " and ") + staging + " staging buffer(s)";
        return s;
    }

    /** The form experts take in the slots; null for plain slots made from an expert size alone. */
    public SlotFormat format() { return format; }

    /** Transient slot i (not part of the cache), its off-heap bytes. */
    public MemorySegment scratch(int i) {
        return scratchSlot(i).raw();
    }

    /** Transient slot i (not part of the cache). */
    public Slot scratchSlot(int i) {
        if (i < 0 || i >= scratch.length) throw new IndexOutOfBoundsException("scratch slot " + i + " of " + scratch.length);
        return scratch[i];
    }

    public int scratchSlots() { return scratch.length; }

    /** Staging buffer i (a loader's or the slow side's, for packing from a store without an addressable copy), or null if there is none. */
    public MemorySegment staging(int i) {
        return i >= 0 && i < staging.length ? staging[i] : null;
    }

    public int stagingBuffers() { return staging.length; }

    public int slots() { return slots; }
    public long slotBytes() { return slotBytes; }
    public long budgetBytes() { return budget; }

    /** Bytes allocated for all slots, scratch, staging and phase shift included, off-heap and packed arrays together (≤ the budget). */
    public long allocatedBytes() {
        long packedArrays = (slotBytes - rawStride) * (slots + (long) scratch.length);
        return all.byteSize() + Math.floorMod(all.address(), PAGE) + packedArrays;
    }

    /** Slot i's off-heap bytes. */
    public MemorySegment slot(int i) {
        return memory(i).raw();
    }

    /** Slot i's memory. */
    public Slot memory(int i) {
        if (i < 0 || i >= slots) throw new IndexOutOfBoundsException("slot " + i + " of " + slots);
        return memory[i];
    }

    @Override
    public void close() {
        arena.close();
    }
}
