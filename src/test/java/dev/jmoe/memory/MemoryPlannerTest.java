package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.memory.MemoryPlanner.Ask;
import dev.jmoe.memory.MemoryPlanner.Request;
import org.junit.jupiter.api.Test;

/** The plan: resident when the model fits, otherwise expert slots from what the limit leaves; a clear refusal when nothing is left. */
class MemoryPlannerTest {
    private static final long MIB = 1L << 20;
    /** The mid Mixtral-like Q8_0 shape: 737 MiB, 64 experts of 11.16 MiB, 22.6 MiB of other weights, 16 KiB of KV per position. */
    private static final ModelFootprint MIXTRAL = new ModelFootprint("mixtral-bench-Q8_0.gguf", 772_395_008L, 748_683_264L, 11_698_176L, 64,
            0, 0, 16384, 4096);
    /** A Q4_0 shape whose packed copies matter: 30 MiB of packed non-expert matrices, 400 MiB of packed experts. */
    private static final ModelFootprint Q4 = new ModelFootprint("q4.gguf", 420 * MIB, 400 * MIB, 6_553_600L, 64, 30 * MIB, 440 * MIB, 16384, 4096);

    private static final long JVM = MemoryPlanner.JVM_NATIVE + MemoryPlanner.JVM_FILES;

