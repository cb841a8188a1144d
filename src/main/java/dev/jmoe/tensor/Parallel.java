package dev.jmoe.tensor;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads for splitting one operation over ranges, with low dispatch latency
 * (decode runs about a hundred small products per token, so a fork/join per product would dominate).
 *
 * <p>{@code threads} counts the calling thread: a pool of N starts N-1 daemon workers. The range is cut
 * into a few chunks per thread which the caller and the workers claim from a shared counter, so a worker
 * that is slow to wake (parked, or descheduled on a busy machine) costs nothing: the others take its chunks.
 * Idle workers spin for a short while (products come back to back during a decode step) and then park,
 * so an idle pool costs no CPU. A call made while the pool is already busy (a nested call from inside a
 * task, or a second thread using the same pool) runs inline on its caller instead of disturbing the
 * running dispatch.
 */
public final class Parallel implements AutoCloseable {
    /** Work over the half-open range [start, end). */
    @FunctionalInterface
    public interface RangeTask { void run(int start, int end); }

    /** How long an idle worker (or the waiting caller) spins before parking; tunable for shared machines. */
    private static final long SPIN_NANOS =
            Long.getLong("jmoe.parallel.spinMicros", 200L) * 1000L;

    private final int threads;
    /**
     * Chunks per thread a range is cut into. More chunks than threads let a thread that runs ahead take work
     * from one that is slowed down (a descheduled vCPU, a sibling hyperthread busy with something else), at the
     * price of one atomic increment per chunk. A profile of decode on 2 vCPUs showed the threads waiting for each
     * other about a fifth of the time with one chunk per thread. Once a decode step's experts became one large
     * dispatch, 8 and 16 chunks per thread measured about 5% faster Q4_0 decode than 4 (ratios to llama.cpp in the
     * same rounds, three runs each: 0.62/0.58/0.66 with 4, 0.64/0.72/0.64 with 8, 0.66/0.64/0.70 with 16).
     */
    private static final int CHUNKS_PER_THREAD = Integer.getInteger("jmoe.parallel.chunksPerThread", 8);
    private final int chunksPerThread;
    /** Threads outside the pool that need CPU while it runs (a shadow model's thread); see {@link #addCompetitor}. */
    private final AtomicInteger competitors = new AtomicInteger();
    /** Spin before parking: SPIN_NANOS, or 0 while pool and competitors oversubscribe the cores. */
    private volatile long spinNanos = SPIN_NANOS;
    private final Worker[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();

    // Dispatch state: written by the caller before the volatile epoch increment publishes it.
    private RangeTask task;
    private int n;
    private int grain;
    private int chunks;
    private volatile int epoch;
    private volatile boolean closed;

    private final AtomicInteger nextChunk = new AtomicInteger();
    private final AtomicInteger done = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile Thread waiter;

    public Parallel(int threads) {
        this(threads, CHUNKS_PER_THREAD);
    }

    /** A pool cutting each range into {@code chunksPerThread} chunks per thread (benchmarks compare settings). */
    Parallel(int threads, int chunksPerThread) {
        if (threads < 1) throw new IllegalArgumentException("a pool needs at least 1 thread, got " + threads);
        if (chunksPerThread < 1) throw new IllegalArgumentException("chunks per thread must be >= 1, got " + chunksPerThread);
        this.threads = threads;
        this.chunksPerThread = chunksPerThread;
        this.nextChunk.set(Integer.MAX_VALUE / 2); // nothing to claim before the first dispatch
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    public int threads() { return threads; }

    /**
     * Registers a busy thread that shares the cores with this pool (a shadow model running ahead). While the pool's
     * threads and such competitors outnumber the cores, idle workers park at once instead of spinning: a spinning
     * worker holds a core the competitor needs (measured on 2 cores with a shadow: the shadow answered 70% of the
     * predictions in time with spinning workers, 97-99% without). Returns the registration to close when done.
     */
    public Competitor addCompetitor() {
        competitors.incrementAndGet();
        updateSpin();
        return new Competitor();
    }

    /** One registration of {@link #addCompetitor}; closing it (once counts) lets idle threads spin again. */
    public final class Competitor implements AutoCloseable {
        private final AtomicBoolean open = new AtomicBoolean(true);

        private Competitor() {}

        @Override
        public void close() {
            if (open.getAndSet(false)) {
                competitors.decrementAndGet();
                updateSpin();
            }
        }
    }

    /** How long idle threads spin before parking now, in nanoseconds. */
    long spinNanos() { return spinNanos; }

    private void updateSpin() {
        int cores = Runtime.getRuntime().availableProcessors();
        spinNanos = threads + competitors.get() > cores ? 0 : SPIN_NANOS;
    }

    /** Splits [0, n) into contiguous chunks (multiples of {@code grain} where possible) and runs them on all threads; returns when all are done. */
    public void forRange(int n, int grain, RangeTask task) {
        if (n < 0) throw new IllegalArgumentException("range length must be >= 0, got " + n);
        if (grain < 1) throw new IllegalArgumentException("grain must be >= 1, got " + grain);
        if (task == null) throw new IllegalArgumentException("task is required");
        if (closed) throw new IllegalStateException("this Parallel pool has been closed");
        if (n == 0) return;
        // Nothing to split, or the pool is in use: do it all here. This also makes nested calls safe.
        if (workers.length == 0 || n <= grain || !busy.compareAndSet(false, true)) {
            task.run(0, n);
            return;
        }
        try {
            dispatch(n, grain, task);
        } finally {
            this.task = null;
            busy.set(false);
        }
    }

    private void dispatch(int n, int grain, RangeTask task) {
        this.task = task;
        this.n = n;
        this.grain = grain;
        this.chunks = (int) Math.min((n + (long) grain - 1) / grain, (long) threads * chunksPerThread);
        failure.set(null);
        done.set(0);
        nextChunk.set(0); // opens the chunks; the writes above happen-before any claim
        epoch = epoch + 1;
        for (Worker w : workers) {
            // A worker sets parked before re-reading epoch, so either it sees the new epoch or we see parked.
            if (w.parked) LockSupport.unpark(w);
        }
        runChunks();
        awaitChunks();
        Throwable t = failure.getAndSet(null);
        if (t != null) {
            if (t instanceof RuntimeException re) throw re;
            if (t instanceof Error e) throw e;
            throw new RuntimeException("parallel task failed", t);
        }
    }

    /** Claims and runs chunks until none are left. */
    private void runChunks() {
        int c;
        while ((c = nextChunk.getAndIncrement()) < chunks) {
            try {
                runChunk(c);
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                if (done.incrementAndGet() == chunks) {
                    Thread w = waiter;
                    if (w != null) LockSupport.unpark(w);
                }
            }
        }
    }

    private void runChunk(int index) {
        int grains = (n + grain - 1) / grain;
        int g0 = (int) ((long) grains * index / chunks);
        int g1 = (int) ((long) grains * (index + 1) / chunks);
        int start = (int) Math.min((long) g0 * grain, n);
        int end = (int) Math.min((long) g1 * grain, n);
        if (start < end) task.run(start, end);
    }

    /** Waits for chunks that workers claimed and are still running. */
    private void awaitChunks() {
        if (done.get() == chunks) return;
        long t0 = System.nanoTime();
        while (done.get() != chunks) {
            if (System.nanoTime() - t0 < spinNanos) {
                Thread.onSpinWait();
            } else {
                waiter = Thread.currentThread();
                if (done.get() != chunks) LockSupport.parkNanos(this, 100_000L);
                waiter = null;
            }
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        volatile boolean parked;

        Worker(int index) {
            super("jmoe-parallel-" + index);
            setDaemon(true);
        }

        @Override
        public void run() {
            int seen = 0; // the pool's initial epoch: a dispatch made before this thread ran must not be missed
            while (true) {
                int e = epoch;
                if (e == seen) {
                    long t0 = System.nanoTime();
                    while ((e = epoch) == seen && !closed) {
                        if (System.nanoTime() - t0 < spinNanos) {
                            Thread.onSpinWait();
                        } else {
                            parked = true;
                            if (epoch == seen && !closed) LockSupport.park(Parallel.this);
                            parked = false;
                        }
                    }
                    if (e == seen) return; // closed while idle
                }
                seen = e;
                runChunks();
            }
        }
    }
}
