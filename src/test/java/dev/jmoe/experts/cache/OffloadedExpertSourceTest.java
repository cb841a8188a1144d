package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.testutil.TestModels;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.store.MmapStore;
import dev.jmoe.model.ExpertWeights;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import dev.jmoe.experts.predict.Lookahead;

/** The cache mechanics of {@link OffloadedExpertSource}, driven directly with a store whose reads the test controls. */
class OffloadedExpertSourceTest {
    private static GgufFile file;
    private static Model model;
    private static ExpertLayout layout;
    private static int nExpert;

    @BeforeAll
    static void open() throws Exception {
        file = GgufFile.open(TestModels.qwen2moe());
        model = Model.load(file);
        layout = ExpertLayout.of(model);
        nExpert = layout.nExpert();
    }

    @AfterAll
    static void close() { file.close(); }

    /** Reads from the mapping, but a read of a gated expert waits until the test opens its gate; records read order. */
    static final class GatedStore implements ExpertStore {
        final MmapStore inner = new MmapStore(model, layout);
        final Map<Integer, CountDownLatch> gates = new ConcurrentHashMap<>();
        final List<Integer> reads = Collections.synchronizedList(new ArrayList<>());
        final Map<Integer, CountDownLatch> started = new ConcurrentHashMap<>();

        CountDownLatch gate(int layer, int expert) {
            return gates.computeIfAbsent(layer * nExpert + expert, k -> new CountDownLatch(1));
        }

        CountDownLatch started(int layer, int expert) {
            return started.computeIfAbsent(layer * nExpert + expert, k -> new CountDownLatch(1));
        }

        @Override public String name() { return "gated"; }
        @Override public ExpertLayout layout() { return layout; }

        @Override
        public void read(int layer, int expert, MemorySegment dst) {
            int k = layer * nExpert + expert;
            reads.add(k);
            started(layer, expert).countDown();
            CountDownLatch g = gates.get(k);
            try {
                if (g != null && !g.await(20, TimeUnit.SECONDS)) throw new IllegalStateException("test gate never opened for " + k);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            inner.read(layer, expert, dst);
        }
    }

    private static OffloadedExpertSource source(GatedStore store, int slots, OffloadStats stats) {
        ExpertMemory mem = new ExpertMemory(slots * ((layout.maxExpertBytes() + 63) / 64 * 64), layout.maxExpertBytes());
        return new OffloadedExpertSource(store, mem, Link.UNLIMITED, new EvictionPolicy.Lru(layout.layerCount() * nExpert), stats,
                new OffloadedExpertSource.Options(false, 1));
    }

    private static int key(int layer, int expert) { return layer * nExpert + expert; }

    private static void await(CountDownLatch l) throws InterruptedException {
        assertTrue(l.await(20, TimeUnit.SECONDS), "timed out waiting for a load to start");
    }

    /** Bytes of the expert as the weights returned by acquire show them, compared with the file's. */
    private static void assertSameBytes(ExpertWeights w) {
        ExpertWeights ref = model.stackedExperts().get(w.layer()).expert(w.expert());
        assertEquals(-1, ref.gate().data().mismatch(w.gate().data()), "gate bytes of " + w.layer() + "/" + w.expert());
        assertEquals(-1, ref.up().data().mismatch(w.up().data()));
        assertEquals(-1, ref.down().data().mismatch(w.down().data()));
    }

    @Test
    void demandLoadsOvertakeQueuedPrefetches() throws Exception {
        GatedStore store = new GatedStore();
        OffloadStats stats = new OffloadStats();
        try (OffloadedExpertSource src = source(store, 2, stats)) {
            CountDownLatch gateA = store.gate(0, 1);
            src.willUse(0, new int[]{1, 2, 3});  // 2 slots: experts 1 and 2 get them, 3 waits for one
            await(store.started(0, 1));           // the loader is busy with expert 1
            src.prefetch(1, new int[]{5}, 1);     // queued while the loader is busy
            gateA.countDown();
            int[] order = src.order(0, new int[]{1, 2, 3});
            assertArrayEquals(new int[]{1, 2, 3}, order);
            for (int e : order) {
                ExpertWeights w = src.acquire(0, e);
                assertSameBytes(w);
                src.release(w);
            }
            src.awaitIdle();
            // expert 3's demand was queued after the prefetch (when expert 1's slot came free) and still went first
            assertEquals(List.of(key(0, 1), key(0, 2), key(0, 3), key(1, 5)), store.reads);
            assertEquals(3, stats.total(Counter.MISSES_LOADED));
        }
    }

