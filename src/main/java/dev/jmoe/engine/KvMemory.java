package dev.jmoe.engine;

import dev.jmoe.model.KvCache;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.IntSupplier;

/**
 * One KV memory shared by a scheduler's generations: each takes a contiguous region of positions when it starts and
 * gives it back when it ends. Regions are placed first fit; when a request fits the free positions but no single gap,
 * the regions are slid together ({@link #compact}) — between steps, when no forward pass reads them. Used by the
 * scheduler's thread only.
 */
final class KvMemory {
    /** A generation's positions: [start, start + size) of the memory; {@code filled} says how many hold entries. */
    static final class Region {
        private int start;
        private final int size;
        private final KvCache kv;
        private IntSupplier filled = () -> 0;

        private Region(int start, int size, KvCache kv) {
            this.start = start;
            this.size = size;
            this.kv = kv;
        }

        KvCache kv() { return kv; }
        int start() { return start; }
        int size() { return size; }

        /** Tells the memory how many positions of the region hold entries (the rest need not move when it compacts). */
        void filledBy(IntSupplier filled) { this.filled = filled; }
    }

    private final KvCache memory;
    private final List<Region> regions = new ArrayList<>(); // sorted by start
    private long moves;

    KvMemory(KvCache memory) {
        this.memory = memory;
    }

    int capacity() { return memory.capacity(); }

    /** Positions no region holds. */
    int free() {
        int used = 0;
        for (Region r : regions) used += r.size;
        return memory.capacity() - used;
    }

    /** Positions given to regions. */
    int used() { return memory.capacity() - free(); }

    /** Regions slid by {@link #compact} so far. */
    long moves() { return moves; }

    /** A region of {@code size} positions, or null if no gap holds one (compacting first when the free positions would). */
    Region allocate(int size) {
        if (size < 1 || size > memory.capacity()) throw new IllegalArgumentException("cannot reserve " + size + " of " + memory.capacity() + " KV positions");
        int at = firstFit(size);
        if (at < 0 && free() >= size) {
            compact();
            at = firstFit(size);
        }
        if (at < 0) return null;
        Region r = new Region(at, size, memory.region(at, size));
        regions.add(r);
        regions.sort(Comparator.comparingInt(Region::start));
        return r;
    }

    void release(Region r) {
        if (!regions.remove(r)) throw new IllegalStateException("the region is not held");
    }

    private int firstFit(int size) {
        int at = 0;
        for (Region r : regions) {
            if (r.start - at >= size) return at;
            at = r.start + r.size;
        }
        return memory.capacity() - at >= size ? at : -1;
    }

    /** Slides every region towards position 0, in order, so the free positions form one gap at the end. */
    void compact() {
        int at = 0;
        for (Region r : regions) {
            if (r.start != at) {
                r.kv.moveTo(at, Math.min(r.size, r.filled.getAsInt()), memory);
                r.start = at;
                moves++;
            }
            at += r.size;
        }
    }
}
