package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.model.ExpertSource;
import dev.jmoe.model.ExpertWeights;
import dev.jmoe.experts.OffloadStats.Counter;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Experts served from a bounded fast memory ({@link ExpertMemory}) in front of a slower {@link ExpertStore},
 * with loads running on loader threads through a {@link Link}.
 *
 * <p>Per MoE layer: {@link #willUse} pins the experts already resident (hits) or arriving (prefetches in
 * flight), decides for each miss whether to load it or — decode only, with balancing on — compute it straight
 * from the store (the slow side), and queues the loads. Demand loads always go before prefetches; queued
 * prefetches that the layer they were meant for has passed are cancelled. {@link #order} then lets the forward
 * pass compute hits first, slow-side misses next and loaded experts last, so compute overlaps the loads.
 *
 * <p>Slots are granted to demand loads strictly in compute order (a FIFO): with fewer slots than a layer's
 * experts, a later expert can never hold the slot an earlier one is waiting for, so the pass streams experts
 * through the slots without deadlock. A slot is pinned from {@code willUse} until {@code release}; only
 * resident, unpinned slots are eviction candidates, and prefetches never evict an expert another prefetch
 * brought in that has not been used yet.
 *
 * <p>One compute thread calls willUse/acquire/release (the forward pass); loader threads and prefetchers may
 * call in concurrently. All cache state is guarded by one lock.
 */
public final class OffloadedExpertSource extends ExpertSlots implements Residency {
    private static final byte NONE = 0, HIT = 1, INFLIGHT = 2, LOAD = 3, SLOW = 4;

    /**
     * Runtime switches. {@code balance}: decide load vs slow-side compute per decode miss from measured costs;
     * {@code split}: in which order misses are assigned ({@link Balancer}); {@code overlap}: the slow side computes on its
     * own thread while the forward pass computes the other experts (else the pass computes them after the hits).
     */
    public record Options(boolean balance, int loaderThreads, Split split, boolean overlap) {
        public Options {
            if (loaderThreads < 1) throw new IllegalArgumentException("loader threads must be at least 1, got " + loaderThreads);
            if (split == null) throw new IllegalArgumentException("the balance split is required");
        }

        /** SMoE's split and overlap. */
        public Options(boolean balance, int loaderThreads) {
            this(balance, loaderThreads, Split.SCORE, true);
        }
    }

    /** How decode misses are split between loading and the slow side ({@link Balancer}). */
    public enum Split {
        /** SMoE: misses by router score, two pointers (best loaded, worst computed on the slow side). */
        SCORE,
        /** Each miss in expert-id order to the side that ends the layer sooner then (jmoe's first balancer). */
        ID
    }

    private final EvictionPolicy policy;
    private final Options options;
    private final Predictions predictions; // guarded by lock

    // key state (guarded by lock)
    private final boolean[] substituted;

    // queues (guarded by lock)
    private record Task(int key, int layer, int slot, boolean prefetch, int phase) {}
    private final ArrayDeque<Task> demands = new ArrayDeque<>();
    private final ArrayDeque<Task> prefetches = new ArrayDeque<>();
    private final ArrayDeque<Integer> waitingForSlot = new ArrayDeque<>();
    private boolean prefetchStalled; // the head prefetch found no slot; cleared when slots change
    private final int[][] deferred; // per target layer: a prefetch request waiting for the pass to get near it

    // compute-thread state
    private final byte[] mode;
    private final long[] acquiredAt;
    private int[] order = new int[0];
    private int[] aside = new int[0];
    private int readyCount;
    private final float[] scores;           // the current decode layer's router probabilities
    private final Split split;
    private final boolean overlap;
    private java.util.concurrent.ExecutorService slowSide; // the overlapped slow side's thread, made on first use
    private volatile int phase = OffloadStats.PREFILL;
    private final boolean storeAddressable;
    private final boolean balance;
    private volatile int lastLayer = -1;
    private final int[] candidates;

    // measured costs (compute thread writes compute costs; loaders write load costs), in nanoseconds
    private volatile double loadNanos, fastComputeNanos, readNanos;

    public OffloadedExpertSource(ExpertStore store, ExpertMemory mem, Link link, EvictionPolicy policy, OffloadStats stats, Options options) {
        this(store, mem, link, policy, stats, options, null);
    }

    /**
     * As above, writing the predictions it receives ({@link #prefetch(int, int, int[], int)}) and the pass's progress
     * ({@link #at}) into {@code predictions}, the view a predictive eviction policy made for this cache reads (null: a
     * view of its own).
     */
    public OffloadedExpertSource(ExpertStore store, ExpertMemory mem, Link link, EvictionPolicy policy, OffloadStats stats, Options options,
                                 Predictions predictions) {
        super(store, mem, link, stats, options == null ? 1 : options.loaderThreads());
        if (policy == null || options == null) throw new IllegalArgumentException("policy and options are required");
        this.predictions = predictions != null ? predictions : new Predictions(layout.layerCount(), layout.nExpert());
        this.policy = policy;
        this.options = options;
        int n = mem.slots();
        candidates = new int[n];
        deferred = new int[layout.layerCount()][];
        int keys = layout.layerCount() * nExpert;
        substituted = new boolean[keys];
        mode = new byte[keys];
        scores = new float[nExpert];
        split = options.split();
        overlap = options.overlap();
        acquiredAt = new long[keys];
        int first = 0;
        while (!layout.hasExperts(first)) first++;
        storeAddressable = store.inPlace(first, 0) != null;
        // Computing from a store without an addressable copy needs a transient buffer out of the budget.
        balance = options.balance() && ((storeAddressable && !format.packed()) || mem.scratchSlots() > 0);
        long bytes = layout.maxExpertBytes();
        loadNanos = link.throttled() ? link.nanosFor(bytes) : bytes / 4.0; // until measured: ~4 GB/s
        readNanos = bytes / 4.0;
        fastComputeNanos = bytes / 8.0;  // until measured: ~8 GB/s of weights per second of compute
        stats.settings(s -> s.withTransientSlots(mem.scratchSlots()));
        startLoaders("jmoe-expert-loader");
    }

    public EvictionPolicy policy() { return policy; }


    // ------------------------------------------------------------------ hooks from the runtime

    /** The routing of a layer is known (called by the runtime's routing hook before substitution). */
    public void onRouting(int layer, int n, float[] probs) {
        onRouting(layer, n, n == 1, probs);
    }

    /**
     * The routing of a layer over {@code n} rows is known; {@code decode}: each row is one sequence's decode token (a
     * step of several sequences), so the step counts as decode and the policy hears every row's scores.
     */
    public void onRouting(int layer, int n, boolean decode, float[] probs) {
        phase = decode ? OffloadStats.DECODE : OffloadStats.PREFILL;
        if (decode) {
            // the score order of this layer's misses (compute thread): a row's own scores, or over a step of several
            // sequences each expert's best score in any row (a miss matters as much as the row that wants it most)
            System.arraycopy(probs, 0, scores, 0, nExpert);
            for (int t = 1; t < n; t++) {
                for (int x = 0; x < nExpert; x++) scores[x] = Math.max(scores[x], probs[t * nExpert + x]);
            }
            lock.lock();
            try {
                for (int t = 0; t < n; t++) policy.onScores(layer, probs, t * nExpert, nExpert);
            } finally {
                lock.unlock();
            }
        }
    }

    /** Substitution chose this resident expert for the current layer: its use counts as a substitution hit. */
    public void markSubstituted(int layer, int expert) {
        substituted[key(layer, expert)] = true;
    }

    @Override
    public boolean isResident(int layer, int expert) {
        lock.lock();
        try {
            return ready(key(layer, expert));
        } finally {
            lock.unlock();
        }
    }

    /** Whether the expert is resident or already on its way (substitution leaves these alone). */
    public boolean isResidentOrLoading(int layer, int expert) {
        lock.lock();
        try {
            return slotOf[key(layer, expert)] >= 0;
        } finally {
            lock.unlock();
        }
    }

    /** The pass is at ({@code pos}, {@code layer}): the predictions' clock moves there. */
    public void at(int pos, int layer) {
        lock.lock();
        try {
            predictions.advance(dev.jmoe.experts.predict.Lookahead.step(pos, layer, nLayer));
        } finally {
            lock.unlock();
        }
    }

    /**
     * A prediction that layer {@code layer} of position {@code pos} will use these experts: recorded for eviction
     * ({@link Predictions}), then asked for as a prefetch ({@link #prefetch(int, int[], int)}).
     */
    public void prefetch(int pos, int layer, int[] experts, int count) {
        if (closed || count <= 0) return;
        lock.lock();
        try {
            if (layer >= 0 && layer < nLayer) predictions.predict(dev.jmoe.experts.predict.Lookahead.step(pos, layer, nLayer), layer, experts, count);
        } finally {
            lock.unlock();
        }
        prefetch(layer, experts, count);
    }

    /**
     * A prediction too far ahead to load now (beyond a token's worth of layers): recorded for eviction only, so a
     * predictive policy keeps what the token after next is predicted to use.
     */
    public void foresee(int pos, int layer, int[] experts, int count) {
        if (closed || count <= 0 || layer < 0 || layer >= nLayer) return;
        lock.lock();
        try {
            predictions.predict(dev.jmoe.experts.predict.Lookahead.step(pos, layer, nLayer), layer, experts, count);
        } finally {
            lock.unlock();
        }
    }

    /** The view of predictions this cache keeps (tests). */
    Predictions predictions() { return predictions; }

    /**
     * Asks for these experts of a coming layer to be loaded ahead of time, most wanted first. Prefetches never
     * delay demand loads; a request waits until the layer before the pass's next one has queued its demands (the
     * layer hook that predicts runs before that layer's routing), then is queued nearest layer first. A request
     * for a layer the pass has already passed is for the next token and waits for that token's first layer.
     * A newer request for the same layer replaces an older waiting one.
     */
    public void prefetch(int layer, int[] experts, int count) {
        if (closed || count <= 0) return;
        if (layer < 0 || layer >= deferred.length || !layout.hasExperts(layer)) {
            throw new IllegalArgumentException("cannot prefetch layer " + layer + ": it has no routed experts");
        }
        lock.lock(); // predictors may call from their own thread
        try {
            if (layer != lastLayer + 1) {
                // The forward pass has not yet reached willUse(layer - 1): hold the request until it has.
                deferred[layer] = Arrays.copyOf(experts, count);
                return;
            }
        } finally {
            lock.unlock();
        }
        enqueuePrefetch(layer, experts, count);
    }

    private void enqueuePrefetch(int layer, int[] experts, int count) {
        lock.lock();
        try {
            for (int i = 0; i < count; i++) {
                int k = key(layer, experts[i]);
                if (slotOf[k] >= 0 || queued(k)) continue;
                prefetches.addLast(new Task(k, layer, -1, true, phase));
                stats.inc(phase, Counter.PREFETCHES_ISSUED);
            }
            slotsChanged();
        } finally {
            lock.unlock();
        }
    }

    private boolean queued(int k) {
        for (Task t : prefetches) if (t.key() == k) return true;
        return false;
    }

    // ------------------------------------------------------------------ ExpertSource

    @Override
    public void willUse(int layer, int[] experts) {
        checkOpen();
        int ph = phase;
        boolean decode = ph == OffloadStats.DECODE;
        lock.lock();
        try {
            cancelStale(layer, experts);
            int hits = 0, inflight = 0, loads = 0, slows = 0, misses = 0;
            double c = fastComputeNanos, l = loadNanos;
            double s = link.link().slowCompute() * c + (storeAddressable && !format.packs(layer) ? 0 : readNanos);
            int[] hitList = new int[experts.length], slowList = new int[experts.length], inflightList = new int[experts.length];
            int[] loadList = new int[experts.length], missList = new int[experts.length];
            for (int e : experts) {
                int k = key(layer, e);
                int slot = slotOf[k];
                if (slot >= 0) {
                    pins[slot]++;
                    boolean wasPrefetched = prefetchedUnused[slot];
                    prefetchedUnused[slot] = false;
                    if (slotState[slot] == READY) {
                        mode[k] = HIT;
                        hitList[hits++] = e;
                        policy.onAccess(k);
                    } else {
                        mode[k] = INFLIGHT;
                        inflightList[inflight++] = e;
                    }
                    if (substituted[k]) stats.inc(ph, Counter.SUBSTITUTIONS);
                    else if (wasPrefetched) stats.inc(ph, Counter.PREFETCH_HITS);
                    else if (slotState[slot] == READY) stats.inc(ph, Counter.EXACT_HITS);
                    else stats.inc(ph, Counter.PREFETCH_HITS); // a load in flight for this layer is a prefetch's
                    substituted[k] = false;
                    continue;
                }
                substituted[k] = false;
                if (split == Split.ID) {
                    // A miss: load it, or (decode, balancing on) compute it from the store if that ends the layer sooner, deciding
                    // in expert-id order with the hits and loads counted so far.
                    boolean slow = balance && decode && Balancer.slowSide(hits, slows, inflight, loads, c, s, l, overlap);
                    if (slow) slowList[slows++] = e;
                    else loadList[loads++] = e;
                } else {
                    missList[misses++] = e;
                }
            }
            if (split == Split.SCORE && misses > 0) {
                // SMoE's two-pointer split over the misses by router score: the best are loaded, the worst computed aside
                int[] byScore = sortByScore(missList, misses, decode);
                int load = balance && decode ? Balancer.scoreSplit(hits, inflight, misses, c, s, l, overlap) : misses;
                for (int i = 0; i < misses; i++) {
                    if (i < load) loadList[loads++] = byScore[i];
                    else slowList[slows++] = byScore[i];
                }
            }
            for (int i = 0; i < slows; i++) {
                mode[key(layer, slowList[i])] = SLOW;
                stats.inc(ph, Counter.MISSES_COMPUTED);
            }
            for (int i = 0; i < loads; i++) {
                int k = key(layer, loadList[i]);
                mode[k] = LOAD;
                stats.inc(ph, Counter.MISSES_LOADED);
                waitingForSlot.addLast(k); // slots go to loads in compute order
            }
            grantWaiting(ph);
            stats.inc(ph, Counter.LAYERS);
            int n = 0;
            if (order.length != experts.length) order = new int[experts.length];
            for (int i = 0; i < hits; i++) order[n++] = hitList[i];
            for (int i = 0; i < slows; i++) order[n++] = slowList[i];
            for (int i = 0; i < inflight; i++) order[n++] = inflightList[i];
            for (int i = 0; i < loads; i++) order[n++] = loadList[i];
            aside = overlap && slows > 0 ? java.util.Arrays.copyOf(slowList, slows) : NO_EXPERTS;
            readyCount = hits;
            lastLayer = layer; // demands are queued: prefetches for the next layer may follow them now
            slotsChanged();
        } finally {
            lock.unlock();
        }
        int[][] ready = new int[deferred.length][];
        lock.lock();
        try {
            deferred[layer] = null; // this layer is running: its requests are stale
            for (int l = layer + 1; l < deferred.length; l++) {
                ready[l] = deferred[l];
                deferred[l] = null;
            }
        } finally {
            lock.unlock();
        }
        for (int l = layer + 1; l < ready.length; l++) if (ready[l] != null) enqueuePrefetch(l, ready[l], ready[l].length);
    }

    /** The misses best router score first (decode; a prompt batch keeps the given order, loads only). */
    private int[] sortByScore(int[] misses, int count, boolean decode) {
        Integer[] boxed = new Integer[count];
        for (int i = 0; i < count; i++) boxed[i] = misses[i];
        if (decode) java.util.Arrays.sort(boxed, (a, b) -> Float.compare(scores[b], scores[a]));
        int[] out = new int[count];
        for (int i = 0; i < count; i++) out[i] = boxed[i];
        return out;
    }

    /** The slow-side experts of the layer just announced, when the slow side runs on its own thread (else none). */
    @Override
    public int[] aside(int layer) {
        return aside;
    }

    /** The hits of the layer just announced: {@link #order} puts them first. */
    @Override
    public int readyCount(int layer) {
        return readyCount;
    }

    /** Runs the slow side's work on its own thread (one expert at a time, as a device of its own would). */
    @Override
    public java.util.concurrent.Future<?> runAside(Runnable work) {
        checkOpen();
        synchronized (this) {
            if (slowSide == null) {
                slowSide = java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().name("jmoe-slow-side").unstarted(r));
            }
            return slowSide.submit(work);
        }
    }

    @Override
    public int[] order(int layer, int[] experts) {
        return order.length == experts.length ? order : experts;
    }

    /** Queued prefetches for layers the pass has reached are stale and dropped (a wanted one is then loaded as a demand miss). */
    private void cancelStale(int layer, int[] experts) {
        for (Iterator<Task> it = prefetches.iterator(); it.hasNext(); ) {
            Task t = it.next();
            if (t.layer() <= layer) {
                it.remove();
                stats.inc(phase, Counter.PREFETCHES_CANCELLED);
            }
        }
        // Prefetched experts of this layer that routing did not pick were wasted; they lose their protection.
        for (int s = 0; s < slotKey.length; s++) {
            if (prefetchedUnused[s] && slotKey[s] / nExpert == layer && !contains(experts, slotKey[s] % nExpert)) {
                prefetchedUnused[s] = false;
                prefetchStalled = false;
                stats.inc(phase, Counter.PREFETCHES_WASTED);
            }
        }
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }

    /** Gives free or evictable slots to waiting demand loads, oldest first (guarded by lock). */
    private void grantWaiting(int ph) {
        while (!waitingForSlot.isEmpty()) {
            int slot = findSlot(false);
            if (slot < 0) return;
            int k = waitingForSlot.pollFirst();
            occupy(slot, k, false);
            pins[slot] = 1;
            demands.addLast(new Task(k, k / nExpert, slot, false, ph));
        }
    }

    /** A free slot, or one freed by evicting the policy's victim among resident unpinned experts; -1 if none. */
    private int findSlot(boolean forPrefetch) {
        int n = 0;
        for (int s = 0; s < slotKey.length; s++) {
            if (slotState[s] == FREE) return s;
            if (slotState[s] == READY && pins[s] == 0 && !(forPrefetch && prefetchedUnused[s])) candidates[n++] = slotKey[s];
        }
        if (n == 0) return -1;
        int victim = policy.victim(candidates, n);
        int s = slotOf[victim];
        if (s < 0 || slotState[s] != READY || pins[s] != 0) throw new IllegalStateException("eviction policy " + policy.name() + " chose " + victim + ", not a candidate");
        if (prefetchedUnused[s]) stats.inc(phase, Counter.PREFETCHES_WASTED);
        free(s);
        stats.inc(phase, Counter.EVICTIONS);
        return s;
    }

    @Override
    protected void occupied(int slot, int key, boolean prefetch) {
        policy.onInsert(key);
    }

    @Override
    protected void freed(int slot, int key) {
        policy.onRemove(key);
        prefetchStalled = false;
    }

    @Override
    public ExpertWeights acquire(int layer, int expert) {
        checkOpen();
        int k = key(layer, expert);
        byte m = mode[k];
        if (m == NONE) throw new IllegalStateException("expert " + layer + "/" + expert + " acquired without willUse");
        if (m == SLOW) {
            ExpertWeights w = slowSideWeights(layer, expert);
            acquiredAt[k] = System.nanoTime();
            return w;
        }
        int slot;
        lock.lock();
        try {
            slot = awaitReady(layer, expert, phase);
            if (m != HIT) policy.onAccess(k);
        } finally {
            lock.unlock();
        }
        acquiredAt[k] = System.nanoTime();
        return view(layer, expert, slot);
    }

    @Override
    public void release(ExpertWeights w) {
        int k = key(w.layer(), w.expert());
        byte m = mode[k];
        mode[k] = NONE;
        long compute = System.nanoTime() - acquiredAt[k];
        if (m == SLOW) {
            // Emulated slow side: the same cores computed it, so stretch it to the slow side's speed.
            long extra = (long) ((link.link().slowCompute() - 1) * compute);
            if (extra > 0) Link.waitUntil(System.nanoTime() + extra);
            stats.add(phase, Counter.SLOW_COMPUTE_NANOS, compute + extra);
            return;
        }
        if (phase == OffloadStats.DECODE) fastComputeNanos = ema(fastComputeNanos, compute);
        lock.lock();
        try {
            int s = slotOf[k];
            if (s < 0 || pins[s] <= 0) throw new IllegalStateException("expert " + w.layer() + "/" + w.expert() + " released but not pinned");
            if (--pins[s] == 0) {
                grantWaiting(phase);
                slotsChanged();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * A slow-side expert's weights: straight from the store where it keeps an addressable copy in the form the kernels
     * take; else in the transient slot, read through the link when the store must be read (direct I/O), and packed when
     * the model packs experts (the slow side multiplies with the same kernels as every other expert, so its results are
     * the same bits; the packing is this emulation's cost, not counted as slow-side compute).
     */
    private ExpertWeights slowSideWeights(int layer, int expert) {
        ExpertWeights w = store.inPlace(layer, expert);
        if (w != null && !format.packs(layer)) return w;
        if (mem.scratchSlots() < 1) throw new IllegalStateException("slow-side compute from the " + store.name() + " store needs a scratch slot");
        ExpertMemory.Slot scratch = mem.scratchSlot(0);
        if (w == null) {
            // The store has no addressable copy (direct I/O): computing from it still pays the read, through the link.
            lock.lock();
            try {
                stats.residentBytes(occupiedBytes() + format.expertBytes(layer)); // the transient copy is expert memory too
            } finally {
                lock.unlock();
            }
            long t0 = System.nanoTime();
            link.transfer(layout.expertBytes(layer), () -> format.load(store, layer, expert, scratch, mem.staging(loaderCount())));
            readNanos = ema(readNanos, System.nanoTime() - t0);
            stats.add(phase, Counter.BYTES_MOVED, layout.expertBytes(layer));
        } else {
            format.load(store, layer, expert, scratch, null);
        }
        return format.view(layer, expert, scratch);
    }

    private static double ema(double old, double sample) {
        return old * 0.8 + sample * 0.2;
    }

    // ------------------------------------------------------------------ loaders

    @Override
    protected void loadFailed(int key) {
        mode[key] = NONE;
    }

    /**
     * The next load to run: demands first; a prefetch only when no demand waits for a slot and a slot can be had.
     * A prefetch that finds every slot pinned (or holding another unused prefetch) stays queued until a slot
     * comes free or its layer arrives and cancels it.
     */
    @Override
    protected Load nextLoad() {
        Task d = demands.pollFirst();
        if (d != null) return new Load(d.key(), d.slot(), false, d.phase());
        while (!prefetches.isEmpty() && waitingForSlot.isEmpty()) {
            Task p = prefetches.peekFirst();
            if (slotOf[p.key()] >= 0) {
                prefetches.pollFirst();
                continue;
            }
            int s = findSlot(true);
            if (s < 0) {
                prefetchStalled = true;
                changed.signalAll();
                return null;
            }
            prefetches.pollFirst();
            occupy(s, p.key(), true);
            return new Load(p.key(), s, true, phase);
        }
        return null;
    }

    /** Something may have made a slot available to prefetches: let the loaders look again (guarded by lock). */
    private void slotsChanged() {
        prefetchStalled = false;
        changed.signalAll();
    }

    @Override
    protected void loaded(Load l, long nanos) {
        loadNanos = ema(loadNanos, nanos);
        if (pins[l.slot()] == 0) grantWaiting(l.phase());
        prefetchStalled = false;
    }

    /** Whether queued prefetches are waiting because every slot they could take is pinned (tests). */
    boolean prefetchStalled() {
        lock.lock();
        try {
            return prefetchStalled;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            // work that never started is cancelled, so a pass waiting for it is told instead of waiting forever
            if (slowSide != null) for (Runnable r : slowSide.shutdownNow()) if (r instanceof java.util.concurrent.Future<?> f) f.cancel(false);
        }
        super.close();
    }

    @Override
    protected boolean idle() {
        return demands.isEmpty() && (prefetches.isEmpty() || prefetchStalled) && !anyLoading();
    }
}
