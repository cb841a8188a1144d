package dev.jmoe.memory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Splits the memory a process may use ({@link SystemMemory#available()}) between everything a run needs: the
 * JVM itself, the Java heap (KV cache, packed copies, working objects), the non-expert weights, a margin, and —
 * with what is left — the expert slots. bin/jmoe runs the same plan before starting the JVM (to choose -Xmx) as
 * the run makes again inside it (to choose the expert budget), from the same figures.
 * <p>
 * The JVM's own footprint is estimated from measurements of jmoe on JDK 25 (docs/memory.md): native memory
 * (code cache, metaspace, GC structures, the class-data archive, thread stacks, allocator arenas) ~47 MiB by Native
 * Memory Tracking plus malloc and buffers, and the file pages the JVM runs from (libjvm, the module image, the
 * jar), which are charged to a memory cgroup like any page cache.
 */
public final class MemoryPlanner {
    private MemoryPlanner() {}

    static final long MIB = Bytes.MIB;
    /** Native memory of the JVM besides the heap (NMT: code 18, GC 9, class data 14+11, symbols and arenas 7 MiB; plus malloc). */
    public static final long JVM_NATIVE = 64 * MIB;
    /** File pages the JVM keeps using (libjvm text, module image, jar); a cgroup charges them like any page cache. */
    public static final long JVM_FILES = 40 * MIB;
    /** Heap besides KV cache and packed copies: ~13 MiB live (tokenizer, model objects, scratch) and room for the young generation. */
    public static final long HEAP_BASE = 40 * MIB;
    /** Young generation bin/jmoe asks for with a planned heap: decode allocates ~20 MB/s, so a 16 MiB eden is collected every ~0.5 s in under 1 ms. */
    public static final long YOUNG = 16 * MIB;
    /** Expert slots an offloaded run needs at the least: one computing, one loading. */
    public static final int MIN_SLOTS = 2;

    /** What the user asked for with --expert-memory. */
    public enum Ask { DEFAULT, AUTO, GIVEN }

    /**
     * @param ask         DEFAULT: no --expert-memory (resident if the model fits, else offloaded with an automatic
     *                    budget); AUTO: --expert-memory auto (always offloaded); GIVEN: an explicit budget
     * @param givenBudget the explicit budget in bytes (GIVEN only)
     * @param ctx         KV cache positions
     * @param noPack      --no-pack: no packed copies at all
     */
    public record Request(Ask ask, long givenBudget, int ctx, boolean noPack) {
        public Request {
            if (ask == null) throw new IllegalArgumentException("ask is required");
            if (ctx < 1) throw new IllegalArgumentException("context size must be at least 1, got " + ctx);
            if (ask == Ask.GIVEN && givenBudget < 1) throw new IllegalArgumentException("an explicit expert budget must be positive, got " + givenBudget);
        }

        public static Request of(String expertMemory, long expertBytes, int ctx, boolean noPack, java.util.function.ToLongBiFunction<String, Long> parse) {
            if (expertMemory == null) return new Request(Ask.DEFAULT, 0, ctx, noPack);
            if (isAuto(expertMemory)) return new Request(Ask.AUTO, 0, ctx, noPack);
            return new Request(Ask.GIVEN, parse.applyAsLong(expertMemory, expertBytes), ctx, noPack);
        }
    }

    /** Whether an --expert-memory value asks for automatic sizing. */
    public static boolean isAuto(String expertMemory) {
        return expertMemory != null && expertMemory.trim().toLowerCase(Locale.ROOT).equals("auto");
    }

    /** The limit leaves too little for the model: says how much is needed and for what. */
    public static final class TooSmall extends IllegalArgumentException {
        public final long needed, available;

        TooSmall(String msg, long needed, long available) {
            super(msg);
            this.needed = needed;
            this.available = available;
        }
    }

    /**
     * Plans a run of model {@code m}.
     *
     * @param available bytes the process may use ({@link SystemMemory#available()})
     * @param source    where that figure comes from, for the explanation
     * @param heap      the JVM's heap limit if it is already fixed (inside the running JVM), or -1 to plan it (bin/jmoe)
     */
    public static MemoryPlan plan(ModelFootprint m, Request r, long available, String source, long heap) {
        if (available <= 0) throw new IllegalArgumentException("no memory is available (" + source + ")");
        long margin = Math.max(16 * MIB, available / 20);
        long kv = m.kvBytes(r.ctx());
        long jvm = JVM_NATIVE + JVM_FILES;
        List<String> notes = new ArrayList<>();
        boolean offload = r.ask() != Ask.DEFAULT && m.hasExperts();
        if (r.ask() != Ask.DEFAULT && !m.hasExperts()) notes.add(m.name() + " has no routed experts: every weight stays resident");

        if (!offload) {
            // Resident: the whole file is read through the mapping (page cache), packed copies on the heap if they fit.
            long packAll = r.noPack() ? 0 : m.packedNonExpert() + m.packedExperts();
            long fixed = jvm + margin + m.weightBytes();
            long heapPacked = heapFor(kv, packAll), heapPlain = heapFor(kv, 0);
            // A heap already fixed (inside a running JVM) counts with what the run needs of it, not with its ceiling: the
            // JVM commits heap as it is used, and a library user's -Xmx of three quarters of RAM must not make a model
            // of a few megabytes look too large to run resident.
            boolean fitsPacked = heap < 0 ? fixed + heapPacked <= available : fixed + heapPacked <= available && heap >= heapPacked;
            boolean fitsPlain = heap < 0 ? fixed + heapPlain <= available : fixed + heapPlain <= available && heap >= heapPlain;
            if (fitsPacked || fitsPlain || !m.hasExperts()) {
                boolean pack = !r.noPack() && fitsPacked;
                if (!r.noPack() && !fitsPacked && packAll > 0) {
                    notes.add("packed copies skipped: they need " + Bytes.format(packAll) + " of heap the plan does not have (they only speed up Q4_0/Q4_K/Q6_K products)");
                }
                // The heap may grow into whatever the mapping and the JVM leave: it never pushes the model out of memory.
                long h = heap >= 0 ? heap : Bytes.ceilMib(Math.max(pack ? heapPacked : heapPlain, available == Long.MAX_VALUE ? 0 : available - fixed));
                String expl = String.format(Locale.ROOT, "memory plan: %s resident (%s of weights) within %s available (%s); Java heap %s%s",
                        m.name(), Bytes.format(m.weightBytes()), Bytes.format(available), source, Bytes.format(h),
                        notes.isEmpty() ? "" : "; " + String.join("; ", notes));
                if (!fitsPlain) {
                    expl += String.format(Locale.ROOT, "; warning: it needs %s, more than is available, and has no experts to offload",
                            Bytes.format(fixed + heapPlain));
                }
                return new MemoryPlan(MemoryPlan.Mode.RESIDENT, available, source, h, 0, 0, pack, false, margin, notes, expl);
            }
            notes.add(String.format(Locale.ROOT, "the model (%s of weights) does not fit in %s, so experts are offloaded", Bytes.format(m.weightBytes()),
                    Bytes.format(available)));
        }

        // Offloaded: non-expert weights copied out of the mapping (anonymous memory, never reclaimed), experts in slots.
        long packNE = r.noPack() ? 0 : m.packedNonExpert();
        // A model that packs its weights holds its slots packed too (the offloaded run computes an expert as the resident
        // run does), and packed copies are Java arrays: then a slot is mostly heap, and the heap grows with the slots.
        boolean packsSlots = !r.noPack() && m.slotHeapBytes() > 0;
        long h;
        boolean pack;
        if (heap >= 0) {
            h = heap;
            long need = heapFor(kv, packNE) + (packsSlots ? MIN_SLOTS * m.slotHeapBytes() : 0);
            pack = (packNE > 0 || packsSlots) && heap >= need;
            if ((packNE > 0 || packsSlots) && !pack) {
                notes.add("packed copies skipped: the Java heap of " + Bytes.format(heap) + " has no room for them (" + Bytes.format(need) + " needed)");
            }
        } else {
            h = Bytes.ceilMib(heapFor(kv, packNE));
            pack = packNE > 0 || packsSlots;
            long slot = packsSlots ? m.slotRawBytes() + m.slotHeapBytes() : m.slotBytes();
            if (pack && available - (jvm + margin + m.nonExpertBytes() + h) < MIN_SLOTS * slot) {
                h = Bytes.ceilMib(heapFor(kv, 0));
                pack = false;
                notes.add("packed copies skipped: their " + Bytes.format(packNE + MIN_SLOTS * m.slotHeapBytes()) + " would leave no room for expert slots");
            }
        }
        boolean packedSlots = pack && packsSlots;
        long slotOff = packedSlots ? m.slotRawBytes() : m.slotBytes(), slotHeap = packedSlots ? m.slotHeapBytes() : 0;
        long slotAll = slotOff + slotHeap;
        long minSlots = MIN_SLOTS * slotAll;
        long fixed = jvm + margin + m.nonExpertBytes() + h;
        long budget;
        if (r.ask() == Ask.GIVEN) {
            budget = r.givenBudget();
            long offHeap = budget; // what the slots take outside the heap
            if (packedSlots) {
                long n = budget / slotAll;
                if (heap < 0) h = Bytes.ceilMib(h + n * (slotHeap + SLOT_HEAP_SLACK));
                offHeap = budget - n * slotHeap;
            }
            fixed = jvm + margin + m.nonExpertBytes() + h;
            if (fixed + offHeap > available) {
                notes.add(String.format(Locale.ROOT, "warning: the given %s of expert memory and the rest need %s, more than the %s available",
                        Bytes.format(budget), Bytes.format(fixed + offHeap), Bytes.format(available)));
            }
        } else {
            // a fixed heap holds the packed part of the slots already: what is left outside it holds their off-heap part
            long room = heap >= 0 && packedSlots ? Math.min((heap - heapFor(kv, packNE)) / slotHeap * slotAll, (available - fixed) / slotOff * slotAll)
                    : available - fixed;
            if (room < minSlots) {
                long need = fixed + minSlots - (heap >= 0 && packedSlots ? heap - heapFor(kv, packNE) : 0);
                throw new TooSmall(String.format(Locale.ROOT,
                        "%s needs at least %s of memory to run with its experts offloaded, but only %s is available (%s): non-expert weights %s,"
                                + " Java heap %s (KV cache %s for --ctx-size %d), JVM %s, margin %s, %d expert slots of %s."
                                + " Raise the memory limit by %s%s.",
                        m.name(), Bytes.format(need), Bytes.format(available), source, Bytes.format(m.nonExpertBytes()), Bytes.format(h), Bytes.format(kv),
                        r.ctx(), Bytes.format(jvm), Bytes.format(margin), MIN_SLOTS, Bytes.format(slotAll), Bytes.format(Math.max(0, need - available)),
                        kv > 16 * MIB ? " or lower --ctx-size" : "")
                        + (heap > 2 * (heapFor(kv, packNE) + minSlots) ? String.format(Locale.ROOT, ", or give the JVM a smaller heap (its -Xmx of %s is"
                                + " counted whole when experts are offloaded, since expert slots live mostly outside it; bin/jmoe sizes it from this plan)",
                                Bytes.format(heap)) : ""),
                        need, available);
            }
            // More than every expert is of no use; the rest stays free.
            budget = Math.min(room, (m.expertCount() + 1L) * slotAll);
            if (heap < 0 && packedSlots) h = Bytes.ceilMib(h + budget / slotAll * (slotHeap + SLOT_HEAP_SLACK));
        }
        int slots = (int) Math.min(Integer.MAX_VALUE, budget / Math.max(1, slotAll));
        String what = r.ask() == Ask.GIVEN ? "expert memory " + Bytes.format(budget) + " (given)"
                : "expert memory auto: " + Bytes.format(budget);
        String expl = String.format(Locale.ROOT, "%s = %d of %d experts (%s each%s); %s available (%s), less Java heap %s (KV cache %s), non-expert weights %s"
                        + " (copied out of the file mapping), JVM %s, margin %s%s",
                what, Math.min(slots, m.expertCount()), m.expertCount(), Bytes.format(slotAll), packedSlots ? ", packed, on the heap" : "",
                Bytes.format(available), source, Bytes.format(h),
                Bytes.format(kv), Bytes.format(m.nonExpertBytes()), Bytes.format(jvm), Bytes.format(margin),
                notes.isEmpty() ? "" : "; " + String.join("; ", notes));
        return new MemoryPlan(MemoryPlan.Mode.OFFLOAD, available, source, h, budget, slots, pack, true, margin, notes, expl);
    }

    /** Heap for a KV cache of {@code kv} bytes and {@code packed} bytes of packed copies. */
    /** Heap per packed slot beyond its arrays' payload: array headers and the slot's objects. */
    static final long SLOT_HEAP_SLACK = 4096;

    static long heapFor(long kv, long packed) {
        return HEAP_BASE + kv + packed;
    }
}
