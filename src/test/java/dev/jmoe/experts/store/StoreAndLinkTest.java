package dev.jmoe.experts.store;

import dev.jmoe.testutil.TestModels;
import dev.jmoe.experts.cache.ExpertMemory;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.model.ExpertWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Stores return each expert's exact bytes; links parse and account what they move; budgets parse. */
class StoreAndLinkTest {
    private static void assertStoreReadsEveryExpert(ExpertStore store, Model m) {
        ExpertLayout layout = store.layout();
        try (Arena a = Arena.ofConfined()) {
            // an odd offset into the buffer: stores must not rely on the destination's alignment
            MemorySegment buf = a.allocate(layout.maxExpertBytes() + 3).asSlice(3);
            for (int l = 0; l < layout.layerCount(); l++) {
                for (int e = 0; e < layout.nExpert(l); e++) {
                    buf.fill((byte) 0x5a);
                    store.read(l, e, buf);
                    ExpertWeights ref = m.stackedExperts().get(l).expert(e);
                    ExpertWeights got = layout.view(l, e, buf);
                    assertEquals(-1, ref.gate().data().mismatch(got.gate().data()), store.name() + " gate " + l + "/" + e);
                    assertEquals(-1, ref.up().data().mismatch(got.up().data()), store.name() + " up " + l + "/" + e);
                    assertEquals(-1, ref.down().data().mismatch(got.down().data()), store.name() + " down " + l + "/" + e);
                    ExpertWeights in = store.inPlace(l, e);
                    if (in != null) assertEquals(-1, ref.down().data().mismatch(in.down().data()));
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"direct", "host", "mmap"})
    void everyStoreReadsEveryExpertsExactBytes(String kind) throws Exception {
        for (Path p : new Path[]{TestModels.qwen2moe(), TestModels.mixtral()}) {
            try (GgufFile f = GgufFile.open(p)) {
                Model m = Model.load(f);
                try (ExpertStore store = ExpertStore.open(kind, m)) {
                    assertStoreReadsEveryExpert(store, m);
                }
            }
        }
    }

    @Test
    void directStoreReallyBypassesThePageCacheOnThisFilesystem() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            Model m = Model.load(f);
            try (DirectStore store = (DirectStore) ExpertStore.open("direct", m)) {
                // /tmp here is a disk filesystem that supports O_DIRECT; a refusing one is reported in note()
                assertTrue(store.isDirect() || store.note() != null);
                if (!store.isDirect()) assertTrue(store.note().contains("O_DIRECT"), store.note());
            }
        }
    }

    @Test
    void directStoreOnTmpfsFallsBackWithAClearNoteOrReadsDirectly() throws Exception {
        Path shm = Path.of("/dev/shm");
        if (!Files.isDirectory(shm) || !Files.isWritable(shm)) return; // no tmpfs to try on this machine
        Path copy = Files.createTempFile(shm, "jmoe-direct", ".gguf");
        try {
            Files.copy(TestModels.qwen2moe(), copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            try (GgufFile f = GgufFile.open(copy)) {
                Model m = Model.load(f);
                try (DirectStore store = (DirectStore) ExpertStore.open("direct", m)) {
                    assertStoreReadsEveryExpert(store, m);
                    if (!store.isDirect()) assertTrue(store.note().contains("refuses O_DIRECT"), store.note());
                }
            }
        } finally {
            Files.deleteIfExists(copy);
        }
    }

    @Test
    void pageCacheFallbackReadsTheSameBytes() throws Exception {
        // the path a filesystem that refuses O_DIRECT takes: buffered preads, pages dropped after each read
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            Model m = Model.load(f);
            try (DirectStore store = new DirectStore(f.path(), ExpertLayout.of(m), false)) {
                assertTrue(!store.isDirect() && store.note().contains("page cache"), store.note());
                assertStoreReadsEveryExpert(store, m);
            }
        }
    }