    @Test
    void stalePrefetchesAreCancelledAndUnusedOnesCountedWasted() throws Exception {
        GatedStore store = new GatedStore();
        OffloadStats stats = new OffloadStats();
        try (OffloadedExpertSource src = source(store, 4, stats)) {
            src.willUse(0, new int[]{0});
            ExpertWeights w = src.acquire(0, 0);
            src.release(w);
            CountDownLatch gateP = store.gate(1, 7);
            src.prefetch(1, new int[]{7, 8, 9}, 3);
            await(store.started(1, 7));             // 7 is being read; 8 and 9 are queued
            src.willUse(1, new int[]{4});           // layer 1 arrives and wants neither
            gateP.countDown();
            w = src.acquire(1, 4);
            src.release(w);
            src.awaitIdle();
            assertFalse(store.reads.contains(key(1, 8)), "stale prefetch 8 was read");
            assertFalse(store.reads.contains(key(1, 9)), "stale prefetch 9 was read");
            assertEquals(2, stats.total(Counter.PREFETCHES_CANCELLED));
            assertEquals(1, stats.total(Counter.PREFETCHES_WASTED)); // 7 arrived but layer 1 did not use it
            assertEquals(3, stats.total(Counter.PREFETCHES_ISSUED));
        }
    }

    @Test
    void prefetchedExpertIsAPrefetchHit() throws Exception {
        GatedStore store = new GatedStore();
        OffloadStats stats = new OffloadStats();
        try (OffloadedExpertSource src = source(store, 4, stats)) {
            src.willUse(0, new int[]{0});
            src.release(src.acquire(0, 0));
            src.prefetch(1, new int[]{3}, 1);
            src.awaitIdle();
            src.willUse(1, new int[]{3});
            ExpertWeights w = src.acquire(1, 3);
            assertSameBytes(w);
            src.release(w);
            assertEquals(1, stats.total(Counter.PREFETCH_HITS));
            assertEquals(1, stats.total(Counter.MISSES_LOADED));
            assertEquals(0, stats.total(Counter.EXACT_HITS));
        }
    }

    @Test
    void pinnedExpertsAreNeverEvicted() throws Exception {
        GatedStore store = new GatedStore();
        OffloadStats stats = new OffloadStats();
        try (OffloadedExpertSource src = source(store, 2, stats)) {
            src.willUse(0, new int[]{1, 2});
            ExpertWeights a = src.acquire(0, 1), b = src.acquire(0, 2);
            src.prefetch(1, new int[]{5, 6}, 2);   // no slot can be had: both are pinned
            src.awaitIdle();                        // returns once the loader has found no slot for the prefetch
            assertTrue(src.prefetchStalled());
            assertFalse(store.reads.contains(key(1, 5)));
            assertArrayEquals(new int[]{key(0, 1), key(0, 2)}, src.residentKeys());
            assertSameBytes(a);
            assertSameBytes(b);
            src.release(a);                         // one slot comes free: the waiting prefetch takes it
            src.awaitIdle();
            assertTrue(store.reads.contains(key(1, 5)));
            assertArrayEquals(new int[]{key(0, 2), key(1, 5)}, src.residentKeys());
            assertSameBytes(b);                     // still pinned, untouched
            src.release(b);
        }
    }