    @Test
    void aModelThatFitsStaysResidentAndTheHeapGetsWhatTheMappingLeaves() {
        long avail = 4096 * MIB;
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.DEFAULT, 0, 4096, false), avail, "MemAvailable 4 GiB", -1);
        assertEquals(MemoryPlan.Mode.RESIDENT, p.mode());
        long margin = Math.max(16 * MIB, avail / 20);
        assertEquals(Bytes.ceilMib(avail - JVM - margin - MIXTRAL.weightBytes()), p.heapBytes());
        assertFalse(p.copyNonExpert());
        assertTrue(p.explanation().contains("resident"), p.explanation());
    }

    @Test
    void aModelThatDoesNotFitIsOffloadedWithSlotsFromWhatIsLeft() {
        long avail = 400_000_000L;
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.DEFAULT, 0, 256, false), avail, "cgroup v2 /x limit 381.5 MiB", -1);
        assertEquals(MemoryPlan.Mode.OFFLOAD, p.mode());
        assertTrue(p.copyNonExpert());
        long kv = 256 * 16384L;
        assertEquals(Bytes.ceilMib(MemoryPlanner.HEAP_BASE + kv), p.heapBytes());
        long margin = Math.max(16 * MIB, avail / 20);
        long budget = avail - JVM - margin - MIXTRAL.nonExpertBytes() - p.heapBytes();
        assertEquals(budget, p.expertBudget());
        assertEquals(budget / MIXTRAL.slotBytes(), p.slots());
        // every part of the plan, and the whole, stays within what is available
        assertTrue(JVM + margin + MIXTRAL.nonExpertBytes() + p.heapBytes() + p.expertBudget() <= avail);
        assertTrue(p.explanation().startsWith("expert memory auto: "), p.explanation());
        assertTrue(p.explanation().contains("cgroup v2 /x limit 381.5 MiB"), p.explanation());
        assertTrue(p.explanation().contains(p.slots() + " of 64 experts"), p.explanation());
    }

    @Test
    void theRunInsideTheJvmGetsTheSameBudgetAsTheLauncherPlannedTheHeapWith() {
        long avail = 400_000_000L;
        Request r = new Request(Ask.AUTO, 0, 1024, false);
        MemoryPlan launcher = MemoryPlanner.plan(MIXTRAL, r, avail, "s", -1);
        MemoryPlan inside = MemoryPlanner.plan(MIXTRAL, r, avail, "s", launcher.heapBytes());
        assertEquals(launcher.expertBudget(), inside.expertBudget());
        // a user's bigger -Xmx is taken from the experts, not from the margin
        MemoryPlan bigger = MemoryPlanner.plan(MIXTRAL, r, avail, "s", launcher.heapBytes() + 50 * MIB);
        assertEquals(launcher.expertBudget() - 50 * MIB, bigger.expertBudget());
    }

    @Test
    void aJvmWithAHugeHeapCeilingStillRunsAModelThatFitsResident() {
        // an embedding program (or a launcher that did not plan) with -Xmx above what is available: the heap is a ceiling
        long avail = 13L << 30, hugeHeap = 16L << 30;
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.DEFAULT, 0, 4096, false), avail, "MemAvailable 13 GiB", hugeHeap);
        assertEquals(MemoryPlan.Mode.RESIDENT, p.mode(), p.explanation());
        // offloading with that heap counts it whole, and the refusal says how to fix it
        var tooSmall = assertThrows(MemoryPlanner.TooSmall.class,
                () -> MemoryPlanner.plan(MIXTRAL, new Request(Ask.AUTO, 0, 4096, false), avail, "MemAvailable 13 GiB", hugeHeap));
        assertTrue(tooSmall.getMessage().contains("give the JVM a smaller heap (its -Xmx of 16.00 GiB"), tooSmall.getMessage());
    }

    @Test
    void theKvCacheOfTheContextComesOutOfTheExpertBudget() {
        long avail = 600 * MIB;
        MemoryPlan small = MemoryPlanner.plan(MIXTRAL, new Request(Ask.AUTO, 0, 256, false), avail, "s", -1);
        MemoryPlan large = MemoryPlanner.plan(MIXTRAL, new Request(Ask.AUTO, 0, 4096, false), avail, "s", -1);
        assertEquals(Bytes.ceilMib(MemoryPlanner.HEAP_BASE + 4096 * 16384L) - Bytes.ceilMib(MemoryPlanner.HEAP_BASE + 256 * 16384L),
                small.expertBudget() - large.expertBudget());
    }

    @Test
    void aLimitTooSmallForTwoSlotsIsRefusedNamingWhatIsNeeded() {
        long avail = 200 * MIB;
        MemoryPlanner.TooSmall e = assertThrows(MemoryPlanner.TooSmall.class,
                () -> MemoryPlanner.plan(MIXTRAL, new Request(Ask.DEFAULT, 0, 4096, false), avail, "cgroup v1 /box limit 200.0 MiB", -1));
        long heap = Bytes.ceilMib(MemoryPlanner.HEAP_BASE + 4096 * 16384L);
        long need = JVM + 16 * MIB + MIXTRAL.nonExpertBytes() + heap + 2 * MIXTRAL.slotBytes();
        assertEquals(need, e.needed);
        assertEquals(avail, e.available);
        assertTrue(e.getMessage().contains("needs at least " + Bytes.format(need)), e.getMessage());
        assertTrue(e.getMessage().contains("only 200.0 MiB is available (cgroup v1 /box limit 200.0 MiB)"), e.getMessage());
        assertTrue(e.getMessage().contains("non-expert weights 22.6 MiB"), e.getMessage());
        assertTrue(e.getMessage().contains("KV cache 64.0 MiB for --ctx-size 4096"), e.getMessage());
        assertTrue(e.getMessage().contains("Raise the memory limit by " + Bytes.format(need - avail) + " or lower --ctx-size"), e.getMessage());
        // just enough is accepted, with exactly the two slots
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.DEFAULT, 0, 4096, false), need, "s", -1);
        assertEquals(2, p.slots());
    }

    @Test
    void nonExpertWeightsThatDoNotFitAreSaidSoAtOnce() {
        ModelFootprint fat = new ModelFootprint("fat.gguf", 2048 * MIB, 1024 * MIB, 16 * MIB, 64, 0, 0, 4096, 512);
        MemoryPlanner.TooSmall e = assertThrows(MemoryPlanner.TooSmall.class,
                () -> MemoryPlanner.plan(fat, new Request(Ask.AUTO, 0, 512, false), 1024 * MIB, "MemAvailable 1.00 GiB", -1));
        assertTrue(e.getMessage().contains("non-expert weights 1.00 GiB"), e.getMessage());
        assertTrue(e.needed > 1024 * MIB + JVM);
    }

    @Test
    void packedCopiesAreMadeWhenTheyFitAndSkippedWithANoteWhenThey() {
        // resident with every packed copy: 420 + 470 MiB packed + JVM etc. fits in 2 GiB
        MemoryPlan roomy = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, false), 2048 * MIB, "s", -1);
        assertEquals(MemoryPlan.Mode.RESIDENT, roomy.mode());
        assertTrue(roomy.pack());
        // resident without them: the weights fit, the copies do not
        MemoryPlan plain = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, false), 700 * MIB, "s", -1);
        assertEquals(MemoryPlan.Mode.RESIDENT, plain.mode());
        assertFalse(plain.pack());
        assertTrue(plain.notes().get(0).startsWith("packed copies skipped"), plain.notes().toString());
        // offloaded: the non-expert copies go on the heap when slots remain...
        MemoryPlan off = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, false), 400 * MIB, "s", -1);
        assertEquals(MemoryPlan.Mode.OFFLOAD, off.mode());
        assertTrue(off.pack());
        // (and the slots hold packed copies, which are Java arrays: the heap grows by their share of every slot)
        long base = Bytes.ceilMib(MemoryPlanner.HEAP_BASE + 512 * 16384L + 30 * MIB);
        assertEquals(Bytes.ceilMib(base + off.slots() * (Q4.slotHeapBytes() + MemoryPlanner.SLOT_HEAP_SLACK)), off.heapBytes());
        assertEquals(off.slots(), off.expertBudget() / (Q4.slotHeapBytes() + Q4.slotRawBytes()));
        assertTrue(off.explanation().contains("packed, on the heap"), off.explanation());
        // the run inside the JVM, given that heap, plans the same slots
        MemoryPlan inside = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, false), 400 * MIB, "s", off.heapBytes());
        assertEquals(off.slots(), inside.slots());
        assertTrue(inside.pack());
        // ...and are skipped when they would take the last slots
        long justTwoSlotsWithout = JVM + 16 * MIB + 20 * MIB + Bytes.ceilMib(MemoryPlanner.HEAP_BASE + 512 * 16384L) + 2 * Q4.slotBytes();
        MemoryPlan tight = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, false), justTwoSlotsWithout, "s", -1);
        assertFalse(tight.pack());
        assertEquals(2, tight.slots());
        assertTrue(tight.notes().stream().anyMatch(n -> n.startsWith("packed copies skipped")), tight.notes().toString());
        // a fixed heap too small for them says so too
        MemoryPlan fixed = MemoryPlanner.plan(Q4, new Request(Ask.AUTO, 0, 512, false), 400 * MIB, "s", 48 * MIB);
        assertFalse(fixed.pack());
        // --no-pack: nothing counted for them
        MemoryPlan none = MemoryPlanner.plan(Q4, new Request(Ask.DEFAULT, 0, 512, true), 400 * MIB, "s", -1);
        assertFalse(none.pack());
        assertTrue(none.expertBudget() > off.expertBudget());
    }

    @Test
    void explicitAutoOffloadsEvenWhenTheModelFitsButNeverPlansMoreThanEveryExpert() {
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.AUTO, 0, 256, false), 8192 * MIB, "s", -1);
        assertEquals(MemoryPlan.Mode.OFFLOAD, p.mode());
        assertEquals(MIXTRAL.expertBytes() + MIXTRAL.slotBytes(), p.expertBudget());
        assertEquals(64, Math.min(p.slots(), 64));
    }

    @Test
    void aGivenBudgetIsKeptAndOverspendingIsReported() {
        MemoryPlan p = MemoryPlanner.plan(MIXTRAL, new Request(Ask.GIVEN, 150 * MIB, 256, false), 400_000_000L, "s", -1);
        assertEquals(150 * MIB, p.expertBudget());
        assertTrue(p.notes().isEmpty(), p.notes().toString());
        assertTrue(p.explanation().startsWith("expert memory 150.0 MiB (given)"), p.explanation());
        MemoryPlan over = MemoryPlanner.plan(MIXTRAL, new Request(Ask.GIVEN, 300 * MIB, 256, false), 400_000_000L, "s", -1);
        assertEquals(300 * MIB, over.expertBudget());
        assertTrue(over.notes().get(0).startsWith("warning: the given 300.0 MiB"), over.notes().toString());
    }

    @Test
    void aDenseModelHasNothingToOffload() {
        ModelFootprint dense = new ModelFootprint("dense.gguf", 100 * MIB, 0, 0, 0, 0, 0, 8192, 2048);
        MemoryPlan p = MemoryPlanner.plan(dense, new Request(Ask.AUTO, 0, 2048, false), 1024 * MIB, "s", -1);
        assertEquals(MemoryPlan.Mode.RESIDENT, p.mode());
        assertTrue(p.notes().get(0).contains("no routed experts"), p.notes().toString());
    }

    @Test
    void requestsParseTheFlag() {
        assertEquals(Ask.DEFAULT, Request.of(null, 1000, 16, false, (s, e) -> 1).ask());
        assertEquals(Ask.AUTO, Request.of(" Auto ", 1000, 16, false, (s, e) -> 1).ask());
        Request g = Request.of("1/4", 1000, 16, false, (s, e) -> e / 4);
        assertEquals(Ask.GIVEN, g.ask());
        assertEquals(250, g.givenBudget());
        assertThrows(IllegalArgumentException.class, () -> new Request(Ask.AUTO, 0, 0, false));
    }
}
