package dev.jmoe.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

class ParallelTest {

    @Test
    void sumsOverRangesCoverEveryIndexExactlyOnce() {
        try (Parallel pool = new Parallel(3)) {
            for (int n : new int[] {1, 2, 3, 7, 64, 1000, 4097}) {
                for (int grain : new int[] {1, 4, 32}) {
                    int[] hits = new int[n];
                    AtomicLong sum = new AtomicLong();
                    pool.forRange(n, grain, (s, e) -> {
                        long local = 0;
                        for (int i = s; i < e; i++) {
                            hits[i]++;
                            local += i;
                        }
                        sum.addAndGet(local);
                    });
                    assertEquals((long) n * (n - 1) / 2, sum.get(), "n=" + n + " grain=" + grain);
                    for (int i = 0; i < n; i++) assertEquals(1, hits[i], "index " + i + " n=" + n + " grain=" + grain);
                }
            }
        }
    }

    @Test
    void chunkBoundsAreMultiplesOfGrainAndContiguous() {
        try (Parallel pool = new Parallel(2, 1)) {
            List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
            pool.forRange(1000, 16, (s, e) -> chunks.add(new int[] {s, e}));
            assertEquals(2, chunks.size());
            chunks.sort((a, b) -> Integer.compare(a[0], b[0]));
            assertEquals(0, chunks.get(0)[0]);
            assertEquals(chunks.get(0)[1], chunks.get(1)[0]);
            assertEquals(1000, chunks.get(1)[1]);
            assertEquals(0, chunks.get(0)[1] % 16);
        }
    }

