package dev.jmoe.experts.jit;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.cache.ExpertMemory;
import dev.jmoe.experts.cache.ExpertSlots;
import dev.jmoe.model.ExpertSource;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.model.ExpertWeights;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.predict.Lookahead;
import dev.jmoe.experts.predict.PrefetchSink;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * OD-MoE's cacheless mode on one node: fast memory is only a small working set (by default the router's k
 * experts for each of the lookahead + 1 layers in flight). Each predicted expert is loaded just in time for the
 * layer step it is predicted for, and an expert leaves fast memory as soon as its layer has used it unless a
 * prediction wants it again later. A wrong prediction is corrected by the real router: the missing expert is
 * loaded on demand and the layer waits for it, so the output is exactly the resident model's.
 *
 * <p>Steps are (position, layer) in pass order ({@link Lookahead#step}); the main pass reports where it is through
 * {@link #at} (from {@link dev.jmoe.experts.predict.PredictorHooks}) before each layer's routing. Slots: a slot is
 * pinned from {@link #willUse} to {@link #release}; a prediction marks the slot with the latest step it is wanted
 * for. Loads run on loader threads through a {@link Link.Channel}: demands first, in compute order (so streaming a
 * prompt's many experts through few slots cannot deadlock); then prefetches, nearest step first, each taking a free
 * slot or the one wanted furthest in the future (never one wanted sooner than itself); none starts while a demand
 * waits for a slot. Prefetches for steps the pass has reached are dropped.
 */
public final class JustInTimeExpertSource extends ExpertSlots implements PrefetchSink {
    // slots (guarded by lock)
    private final long[] slotWanted;        // latest step a prediction or use wants the slot's expert at

    // requests (guarded by lock)
    private record Prefetch(int key, long step) {}
    private final ArrayDeque<Integer> demands = new ArrayDeque<>();           // keys waiting for a slot, compute order
    private final ArrayDeque<Prefetch> prefetches = new ArrayDeque<>();

    // pass position (written by the compute thread under lock, read by loaders under lock)
    private long now = -1;
    private int phase = OffloadStats.PREFILL;
    private int[] order = new int[0];

    public JustInTimeExpertSource(ExpertStore store, ExpertMemory mem, Link link, OffloadStats stats, int loaderThreads) {
        super(store, mem, link, stats, loaderThreads);
        slotWanted = new long[mem.slots()];
        startLoaders("jmoe-jit-loader");
    }

    // ------------------------------------------------------------------ PrefetchSink (compute thread)

    @Override
    public void at(int pos, int layer, int n) {
        lock.lock();
        try {
            now = Lookahead.step(pos, layer, nLayer);
            phase = n == 1 ? OffloadStats.DECODE : OffloadStats.PREFILL;
            // prefetches for steps the pass has reached are of no use any more
            prefetches.removeIf(p -> {
                boolean stale = p.step() < now;
                if (stale) stats.inc(phase, Counter.PREFETCHES_CANCELLED);
                return stale;
            });
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void prefetch(int pos, int layer, int[] experts, int count, int distance) {
        if (closed || !layout.hasExperts(layer)) return;
        long step = Lookahead.step(pos, layer, nLayer);
        lock.lock();
        try {
            if (step <= now) return;
            // A fresher prediction for this step replaces older ones: experts it no longer names lose their claim
            // (queued loads are dropped; loaded ones become evictable), so they cannot keep the right ones out.
            for (int s = 0; s < slotKey.length; s++) {
                if (prefetchedUnused[s] && slotWanted[s] == step && slotKey[s] / nExpert == layer && !names(experts, count, slotKey[s] % nExpert)) {
                    slotWanted[s] = -1;
                }
            }
            prefetches.removeIf(p -> {
                boolean dropped = p.step() == step && !names(experts, count, p.key() % nExpert);
                if (dropped) stats.inc(phase, Counter.PREFETCHES_CANCELLED);
                return dropped;
            });
            for (int i = 0; i < count; i++) {
                int k = key(layer, experts[i]);
                int s = slotOf[k];
                if (s >= 0) {
                    slotWanted[s] = Math.max(slotWanted[s], step);
                    continue;
                }
                if (queued(k) || demands.contains(k)) continue;
                prefetches.addLast(new Prefetch(k, step));
                stats.inc(phase, Counter.PREFETCHES_ISSUED);
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private static boolean names(int[] experts, int count, int e) {
        for (int i = 0; i < count; i++) if (experts[i] == e) return true;
        return false;
    }

    private boolean queued(int k) {
        for (Prefetch p : prefetches) if (p.key() == k) return true;
        return false;
    }

    // ------------------------------------------------------------------ ExpertSource (compute thread)

    @Override
    public void willUse(int layer, int[] experts) {
        checkOpen();
        lock.lock();
        try {
            int[] ready = new int[experts.length], loading = new int[experts.length], missing = new int[experts.length];
            int nr = 0, nl = 0, nm = 0;
            for (int e : experts) {
                int k = key(layer, e);
                int s = slotOf[k];
                if (s >= 0) {
                    pins[s]++;
                    stats.inc(phase, prefetchedUnused[s] ? Counter.PREFETCH_HITS : Counter.EXACT_HITS);
                    prefetchedUnused[s] = false;
                    if (slotState[s] == READY) ready[nr++] = e;
                    else loading[nl++] = e;
                } else {
                    stats.inc(phase, Counter.MISSES_LOADED);
                    prefetches.removeIf(p -> p.key() == k); // it is a demand now
                    demands.addLast(k);
                    missing[nm++] = e;
                }
            }
            // this layer's predicted experts that the router did not pick were loaded in vain: free them now
            for (int s = 0; s < slotKey.length; s++) {
                if (prefetchedUnused[s] && slotKey[s] / nExpert == layer && slotWanted[s] <= now && pins[s] == 0 && slotState[s] == READY) {
                    stats.inc(phase, Counter.PREFETCHES_WASTED);
                    free(s);
                }
            }
            stats.inc(phase, Counter.LAYERS);
            if (order.length != experts.length) order = new int[experts.length];
            System.arraycopy(ready, 0, order, 0, nr);
            System.arraycopy(loading, 0, order, nr, nl);
            System.arraycopy(missing, 0, order, nr + nl, nm);
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public int[] order(int layer, int[] experts) {
        return order.length == experts.length ? order : experts;
    }

    @Override
    public ExpertWeights acquire(int layer, int expert) {
        checkOpen();
        int s;
        lock.lock();
        try {
            s = awaitReady(layer, expert, phase);
            slotWanted[s] = Math.max(slotWanted[s], now);
        } finally {
            lock.unlock();
        }
        return view(layer, expert, s);
    }

    @Override
    public void release(ExpertWeights w) {
        int k = key(w.layer(), w.expert());
        lock.lock();
        try {
            int s = slotOf[k];
            if (s < 0 || pins[s] <= 0) throw new IllegalStateException("expert " + w.layer() + "/" + w.expert() + " released but not pinned");
            // Evict right after use, unless a prediction wants this expert at a later step.
            if (--pins[s] == 0 && slotWanted[s] <= now) free(s);
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override
    protected void occupied(int slot, int key, boolean prefetch) {
        slotWanted[slot] = prefetch ? slotWanted[slot] : now;
    }

    @Override
    protected void freed(int slot, int key) {
        slotWanted[slot] = -1;
        stats.inc(phase, Counter.EVICTIONS);
    }

    // ------------------------------------------------------------------ loaders

    /** The next load (guarded by lock): the oldest demand if a slot can be had; else the nearest useful prefetch. */
    @Override
    protected Load nextLoad() {
        if (!demands.isEmpty()) {
            int s = slotFor(Long.MAX_VALUE);
            if (s < 0) return null; // wait for the pass to release a slot; no prefetch may take it meanwhile
            int k = demands.pollFirst();
            occupy(s, k, false);
            pins[s]++; // the pass pinned it in willUse (it had no slot then)
            return new Load(k, s, false, phase);
        }
        prefetches.removeIf(p -> slotOf[p.key()] >= 0);
        Prefetch best = null;
        for (Prefetch p : prefetches) if (best == null || p.step() < best.step()) best = p;
        if (best == null) return null;
        int s = slotFor(best.step());
        if (s < 0) return null;
        prefetches.remove(best);
        occupy(s, best.key(), true);
        slotWanted[s] = best.step();
        return new Load(best.key(), s, true, phase);
    }

    /**
     * A slot for a load wanted at {@code step}: a free one; else one whose expert nobody wants any more (predicted
     * for a step already passed, or revoked); else the unpinned expert wanted furthest in the future, provided that
     * is later than {@code step} (a demand, at MAX_VALUE, may take any unpinned one). −1 if none.
     */
    private int slotFor(long step) {
        int victim = -1;
        for (int s = 0; s < slotKey.length; s++) {
            if (slotState[s] == FREE) return s;
            if (slotState[s] != READY || pins[s] != 0) continue;
            if (slotWanted[s] < now) { // (wanted at the current step: the layer about to run has not routed yet)
                if (prefetchedUnused[s]) stats.inc(phase, Counter.PREFETCHES_WASTED);
                free(s);
                return s;
            }
            if (victim < 0 || slotWanted[s] > slotWanted[victim]) victim = s;
        }
        if (victim < 0) return -1;
        if (step != Long.MAX_VALUE && slotWanted[victim] <= step) return -1;
        if (prefetchedUnused[victim]) stats.inc(phase, Counter.PREFETCHES_WASTED);
        free(victim);
        return victim;
    }

    @Override
    protected boolean idle() {
        return demands.isEmpty() && loadsRunning() == 0 && (prefetches.isEmpty() || !nextTaskPossible());
    }

    private boolean nextTaskPossible() {
        for (Prefetch p : prefetches) {
            for (int s = 0; s < slotKey.length; s++) {
                if (slotState[s] == FREE || (slotState[s] == READY && pins[s] == 0 && slotWanted[s] > p.step())) return true;
            }
        }
        return false;
    }
}