    @Test
    void smallBounceBufferReadsInChunks() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            Model m = Model.load(f);
            try (DirectStore store = new DirectStore(f.path(), ExpertLayout.of(m), true, 8192)) {
                assertStoreReadsEveryExpert(store, m);
            }
        }
    }

    @Test
    void slotsPlacedAtTheStoresPhaseAreReadWithoutACopy() throws Exception {
        // one layer of Q8_0 experts whose parts are whole 512-byte blocks: every part sits at the same offset modulo 512
        Path p = TestModels.get("aligned-experts", new dev.jmoe.model.RandomModel.Shape("llama", 1, 128, 4, 2, 32, 8, 2, 512, 0, 300, 256, 1e6f, 1e-5f,
                false, 13), dev.jmoe.model.FileType.Q8_0);
        try (GgufFile f = GgufFile.open(p)) {
            Model m = Model.load(f);
            ExpertLayout layout = ExpertLayout.of(m);
            try (DirectStore store = new DirectStore(f.path(), layout)) {
                if (!store.isDirect()) return; // a filesystem without O_DIRECT has nothing to skip
                long phase = store.slotPhase();
                assertTrue(phase >= 0 && phase < store.alignment(), "phase " + phase);
                for (int e = 0; e < layout.nExpert(0); e++) {
                    for (int part = 0; part < 3; part++) {
                        long at = part == 0 ? 0 : part == 1 ? layout.partBytes(0, 0) : layout.partBytes(0, 0) + layout.partBytes(0, 1);
                        assertEquals(phase, Math.floorMod(layout.fileOffset(0, e, part) - at, store.alignment()));
                    }
                }
                try (ExpertMemory mem = new ExpertMemory(5 * layout.maxExpertBytes() + 8192, layout.maxExpertBytes(), 0, phase)) {
                    assertTrue(mem.allocatedBytes() <= 5 * layout.maxExpertBytes() + 8192);
                    for (int e = 0; e < layout.nExpert(0); e++) {
                        MemorySegment slot = mem.slot(e % mem.slots());
                        assertEquals(phase, Math.floorMod(slot.address(), store.alignment()));
                        slot.fill((byte) 0x5a);
                        store.read(0, e, slot);
                        ExpertWeights ref = m.stackedExperts().get(0).expert(e), got = layout.view(0, e, slot);
                        assertEquals(-1, ref.gate().data().mismatch(got.gate().data()));
                        assertEquals(-1, ref.up().data().mismatch(got.up().data()));
                        assertEquals(-1, ref.down().data().mismatch(got.down().data()));
                    }
                    // all but the partial blocks at the ends of each part went straight into the slots
                    long total = layout.nExpert(0) * layout.expertBytes(0);
                    assertTrue(store.directBytes() > total - layout.nExpert(0) * 6 * store.alignment(), store.directBytes() + " of " + total);
                }
                // a destination off the phase is still read exactly, through the bounce buffers
                long before = store.directBytes();
                assertStoreReadsEveryExpert(store, m);
                assertEquals(before, store.directBytes());
            }
        }
    }

    /** Whether the kernel has AIO contexts to give (fs.aio-max-nr not used up). */
    private static boolean aioContextsLeft() {
        try {
            long max = Long.parseLong(Files.readString(Path.of("/proc/sys/fs/aio-max-nr")).trim());
            long used = Long.parseLong(Files.readString(Path.of("/proc/sys/fs/aio-nr")).trim());
            return used + 64 < max;
        } catch (Exception e) {
            return false;
        }
    }

    @Test
    void manyOutstandingPiecesFromSeveralLoadersReadExactBytes() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            Model m = Model.load(f);
            ExpertLayout layout = ExpertLayout.of(m);
            // 4 KiB pieces, four in flight: every expert is many pieces shared by the caller and three helpers
            try (DirectStore store = new DirectStore(f.path(), layout, true, 4096, 4)) {
                assertEquals(4, store.outstanding());
                if (NativeIo.aioSupported() && aioContextsLeft()) assertTrue(store.asynchronous(), "Linux AIO is there but loads do not use it");
                assertStoreReadsEveryExpert(store, m);
                // three loader threads at once share the helpers; each must still get its own expert's bytes
                java.util.List<Thread> ts = new java.util.ArrayList<>();
                java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
                for (int t = 0; t < 3; t++) {
                    int seed = t;
                    ts.add(Thread.ofPlatform().start(() -> {
                        try (Arena a = Arena.ofConfined()) {
                            MemorySegment buf = a.allocate(layout.maxExpertBytes());
                            for (int i = 0; i < 40; i++) {
                                int l = (seed + i) % layout.layerCount();
                                if (!layout.hasExperts(l)) continue;
                                int e = (seed * 7 + i) % layout.nExpert(l);
                                store.read(l, e, buf);
                                ExpertWeights ref = m.stackedExperts().get(l).expert(e);
                                ExpertWeights got = layout.view(l, e, buf);
                                if (ref.down().data().mismatch(got.down().data()) != -1 || ref.gate().data().mismatch(got.gate().data()) != -1) {
                                    throw new AssertionError("expert " + l + "/" + e + " read by loader " + seed + " differs");
                                }
                            }
                        } catch (Throwable x) {
                            failed.compareAndSet(null, x);
                        }
                    }));
                }
                for (Thread t : ts) t.join();
                if (failed.get() != null) throw new AssertionError(failed.get());
            }
        }
    }

    @Test
    void missingFileIsAClearError() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            Model m = Model.load(f);
            ExpertLayout layout = ExpertLayout.of(m);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new DirectStore(Path.of("/nonexistent/model.gguf"), layout));
            assertTrue(e.getMessage().contains("/nonexistent/model.gguf") && e.getMessage().contains("no such file"), e.getMessage());
        }
    }

    @Test
    void linkSpecsAndPresetsParse() {
        Link l = Link.parse("2GB/s,50us");
        assertEquals(2e9, l.bytesPerSecond());
        assertEquals(50_000, l.latencyNanos());
        assertEquals(1, l.slowCompute());
        assertEquals(512.0 * 1024 * 1024, Link.parse("512MiB/s").bytesPerSecond());
        assertEquals(1e9 / 8, Link.parse("1Gb/s,1ms").bytesPerSecond());
        assertEquals(1_000_000, Link.parse("1Gb/s,1ms").latencyNanos());
        assertEquals(250e6, Link.parse("emmc").bytesPerSecond());
        assertEquals(10, Link.parse("PCIe4x16").slowCompute());
        assertTrue(!Link.parse("unlimited").throttled());
        assertEquals(50_000 + 1000, l.nanosFor(2000));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Link.parse("fast"));
        assertTrue(e.getMessage().contains("pcie4x16") && e.getMessage().contains("'fast'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Link.parse("0GB/s"));
        assertEquals(10, Link.parseRatio("10x"));
        assertEquals(2.5, Link.parseRatio("2.5"));
        assertThrows(IllegalArgumentException.class, () -> Link.parseRatio("0.5x"));
    }

    @Test
    void throttledTransfersCountRealBytesAndNeverFinishEarly() {
        Link.Channel ch = new Link.Channel(Link.parse("100MB/s,1ms"));
        long t0 = System.nanoTime();
        int[] ran = new int[1];
        ch.transfer(200_000, () -> ran[0]++);   // 2 ms on the wire + 1 ms latency
        ch.transfer(100_000, () -> ran[0]++);   // queues behind it: +1 ms
        long elapsed = System.nanoTime() - t0;
        assertEquals(2, ran[0]);
        assertEquals(300_000, ch.bytes());
        assertEquals(2, ch.transfers());
        assertTrue(elapsed >= 4_000_000, "elapsed " + elapsed + " ns is less than the emulated 4 ms");
    }

    @Test
    void budgetsParseAsBytesOrFractions() {
        long total = 3_000_000;
        assertEquals(1_000_000, OffloadConfig.parseBudget("1/3", total));
        assertEquals(750_000, OffloadConfig.parseBudget("0.25", total));
        assertEquals(1_500_000, OffloadConfig.parseBudget("50%", total));
        assertEquals(512L << 20, OffloadConfig.parseBudget("512MiB", total));
        assertEquals(2_000_000_000L, OffloadConfig.parseBudget("2GB", total));
        assertEquals(123456, OffloadConfig.parseBudget("123456", total));
        assertEquals(8_000_000_000L, OffloadConfig.parseBudget("8G", total)); // SI like GB
        for (String bad : new String[]{"", "1/0", "1.5", "0%", "lots", "-5"}) {
            assertThrows(IllegalArgumentException.class, () -> OffloadConfig.parseBudget(bad, total), bad);
        }
    }

    @Test
    void expertMemoryAtAPhaseStartsEverySlotThereWithinTheBudget() {
        try (ExpertMemory m = new ExpertMemory(3 * 8192 + 448, 5000, 0, 448)) {
            assertEquals(8192, m.slotBytes()); // the stride is a whole number of pages, so every slot keeps the phase
            assertEquals(3, m.slots());
            for (int i = 0; i < 3; i++) assertEquals(448, Math.floorMod(m.slot(i).address(), 4096));
            assertTrue(m.allocatedBytes() <= 3 * 8192 + 448);
        }
        try (ExpertMemory m = new ExpertMemory(3 * 8192 + 447, 5000, 0, 448)) {
            assertEquals(2, m.slots()); // the shift comes out of the budget
        }
        assertThrows(IllegalArgumentException.class, () -> new ExpertMemory(100_000, 5000, 0, 4096));
    }

    @Test
    void expertMemoryNeverAllocatesAboveBudgetAndRefusesLessThanOneExpert() {
        try (ExpertMemory m = new ExpertMemory(10_000, 3000)) {
            assertEquals(3, m.slots());
            assertTrue(m.allocatedBytes() <= 10_000);
            assertEquals(3008, m.slotBytes()); // rounded to 64 bytes, still within budget
        }
        try (ExpertMemory m = new ExpertMemory(3008, 3000)) {
            assertEquals(1, m.slots());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ExpertMemory(2000, 3000));
        assertTrue(e.getMessage().contains("below one expert"), e.getMessage());
    }

    @Test
    void presetsAndBadSettingsAreExplained() {
        OffloadConfig c = OffloadConfig.preset("smoe", "1/3", "direct", Link.UNLIMITED);
        assertEquals("score", c.eviction());
        assertEquals(0.25, c.alpha());
        assertTrue(c.prefetch() && c.balance());
        OffloadConfig lru = OffloadConfig.preset("lru-ondemand", "1/3", "host", Link.UNLIMITED);
        assertEquals("lru", lru.eviction());
        assertEquals(0, lru.alpha());
        assertTrue(!lru.prefetch() && !lru.balance());
        assertEquals(0, OffloadConfig.preset("exact-smoe", "1/3", "host", Link.UNLIMITED).alpha());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OffloadConfig.preset("magic", "1/3", "host", Link.UNLIMITED));
        assertTrue(e.getMessage().contains("lru-ondemand"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> OffloadConfig.preset("smoe", "1/3", "ssd", Link.UNLIMITED));
        assertThrows(IllegalArgumentException.class, () -> c.withAlpha(1.5));
        assertThrows(IllegalArgumentException.class, () -> c.withEviction("fifo"));
    }
}
