package dev.jmoe.experts;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Fast memory for experts: {@code slots} fixed-size off-heap slots in one allocation, reused for whichever
 * experts the cache holds. The allocation never exceeds the budget: a slot is the size of the largest
 * expert (rounded up to 64 bytes for vector loads) and there are {@code floor(budget / slot)} of them.
 * Which expert a slot holds and whether it is pinned is the cache's business ({@link OffloadedExpertSource}).
 */
public final class ExpertMemory implements AutoCloseable {
    private static final long SLOT_ALIGN = 64;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment all;
    private final long slotBytes;
    private final int slots;
    private final long budget;

    public ExpertMemory(long budgetBytes, long expertBytes) {
        if (expertBytes <= 0) throw new IllegalArgumentException("expert size must be positive, got " + expertBytes);
        if (budgetBytes <= 0) throw new IllegalArgumentException("--expert-memory must be positive, got " + budgetBytes + " bytes");
        this.slotBytes = (expertBytes + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
        long n = budgetBytes / slotBytes;
        if (n < 1) {
            throw new IllegalArgumentException("--expert-memory of " + OffloadStats.bytes(budgetBytes) + " is below one expert ("
                    + OffloadStats.bytes(slotBytes) + "): fast memory needs room for at least one expert");
        }
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("--expert-memory gives " + n + " slots, more than jmoe can index");
        this.slots = (int) n;
        this.budget = budgetBytes;
        this.all = arena.allocate(slotBytes * slots, 4096);
    }

    public int slots() { return slots; }
    public long slotBytes() { return slotBytes; }
    public long budgetBytes() { return budget; }

    /** Bytes allocated for all slots (≤ the budget). */
    public long allocatedBytes() { return all.byteSize(); }

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