    /** A call may cut its range into its own number of chunks per thread; the pool's setting stays for the others. */
    @Test
    void aCallMayAskForItsOwnChunksPerThread() {
        try (Parallel pool = new Parallel(2, 8)) {
            for (int perThread : new int[] {1, 2, 3}) {
                List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
                pool.forRange(1000, 16, perThread, (s, e) -> chunks.add(new int[] {s, e}));
                assertEquals(2 * perThread, chunks.size(), perThread + " per thread");
                chunks.sort((a, b) -> Integer.compare(a[0], b[0]));
                assertEquals(0, chunks.get(0)[0]);
                for (int i = 1; i < chunks.size(); i++) {
                    assertEquals(chunks.get(i - 1)[1], chunks.get(i)[0], "chunk " + i + " starts where the previous ends");
                    assertEquals(0, chunks.get(i)[0] % 16, "chunk " + i + " starts on a grain");
                }
                assertEquals(1000, chunks.get(chunks.size() - 1)[1]);
            }
            List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
            pool.forRange(1000, 16, (s, e) -> chunks.add(new int[] {s, e}));
            assertEquals(16, chunks.size(), "the pool's own setting for a call that names none");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.forRange(10, 1, 0, (a, b) -> {}));
            assertTrue(e.getMessage().contains("chunks per thread must be >= 1, got 0"), e.getMessage());
        }
    }

    /**
     * Guided chunks: each 1/threads of the grains not yet taken (in order), down to one grain; they cover the range
     * once, start on grains, and the first is the largest.
     */
    @Test
    void guidedChunksHalveWhatIsLeftAndCoverTheRangeOnce() {
        try (Parallel pool = new Parallel(2)) {
            List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
            pool.forRangeGuided(1000, 16, (s, e) -> chunks.add(new int[] {s, e}));
            chunks.sort((a, b) -> Integer.compare(a[0], b[0]));
            // 63 grains: 31, 16, 8, 4, 2, 1, 1 of them
            int[] sizes = chunks.stream().mapToInt(c -> c[1] - c[0]).toArray();
            assertArrayEquals(new int[] {31 * 16, 16 * 16, 8 * 16, 4 * 16, 2 * 16, 16, 1000 - 62 * 16}, sizes);
            assertEquals(0, chunks.get(0)[0]);
            for (int i = 1; i < chunks.size(); i++) assertEquals(chunks.get(i - 1)[1], chunks.get(i)[0], "chunk " + i);
        }
        try (Parallel pool = new Parallel(3)) {
            for (int n : new int[] {1, 2, 3, 7, 64, 1000, 4097}) {
                for (int grain : new int[] {1, 4, 32}) {
                    int[] hits = new int[n];
                    List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
                    pool.forRangeGuided(n, grain, (s, e) -> {
                        chunks.add(new int[] {s, e});
                        for (int i = s; i < e; i++) hits[i]++;
                    });
                    for (int i = 0; i < n; i++) assertEquals(1, hits[i], "index " + i + " n=" + n + " grain=" + grain);
                    for (int[] c : chunks) assertEquals(0, c[0] % grain, "a chunk starts on a grain: n=" + n + " grain=" + grain);
                    chunks.sort((a, b) -> Integer.compare(a[0], b[0]));
                    for (int[] c : chunks) assertTrue(c[1] - c[0] <= chunks.get(0)[1] - chunks.get(0)[0], "the first chunk is the largest");
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.forRangeGuided(10, 0, (a, b) -> {}));
            assertTrue(e.getMessage().contains("grain must be >= 1, got 0"), e.getMessage());
        }
    }

    @Test
    void rangesAreCutIntoSeveralChunksPerThreadCoveringEverything() {
        try (Parallel pool = new Parallel(2, 4)) {
            List<int[]> chunks = Collections.synchronizedList(new ArrayList<>());
            pool.forRange(1000, 16, (s, e) -> chunks.add(new int[] {s, e}));
            assertEquals(8, chunks.size());
            chunks.sort((a, b) -> Integer.compare(a[0], b[0]));
            assertEquals(0, chunks.get(0)[0]);
            for (int i = 1; i < chunks.size(); i++) {
                assertEquals(chunks.get(i - 1)[1], chunks.get(i)[0], "chunk " + i + " starts where the previous ends");
                assertEquals(0, chunks.get(i)[0] % 16, "chunk " + i + " starts on a grain");
            }
            assertEquals(1000, chunks.get(7)[1]);
            // never more chunks than grains
            chunks.clear();
            pool.forRange(40, 16, (s, e) -> chunks.add(new int[] {s, e}));
            assertEquals(3, chunks.size());
        }
    }

    @Test
    void manyIterationsStayCorrect() {
        try (Parallel pool = new Parallel(2)) {
            long[] out = new long[256];
            for (int it = 0; it < 5_000; it++) {
                final int k = it;
                pool.forRange(out.length, 8, (s, e) -> {
                    for (int i = s; i < e; i++) out[i] += k + i;
                });
            }
            long iters = 5_000;
            for (int i = 0; i < out.length; i++) {
                assertEquals(iters * (iters - 1) / 2 + iters * i, out[i], "index " + i);
            }
        }
    }

    /**
     * Back-to-back ranges cut into very different numbers of chunks (a decode step's attention, then a projection): a
     * worker still leaving one range must not take a chunk of the next as its own, which once left a range counted as
     * done one time too many and its caller waiting forever. Each range covers every index exactly once, in time.
     */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void rangesOfDifferentChunkCountsBackToBackNeverHang() {
        try (Parallel pool = new Parallel(2)) {
            int[] small = new int[3], large = new int[1000];
            for (int it = 0; it < 200_000; it++) {
                int[] a = it % 2 == 0 ? small : large;
                pool.forRange(a.length, 1, (s, e) -> {
                    for (int i = s; i < e; i++) a[i]++;
                });
            }
            for (int v : small) assertEquals(100_000, v);
            for (int v : large) assertEquals(100_000, v);
        }
    }

    @Test
    void workersTakeChunksWhenTheCallerIsBusy() throws InterruptedException {
        try (Parallel pool = new Parallel(2)) {
            Set<Thread> seen = ConcurrentHashMap.newKeySet();
            // A slow chunk keeps the caller busy long enough for the worker to claim the other one.
            for (int it = 0; it < 50 && seen.size() < 2; it++) {
                pool.forRange(2, 1, (s, e) -> {
                    seen.add(Thread.currentThread());
                    try { Thread.sleep(5); } catch (InterruptedException ignored) { }
                });
            }
            assertEquals(2, seen.size(), "the worker never ran a chunk");
        }
    }

    @Test
    void survivesIdleGapsLongerThanTheSpin() throws InterruptedException {
        try (Parallel pool = new Parallel(2)) {
            for (int it = 0; it < 5; it++) {
                AtomicInteger count = new AtomicInteger();
                pool.forRange(100, 1, (s, e) -> count.addAndGet(e - s));
                assertEquals(100, count.get());
                Thread.sleep(5); // long enough for the worker to park
            }
        }
    }

    @Test
    void workerExceptionIsRethrownInCaller() {
        try (Parallel pool = new Parallel(2)) {
            IllegalStateException ex = assertThrows(IllegalStateException.class, () ->
                    pool.forRange(100, 1, (s, e) -> {
                        if (s > 0) throw new IllegalStateException("boom in worker");
                    }));
            assertEquals("boom in worker", ex.getMessage());
            // the pool must still work afterwards
            AtomicInteger count = new AtomicInteger();
            pool.forRange(100, 1, (s, e) -> count.addAndGet(e - s));
            assertEquals(100, count.get());
        }
    }

    @Test
    void callerExceptionWaitsForWorkersThenPropagates() {
        try (Parallel pool = new Parallel(2, 1)) {
            AtomicInteger workerDone = new AtomicInteger();
            assertThrows(ArithmeticException.class, () ->
                    pool.forRange(100, 1, (s, e) -> {
                        if (s == 0) throw new ArithmeticException("caller chunk");
                        try { Thread.sleep(20); } catch (InterruptedException ignored) { }
                        workerDone.incrementAndGet();
                    }));
            assertEquals(1, workerDone.get(), "forRange returned before the worker finished");
        }
    }

    @Test
    void checkedStyleThrowableIsWrapped() {
        try (Parallel pool = new Parallel(2)) {
            Error err = assertThrows(AssertionError.class, () ->
                    pool.forRange(10, 1, (s, e) -> { if (s > 0) throw new AssertionError("worker error"); }));
            assertEquals("worker error", err.getMessage());
        }
    }

    @Test
    void singleThreadRunsInlineOnCaller() {
        try (Parallel pool = new Parallel(1)) {
            assertEquals(1, pool.threads());
            Thread me = Thread.currentThread();
            List<int[]> chunks = new ArrayList<>();
            pool.forRange(50, 4, (s, e) -> {
                assertSame(me, Thread.currentThread());
                chunks.add(new int[] {s, e});
            });
            assertEquals(1, chunks.size());
            assertArrayEquals(new int[] {0, 50}, chunks.get(0));
        }
    }

    @Test
    void nestedCallRunsInline() {
        try (Parallel pool = new Parallel(2, 1)) {
            AtomicInteger inner = new AtomicInteger();
            pool.forRange(10, 1, (s, e) -> pool.forRange(100, 1, (a, b) -> inner.addAndGet(b - a)));
            assertEquals(200, inner.get());
        }
    }

    @Test
    void rejectsBadArgumentsAndUseAfterClose() {
        assertThrows(IllegalArgumentException.class, () -> new Parallel(0));
        Parallel pool = new Parallel(2);
        assertThrows(IllegalArgumentException.class, () -> pool.forRange(10, 0, (s, e) -> { }));
        assertThrows(IllegalArgumentException.class, () -> pool.forRange(-1, 1, (s, e) -> { }));
        pool.close();
        pool.close();
        IllegalStateException ex = assertThrows(IllegalStateException.class, () -> pool.forRange(10, 1, (s, e) -> { }));
        assertTrue(ex.getMessage().contains("closed"));
    }

    @Test
    void competingThreadsStopIdleSpinningOnlyWhenTheCoresAreOversubscribed() {
        int cores = Runtime.getRuntime().availableProcessors();
        try (Parallel full = new Parallel(cores)) {
            long spin = full.spinNanos();
            assertTrue(spin > 0, "idle threads spin by default");
            Parallel.Competitor a = full.addCompetitor();
            assertEquals(0, full.spinNanos(), "pool + shadow thread > cores: park at once");
            Parallel.Competitor b = full.addCompetitor();
            a.close();
            a.close(); // closing twice counts once
            assertEquals(0, full.spinNanos(), "one competitor is still there");
            b.close();
            assertEquals(spin, full.spinNanos());
            // still correct while not spinning
            full.addCompetitor();
            AtomicInteger sum = new AtomicInteger();
            full.forRange(1000, 1, (s0, e0) -> sum.addAndGet(e0 - s0));
            assertEquals(1000, sum.get());
        }
        if (cores >= 2) {
            try (Parallel one = new Parallel(1)) {
                try (Parallel.Competitor c = one.addCompetitor()) {
                    assertTrue(one.spinNanos() > 0, "1 pool thread + 1 competitor fit on " + cores + " cores");
                }
            }
        }
    }
}
