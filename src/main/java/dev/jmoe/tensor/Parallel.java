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
    private static final long SPIN_NANOS = Tuning.intSetting("jmoe.parallel.spinMicros", 200, 0) * 1000L;

    private final int threads;
    /**
     * Chunks per thread a range is cut into. More chunks than threads let a thread that runs ahead take work
     * from one that is slowed down (a descheduled vCPU, a sibling hyperthread busy with something else), at the
     * price of one atomic increment per chunk. A profile of decode on 2 vCPUs showed the threads waiting for each
     * other about a fifth of the time with one chunk per thread. Once a decode step's experts became one large
     * dispatch, 8 and 16 chunks per thread measured about 5% faster Q4_0 decode than 4 (ratios to llama.cpp in the
     * same rounds, three runs each: 0.62/0.58/0.66 with 4, 0.64/0.72/0.64 with 8, 0.66/0.64/0.70 with 16). A decode
     * step's sets of products now ask for fewer per call ({@code MatVecSet.CHUNKS_PER_THREAD}), measured faster since;
     * what is left here is mostly prompt batches, whose units (a layer's experts, each with its own tokens) differ in
     * cost: with 16 rather than 8, Mixtral-like Q4_K_M {@code --int8-activations} prompts measured 0.81–0.83× → 0.88×
     * llama.cpp in three batches of alternated runs (AMD EPYC, 2026-12-07 08:34–08:56 UTC), Q4_0 ones perhaps 3% lower
     * (in two of three), the other rows level (docs/speed.md, session 35).
     */
    private static final int CHUNKS_PER_THREAD = Tuning.intSetting("jmoe.parallel.chunksPerThread", 16, 1);
    private final int chunksPerThread;
    /** Threads outside the pool that need CPU while it runs (a shadow model's thread); see {@link #addCompetitor}. */
    private final AtomicInteger competitors = new AtomicInteger();
    /** Spin before parking: SPIN_NANOS, or 0 while pool and competitors oversubscribe the cores. */
    private volatile long spinNanos = SPIN_NANOS;
    private final Worker[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();

    /**
     * The latest dispatch: workers run chunks of it. Each dispatch has its own claim and done counters, so a worker
     * still leaving one dispatch (it claims past the end and stops) can never take, or count, a chunk of the next.
     * Shared counters reset per dispatch once let such a worker compare an old claim with the new chunk count and
     * count one chunk too many, and the caller then waited forever.
     */
    private volatile Job current;
    private volatile boolean closed;
    private volatile Thread waiter;

    /** One range split into chunks; a new one per dispatch, published by the volatile write of {@link #current}. */
    private static final class Job {
        volatile RangeTask task; // cleared when the dispatch returns: only claims past the end can still come
        final int n, grain, chunks;
        /** 0: equal chunks; else guided chunks, each this share (1/threads) of the grains still unclaimed. */
        final int guidedThreads;
        final AtomicInteger nextChunk = new AtomicInteger(), done = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(RangeTask task, int n, int grain, int chunks) {
            this(task, n, grain, chunks, 0);
        }

        private Job(RangeTask task, int n, int grain, int chunks, int guidedThreads) {
            this.task = task;
            this.n = n;
            this.grain = grain;
            this.chunks = chunks;
            this.guidedThreads = guidedThreads;
        }

        /** A job of guided chunks over {@code threads}: the first 1/threads of the grains, then 1/threads of the rest, ... one grain at least. */
        static Job guided(RangeTask task, int n, int grain, int threads) {
            int grains = (n + grain - 1) / grain, chunks = 0;
            for (int left = grains; left > 0; left -= guidedChunk(left, threads)) chunks++;
            return new Job(task, n, grain, chunks, threads);
        }

        private static int guidedChunk(int left, int threads) {
            return Math.max(1, left / threads);
        }

        void runChunk(int index) {
            int grains = (n + grain - 1) / grain, g0, g1;
            if (guidedThreads == 0) {
                g0 = (int) ((long) grains * index / chunks);
                g1 = (int) ((long) grains * (index + 1) / chunks);
            } else {
                g0 = 0;
                for (int c = 0; c < index; c++) g0 += guidedChunk(grains - g0, guidedThreads);
                g1 = g0 + guidedChunk(grains - g0, guidedThreads);
            }
            int start = (int) Math.min((long) g0 * grain, n);
            int end = (int) Math.min((long) g1 * grain, n);
            if (start < end) task.run(start, end);
        }
    }

    public Parallel(int threads) {
        this(threads, CHUNKS_PER_THREAD);
    }

    /** A pool cutting each range into {@code chunksPerThread} chunks per thread (benchmarks compare settings). */
    Parallel(int threads, int chunksPerThread) {
        if (threads < 1) throw new IllegalArgumentException("a pool needs at least 1 thread, got " + threads);
        if (chunksPerThread < 1) throw new IllegalArgumentException("chunks per thread must be >= 1, got " + chunksPerThread);
        this.threads = threads;
        this.chunksPerThread = chunksPerThread;
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

    /**
     * {@link #forRange(int, int, RangeTask)} in guided chunks, claimed in order: the first takes 1/threads of the
     * range, each next one 1/threads of what is left, down to one grain. The first thread to start streams one long
     * contiguous run, the next ones runs that follow each other, and the small chunks at the end even out the finish.
     */
    public void forRangeGuided(int n, int grain, RangeTask task) {
        split(n, grain, 0, task);
    }

    /** Splits [0, n) into contiguous chunks (multiples of {@code grain} where possible) and runs them on all threads; returns when all are done. */
    public void forRange(int n, int grain, RangeTask task) {
        forRange(n, grain, chunksPerThread, task);
    }

    /**
     * {@link #forRange(int, int, RangeTask)} cut into {@code chunksPerThread} chunks per thread instead of the pool's
     * setting: a caller whose ranges are short streams through memory (a decode step's products) may want fewer.
     */
    public void forRange(int n, int grain, int chunksPerThread, RangeTask task) {
        if (chunksPerThread < 1) throw new IllegalArgumentException("chunks per thread must be >= 1, got " + chunksPerThread);
        split(n, grain, chunksPerThread, task);
    }

    /** [0, n) in {@code chunksPerThread} equal chunks per thread, or guided ones for 0. */
    private void split(int n, int grain, int chunksPerThread, RangeTask task) {
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
        Job job = chunksPerThread == 0 ? Job.guided(task, n, grain, threads)
                : new Job(task, n, grain, (int) Math.min((n + (long) grain - 1) / grain, (long) threads * chunksPerThread));
        try {
            dispatch(job);
        } finally {
            job.task = null; // the pool keeps the last job: it must not keep what the task holds
            busy.set(false);
        }
    }

    private void dispatch(Job job) {
        current = job;
        for (Worker w : workers) {
            // A worker sets parked before re-reading current, so either it sees the new job or we see parked.
            if (w.parked) LockSupport.unpark(w);
        }
        runChunks(job);
        awaitChunks(job);
        Throwable t = job.failure.get();
        if (t != null) {
            if (t instanceof RuntimeException re) throw re;
            if (t instanceof Error e) throw e;
            throw new RuntimeException("parallel task failed", t);
        }
    }

    /** Claims and runs chunks of the job until none are left. */
    private void runChunks(Job job) {
        int c;
        while ((c = job.nextChunk.getAndIncrement()) < job.chunks) {
            try {
                job.runChunk(c);
            } catch (Throwable t) {
                job.failure.compareAndSet(null, t);
            } finally {
                if (job.done.incrementAndGet() == job.chunks) {
                    Thread w = waiter;
                    if (w != null) LockSupport.unpark(w);
                }
            }
        }
    }

    /** Waits for chunks that workers claimed and are still running. */
    private void awaitChunks(Job job) {
        if (job.done.get() == job.chunks) return;
        long t0 = System.nanoTime();
        while (job.done.get() != job.chunks) {
            if (System.nanoTime() - t0 < spinNanos) {
                Thread.onSpinWait();
            } else {
                waiter = Thread.currentThread();
                if (job.done.get() != job.chunks) LockSupport.parkNanos(this, 100_000L);
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
            Job seen = null; // none yet: a dispatch made before this thread ran must not be missed
            while (true) {
                Job job = current;
                if (job == seen) {
                    long t0 = System.nanoTime();
                    while ((job = current) == seen && !closed) {
                        if (System.nanoTime() - t0 < spinNanos) {
                            Thread.onSpinWait();
                        } else {
                            parked = true;
                            if (current == seen && !closed) LockSupport.park(Parallel.this);
                            parked = false;
                        }
                    }
                    if (job == seen) return; // closed while idle
                }
                seen = job;
                runChunks(job);
            }
        }
    }
}