    @Test
    void releaseWithoutPinAndAcquireWithoutWillUseAreErrors() {
        GatedStore store = new GatedStore();
        try (OffloadedExpertSource src = source(store, 2, new OffloadStats())) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> src.acquire(0, 3));
            assertTrue(e.getMessage().contains("without willUse"), e.getMessage());
        }
    }

    @Test
    void aFailedReadIsReportedToTheWaitingAcquireNotAHang() {
        ExpertStore failing = new ExpertStore() {
            @Override public String name() { return "failing"; }
            @Override public ExpertLayout layout() { return layout; }
            @Override public void read(int layer, int expert, MemorySegment dst) { throw new IllegalStateException("disk on fire"); }
        };
        ExpertMemory mem = new ExpertMemory(4 * layout.maxExpertBytes() + 4096, layout.maxExpertBytes());
        try (OffloadedExpertSource src = new OffloadedExpertSource(failing, mem, Link.UNLIMITED, new EvictionPolicy.Lru(layout.layerCount() * nExpert),
                new OffloadStats(), new OffloadedExpertSource.Options(false, 1))) {
            src.willUse(0, new int[]{2});
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> src.acquire(0, 2));
            assertTrue(e.getMessage().contains("0/2") && e.getMessage().contains("disk on fire"), e.getMessage());
        }
    }

    /**
     * Random layers and expert sets, with prefetches from a second thread, through few slots: every acquired
     * expert holds its own bytes until released (pinned slots are never reused), and resident bytes never exceed
     * the budget.
     */
    @Test
    void randomWorkloadNeverCorruptsPinnedExpertsNorExceedsBudget() throws Exception {
        Random rnd = new Random(5);
        for (int slots : new int[]{1, 2, 3, 7}) {
            MmapStore store = new MmapStore(model, layout);
            OffloadStats stats = new OffloadStats();
            long slotBytes = (layout.maxExpertBytes() + 63) / 64 * 64;
            ExpertMemory mem = new ExpertMemory(slots * slotBytes, layout.maxExpertBytes());
            try (OffloadedExpertSource src = new OffloadedExpertSource(store, mem, Link.UNLIMITED,
                    new EvictionPolicy.Lfu(layout.layerCount() * nExpert), stats, new OffloadedExpertSource.Options(false, 2))) {
                for (int step = 0; step < 60; step++) {
                    int layer = step % layout.layerCount();
                    int[] used = rnd.ints(0, nExpert).distinct().limit(1 + rnd.nextInt(4)).sorted().toArray();
                    src.willUse(layer, used);
                    int next = (layer + 1) % layout.layerCount();
                    if (next == layer + 1) src.prefetch(next, rnd.ints(0, nExpert).distinct().limit(3).toArray(), 3);
                    List<ExpertWeights> held = new ArrayList<>();
                    for (int e : src.order(layer, used)) {
                        ExpertWeights w = src.acquire(layer, e);
                        assertSameBytes(w);
                        held.add(w);
                        if (rnd.nextBoolean() || held.size() >= 1) { // release in order, sometimes keeping one
                            for (ExpertWeights h : held) {
                                assertSameBytes(h);
                                src.release(h);
                            }
                            held.clear();
                        }
                    }
                    assertTrue(src.residentBytes() <= mem.allocatedBytes());
                }
                assertTrue(stats.peakResidentBytes() <= slots * slotBytes, "peak " + stats.peakResidentBytes());
                assertTrue(mem.allocatedBytes() <= slots * slotBytes);
            }
        }
    }

    @Test
    void predictionsReachTheViewAPredictiveEvictionReadsAndSteerItsVictim() throws Exception {
        GatedStore store = new GatedStore();
        int nLayer = layout.layerCount();
        Predictions view = new Predictions(nLayer, nExpert);
        EvictionPolicy policy = EvictionPolicies.create("predictive", new EvictionPolicy.Context(nLayer, nExpert, 16, null, view));
        ExpertMemory mem = new ExpertMemory(2 * ((layout.maxExpertBytes() + 63) / 64 * 64), layout.maxExpertBytes());
        try (OffloadedExpertSource src = new OffloadedExpertSource(store, mem, Link.UNLIMITED, policy, new OffloadStats(),
                new OffloadedExpertSource.Options(false, 1), view)) {
            OffloadedSourceSink sink = new OffloadedSourceSink(src);
            // experts 1 and 2 of layer 0 resident, used once each, 1 before 2
            sink.at(0, 0, 1);
            src.willUse(0, new int[]{1, 2});
            src.release(src.acquire(0, 1));
            src.release(src.acquire(0, 2));
            src.awaitIdle();
            // the predictor says layer 0 of the next position uses expert 1: LRU would evict 1, the predictive policy keeps it
            sink.prefetch(1, 0, new int[]{1}, 1, nLayer);
            assertEquals(Lookahead.step(1, 0, nLayer), view.nextUse(key(0, 1)));
            sink.at(0, 1, 1);
            src.willUse(1, new int[]{3});
            src.release(src.acquire(1, 3));
            src.awaitIdle();
            int[] resident = src.residentKeys();
            assertTrue(java.util.Arrays.stream(resident).anyMatch(k -> k == key(0, 1)), "the predicted expert stays: " + java.util.Arrays.toString(resident));
            assertTrue(java.util.Arrays.stream(resident).noneMatch(k -> k == key(0, 2)), "the unpredicted one went");
        }
    }
}
