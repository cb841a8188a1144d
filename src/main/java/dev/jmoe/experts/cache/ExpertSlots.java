package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.model.ExpertSource;
import dev.jmoe.model.ExpertWeights;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The machinery every expert source with a bounded fast memory shares: a table of fixed slots ({@link ExpertMemory})
 * saying which expert each holds, whether it is loading or ready and how many computations pin it; loader threads that
 * move experts from the {@link ExpertStore} through a {@link Link} into slots; and the wait of a computation for its
 * expert. What differs between sources is policy: which load runs next and which slot it takes
 * ({@link #nextLoad()}), what happens when a slot fills or empties, and when an expert leaves. The caching source
 * ({@link OffloadedExpertSource}: an eviction policy, prefetches, the slow side) and OD-MoE's just-in-time source
 * ({@code JustInTimeExpertSource}: a working set, evicted after use) are both subclasses.
 *
 * <p>All slot state is guarded by {@link #lock}; subclasses call the protected methods holding it. A subclass starts
 * the loaders ({@link #startLoaders}) at the end of its constructor, once its own state exists.
 */
public abstract class ExpertSlots implements ExpertSource {
    protected static final byte FREE = 0, LOADING = 1, READY = 2;

    protected final ExpertStore store;
    protected final ExpertLayout layout;
    /** The form experts take in the slots: the file's bytes, or packed copies where the model packs (exactness). */
    protected final SlotFormat format;
    protected final ExpertMemory mem;
    protected final Link.Channel link;
    protected final OffloadStats stats;
    protected final int nExpert, nLayer;

    protected final ReentrantLock lock = new ReentrantLock();
    protected final Condition changed = lock.newCondition();

    // slot state (guarded by lock)
    protected final int[] slotKey;            // slot -> key, -1 when free
    protected final byte[] slotState;
    protected final int[] pins;               // computations holding the slot
    protected final boolean[] prefetchedUnused; // brought in by a prediction that no computation has used yet
    // key state (guarded by lock)
    protected final int[] slotOf;             // key -> slot, -1 when not in fast memory
    private final RuntimeException[] failure; // a load of the key failed; told to the computation waiting for it
    private long residentBytes;
    private int loadsRunning;

    private final Thread[] loaders;
    protected volatile boolean closed;

    /** One load: a key into a slot already occupied for it, asked for by a prediction or by a computation. */
    public record Load(int key, int slot, boolean prefetch, int phase) {}

    protected ExpertSlots(ExpertStore store, ExpertMemory mem, Link link, OffloadStats stats, int loaderThreads) {
        if (store == null || mem == null || link == null || stats == null) throw new IllegalArgumentException("store, memory, link and stats are required");
        if (loaderThreads < 1) throw new IllegalArgumentException("loader threads must be at least 1, got " + loaderThreads);
        this.store = store;
        this.layout = store.layout();
        this.mem = mem;
        this.link = new Link.Channel(link);
        this.stats = stats;
        this.nExpert = layout.nExpert();
        this.nLayer = layout.layerCount();
        this.format = mem.format() != null ? mem.format() : SlotFormat.fileLayout(layout);
        if (format.layout() != layout && format.layout().totalBytes() != layout.totalBytes()) {
            throw new IllegalArgumentException("the fast memory's slot format was made for another model's experts");
        }
        if (mem.format() == null && mem.slotBytes() < layout.maxExpertBytes()) {
            throw new IllegalArgumentException("slots of " + mem.slotBytes() + " bytes cannot hold experts of " + layout.maxExpertBytes());
        }
        if (format.packed() && mem.stagingBuffers() < loaderThreads && store.inPlace(firstLayer(layout), 0) == null) {
            throw new IllegalArgumentException("packing experts from the " + store.name() + " store needs a staging buffer per loader thread");
        }
        int n = mem.slots();
        slotKey = new int[n];
        Arrays.fill(slotKey, -1);
        slotState = new byte[n];
        pins = new int[n];
        prefetchedUnused = new boolean[n];
        slotOf = new int[nLayer * nExpert];
        Arrays.fill(slotOf, -1);
        failure = new RuntimeException[nLayer * nExpert];
        loaders = new Thread[loaderThreads];
        stats.memory(mem.budgetBytes(), n, mem.slotBytes());
    }

    /** Starts the loader threads (named {@code name-i}); call once the subclass's own state is set up. */
    protected final void startLoaders(String name) {
        for (int i = 0; i < loaders.length; i++) {
            int index = i;
            loaders[i] = Thread.ofPlatform().daemon().name(name + "-" + i).start(() -> loaderLoop(index));
        }
    }

    public OffloadStats stats() { return stats; }
    public Link.Channel link() { return link; }
    public ExpertMemory memory() { return mem; }
    public int nExpert() { return nExpert; }

    protected final int key(int layer, int expert) { return layer * nExpert + expert; }

    /** Loader threads (the staging buffers past theirs belong to the slow side). */
    protected final int loaderCount() { return loaders.length; }

    // ---------------------------------------------------------------- policy (subclasses, under lock)

    /** The next load to run, its slot already occupied ({@link #occupy}); null when there is none now. Under lock. */
    protected abstract Load nextLoad();

    /** A load finished and its slot is ready (counted already). Under lock. */
    protected void loaded(Load load, long nanos) {}

    /** A key now occupies a slot (loading). Under lock. */
    protected void occupied(int slot, int key, boolean prefetch) {}

    /** A key left its slot. Under lock. */
    protected void freed(int slot, int key) {}

    // ---------------------------------------------------------------- slot table (under lock)

    /** Puts {@code key} into free slot {@code s}, loading. */
    protected final void occupy(int s, int key, boolean prefetch) {
        slotKey[s] = key;
        slotOf[key] = s;
        slotState[s] = LOADING;
        prefetchedUnused[s] = prefetch;
        failure[key] = null;
        residentBytes += format.expertBytes(key / nExpert);
        stats.residentBytes(residentBytes);
        occupied(s, key, prefetch);
    }

    /** Empties slot {@code s}. */
    protected final void free(int s) {
        int k = slotKey[s];
        slotOf[k] = -1;
        slotKey[s] = -1;
        slotState[s] = FREE;
        prefetchedUnused[s] = false;
        residentBytes -= format.expertBytes(k / nExpert);
        freed(s, k);
    }

    /** Whether {@code key} is ready in fast memory. */
    protected final boolean ready(int key) {
        int s = slotOf[key];
        return s >= 0 && slotState[s] == READY;
    }

    /**
     * Waits until {@code (layer, expert)} is ready in its slot and returns the slot; a failed load ends the wait with
     * its error, closing or dying loaders with theirs. Time spent waiting counts as a stall of {@code phase}. Under lock.
     */
    protected final int awaitReady(int layer, int expert, int phase) {
        int k = key(layer, expert);
        int s = slotOf[k];
        if (s >= 0 && slotState[s] == READY) return s;
        long t0 = System.nanoTime();
        try {
            while ((s = slotOf[k]) < 0 || slotState[s] != READY) {
                if (failure[k] != null) {
                    RuntimeException f = failure[k];
                    failure[k] = null;
                    loadFailed(k);
                    throw new IllegalStateException("loading expert " + layer + "/" + expert + " from the " + store.name() + " store failed: "
                            + f.getMessage(), f);
                }
                checkOpen();
                if (!changed.await(1, TimeUnit.SECONDS) && !loadersAlive()) {
                    throw new IllegalStateException("expert loader threads died while expert " + layer + "/" + expert + " was awaited");
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for expert " + layer + "/" + expert);
        }
        stats.add(phase, Counter.STALL_NANOS, System.nanoTime() - t0);
        return s;
    }

    /** The computation waiting for {@code key} was told its load failed (subclasses reset their per-key state). Under lock. */
    protected void loadFailed(int key) {}

    /** The weights in slot {@code s} for (layer, expert). */
    protected final ExpertWeights view(int layer, int expert, int s) {
        return format.view(layer, expert, mem.memory(s));
    }

    static int firstLayer(ExpertLayout layout) {
        int l = 0;
        while (!layout.hasExperts(l)) l++;
        return l;
    }

    // ---------------------------------------------------------------- loaders

    private void loaderLoop(int index) {
        while (true) {
            Load l;
            lock.lock();
            try {
                while (true) {
                    if (closed) return;
                    l = nextLoad();
                    if (l != null) break;
                    changed.awaitUninterruptibly();
                }
                loadsRunning++;
            } finally {
                lock.unlock();
            }
            run(l, index);
        }
    }

    private void run(Load l, int loader) {
        int layer = l.key() / nExpert, expert = l.key() % nExpert;
        long bytes = layout.expertBytes(layer);
        long t0 = System.nanoTime();
        RuntimeException error = null;
        try {
            // the link carries the file's bytes; packing (if any) happens on this side, inside the transfer's time
            link.transfer(bytes, () -> format.load(store, layer, expert, mem.memory(l.slot()), mem.staging(loader)));
        } catch (RuntimeException e) {
            error = e;
        }
        long took = System.nanoTime() - t0;
        lock.lock();
        try {
            loadsRunning--;
            if (error != null) {
                failure[l.key()] = error;
                pins[l.slot()] = 0;
                free(l.slot());
            } else {
                slotState[l.slot()] = READY;
                stats.inc(l.phase(), Counter.LOADS);
                stats.add(l.phase(), Counter.BYTES_MOVED, bytes);
                loaded(l, took);
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Bytes of experts resident or loading now (under lock). */
    protected final long occupiedBytes() { return residentBytes; }

    /** Loads running now (under lock). */
    protected final int loadsRunning() { return loadsRunning; }

    /** Whether some slot is loading (under lock). */
    protected final boolean anyLoading() {
        for (byte b : slotState) if (b == LOADING) return true;
        return false;
    }

    protected final boolean loadersAlive() {
        for (Thread t : loaders) if (t != null && t.isAlive()) return true;
        return false;
    }

    protected final void checkOpen() {
        if (closed) throw new IllegalStateException("the expert source is closed");
    }

    // ---------------------------------------------------------------- reports

    /** Keys (layer·nExpert + expert) ready in fast memory now, sorted (tests and reports). */
    public int[] residentKeys() {
        lock.lock();
        try {
            return Arrays.stream(slotKey).filter(k -> k >= 0).filter(k -> slotState[slotOf[k]] == READY).sorted().toArray();
        } finally {
            lock.unlock();
        }
    }

    /** Keys ready or on their way into fast memory now, sorted. */
    public int[] occupiedKeys() {
        lock.lock();
        try {
            return Arrays.stream(slotKey).filter(k -> k >= 0).sorted().toArray();
        } finally {
            lock.unlock();
        }
    }

    /** Bytes of experts resident or loading now. */
    public long residentBytes() {
        lock.lock();
        try {
            return residentBytes;
        } finally {
            lock.unlock();
        }
    }

    /** Whether nothing more will be loaded on its own now (under lock): subclasses add their queued work. */
    protected abstract boolean idle();

    /** Waits until no load is queued or running (tests, measuring commands). */
    public void awaitIdle() {
        lock.lock();
        try {
            while (!closed && !idle()) {
                if (!changed.await(1, TimeUnit.SECONDS) && !loadersAlive()) throw new IllegalStateException("expert loader threads died");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
    }

    /** Stops the loaders (a load in flight finishes first) and frees the fast memory. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Thread t : loaders) {
            if (t == null) continue;
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        mem.close();
    }
}
