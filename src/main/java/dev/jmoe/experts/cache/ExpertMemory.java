package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Fast memory for experts: {@code slots} fixed-size off-heap slots in one allocation, reused for whichever
 * experts the cache holds. The allocation never exceeds the budget: a slot is the size of the largest
 * expert (rounded up to 64 bytes for vector loads) and there are {@code floor(budget / slot)} of them, less
 * the {@code scratch} slots set aside for transient use (an expert read from a store without an addressable
 * copy, to be computed once and not cached): those are expert bytes in memory too, so they come out of the
 * same budget. Which expert a slot holds and whether it is pinned is the cache's business
 * ({@link OffloadedExpertSource}).
 */
public final class ExpertMemory implements AutoCloseable {
    private static final long SLOT_ALIGN = 64, PAGE = 4096;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment all;
    private final long slotBytes;
    private final int slots;
    private final long budget;

    private final MemorySegment[] scratch;

    public ExpertMemory(long budgetBytes, long expertBytes) {
        this(budgetBytes, expertBytes, 0);
    }

    /** {@code scratchSlots} of the budget's slots are kept out of the cache for transient use. */
    public ExpertMemory(long budgetBytes, long expertBytes, int scratchSlots) {
        this(budgetBytes, expertBytes, scratchSlots, -1);
    }

    /**
     * With {@code phase} in [0, 4096): every slot starts at that offset modulo 4096 (the stride rounded up to 4096), as
     * the store asks ({@link dev.jmoe.experts.store.ExpertStore#slotPhase}) to read experts straight into slots; the
     * shift comes out of the budget like the slots. -1: 64-byte slots from a 4096-aligned start.
     */
    public ExpertMemory(long budgetBytes, long expertBytes, int scratchSlots, long phase) {
        if (expertBytes <= 0) throw new IllegalArgumentException("expert size must be positive, got " + expertBytes);
        if (budgetBytes <= 0) throw new IllegalArgumentException("--expert-memory must be positive, got " + budgetBytes + " bytes");
        if (phase < -1 || phase >= PAGE) throw new IllegalArgumentException("slot phase must be in [0, " + PAGE + ") or -1, got " + phase);
        long align = phase >= 0 ? PAGE : SLOT_ALIGN;
        this.slotBytes = (expertBytes + align - 1) / align * align;
        if (scratchSlots < 0) throw new IllegalArgumentException("scratch slots must be >= 0");
        long shift = phase > 0 ? phase : 0;
        long n = (budgetBytes - shift) / slotBytes - scratchSlots;
        if (n < 1) {
            if (scratchSlots > 0 && budgetBytes / slotBytes >= 1) {
                throw new IllegalArgumentException("--expert-memory of " + OffloadStats.bytes(budgetBytes) + " holds " + budgetBytes / slotBytes
                        + " expert(s), not enough for " + scratchSlots + " transient buffer(s) and a cache slot");
            }
            throw new IllegalArgumentException("--expert-memory of " + OffloadStats.bytes(budgetBytes) + " is below one expert ("
                    + OffloadStats.bytes(slotBytes) + "): fast memory needs room for at least one expert");
        }
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("--expert-memory gives " + n + " slots, more than jmoe can index");
        this.slots = (int) n;
        this.budget = budgetBytes;
        this.all = arena.allocate(shift + slotBytes * (slots + scratchSlots), PAGE).asSlice(shift);
        this.scratch = new MemorySegment[scratchSlots];
        for (int i = 0; i < scratchSlots; i++) scratch[i] = all.asSlice((slots + (long) i) * slotBytes, slotBytes);
    }

    /** Transient slot i (not part of the cache). */
    public MemorySegment scratch(int i) {
        if (i < 0 || i >= scratch.length) throw new IndexOutOfBoundsException("scratch slot " + i + " of " + scratch.length);
        return scratch[i];
    }

    public int scratchSlots() { return scratch.length; }

    public int slots() { return slots; }
    public long slotBytes() { return slotBytes; }
    public long budgetBytes() { return budget; }

    /** Bytes allocated for all slots, scratch and phase shift included (≤ the budget). */
    public long allocatedBytes() { return all.byteSize() + Math.floorMod(all.address(), PAGE); }

    /** Slot i's memory. */
    public MemorySegment slot(int i) {
        if (i < 0 || i >= slots) throw new IndexOutOfBoundsException("slot " + i + " of " + slots);
        return all.asSlice(i * slotBytes, slotBytes);
    }

    @Override
    public void close() {
        arena.close();
    }
}
