package dev.jmoe.experts.cache;


import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.MemoryBudget;
import dev.jmoe.experts.trace.RoutingTrace;
import dev.jmoe.model.Batch;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerHook;
import dev.jmoe.model.Model;
import dev.jmoe.model.Routing;
import dev.jmoe.model.RoutingHook;

/**
 * Puts a model's experts behind a memory budget for one {@link InferenceState}: opens the store, allocates
 * fast memory, builds the policy, and installs the offloaded source, the routing hook (scores for the policy,
 * substitution, optional trace) and the next-layer prefetcher. Hooks already installed on the state keep
 * running first. {@link #close()} puts the state back on the resident experts and frees everything.
 */
public final class OffloadRuntime implements AutoCloseable {
    private final InferenceState state;
    private final ExpertStore store;
    private final OffloadedExpertSource source;
    private final OffloadStats stats;
    private final OffloadConfig config;
    private final RoutingTrace trace;
    private final RoutingHook previousRouting;
    private final LayerHook previousLayer;
    private final AutoCloseable prefetcher;

    private OffloadRuntime(InferenceState state, ExpertStore store, OffloadedExpertSource source, OffloadStats stats, OffloadConfig config,
                           RoutingTrace trace, RoutingHook previousRouting, LayerHook previousLayer, AutoCloseable prefetcher) {
        this.prefetcher = prefetcher;
        this.state = state;
        this.store = store;
        this.source = source;
        this.stats = stats;
        this.config = config;
        this.trace = trace;
        this.previousRouting = previousRouting;
        this.previousLayer = previousLayer;
    }

    /** Installs offloading on {@code st}; {@code trace}, if not null, records every layer's routing. */
    public static OffloadRuntime install(InferenceState st, OffloadConfig cfg, RoutingTrace trace) {
        Model model = st.model();
        if (!model.spec().moe() || !model.hyperparams().hasExperts()) {
            throw new IllegalArgumentException("--expert-memory needs a mixture-of-experts model; this " + model.spec().name() + " model has no routed experts");
        }
        ExpertStore store = ExpertStore.open(cfg.store(), model);
        OffloadedExpertSource source = null;
        try {
            ExpertLayout layout = store.layout();
            SlotFormat format = SlotFormat.of(model, layout);
            long phase = store.slotPhase();
            OffloadStats stats = new OffloadStats();
            long requested;
            String planNote = null;
            if (dev.jmoe.memory.MemoryPlanner.isAuto(cfg.budget())) {
                // sized from what the memory limit leaves for this state's model and KV cache (the plan bin/jmoe sized the heap with)
                dev.jmoe.memory.MemoryPlan plan = dev.jmoe.memory.ModelMemory.autoPlan(model, st.kv().capacity());
                requested = plan.expertBudget();
                planNote = plan.explanation();
            } else {
                // A fraction of the experts resolves against their bytes in the form fast memory holds them (packed copies
                // where the model packs), so "1/4" keeps room for about a quarter of the experts whatever the format.
                requested = OffloadConfig.parseBudget(cfg.budget(), format.totalBytes());
            }
            String memoryPlan = planNote;
            stats.settings(s -> s.withPolicy(cfg.policy(), cfg.eviction(), cfg.alpha(), cfg.prefetch(), cfg.balance())
                    .withStore(store.name(), cfg.link().name(), cfg.link().slowCompute(), format.totalBytes(), store.note())
                    .withMemoryPlan(memoryPlan)
                    .withScheduling(cfg.prefetch() ? cfg.prefetchRule() : null, cfg.balance() ? cfg.split().name().toLowerCase(java.util.Locale.ROOT) : null,
                            cfg.balance() ? cfg.overlap() : null));
            // Clamped to what holds every expert in the form fast memory holds it (with a note), refused above what the
            // machine has: before allocating.
            MemoryBudget.Fit fit = MemoryBudget.fit(requested, cfg.budget(), layout, ExpertMemory.slotBytes(format, phase),
                    ExpertMemory.slotBytes(format, phase) + (cfg.loaderThreads() + 1L) * ExpertMemory.stagingBytes(format, phase) + Math.max(0, phase));
            long budget = fit.bytes();
            if (fit.note() != null) stats.settings(s -> s.withBudgetNote(fit.note()));
            ExpertMemory mem = memory(cfg, store, format, budget, phase, stats);
            // what the predictor (or the next-layer prefetch) names, for eviction policies that look ahead
            Predictions predictions = new Predictions(layout.layerCount(), layout.nExpert());
            EvictionPolicy policy;
            try {
                policy = EvictionPolicies.create(cfg.eviction(), new EvictionPolicy.Context(layout.layerCount(), layout.nExpert(), cfg.scoreWindow(), null,
                        predictions));
            } catch (RuntimeException e) {
                mem.close();
                throw e;
            }
            source = new OffloadedExpertSource(store, mem, cfg.link(), policy, stats,
                    new OffloadedExpertSource.Options(cfg.balance(), cfg.loaderThreads(), cfg.split(), cfg.overlap()), predictions);
            RoutingHook previousRouting = st.routingHook();
            LayerHook previousLayer = st.layerHook();
            Substitution substitution = cfg.alpha() > 0 ? new Substitution(cfg.alpha(), model.spec().renormTopK()) : null;
            st.setRoutingHook(new Hook(previousRouting, source, substitution, trace, model.hyperparams().nExpert()));
            // the cache's own next-layer prefetch, by the configured rule (decode steps only: a prompt batch uses most experts)
            AutoCloseable prefetcher = cfg.prefetch() ? PrefetchRules.REGISTRY.get(cfg.prefetchRule()).install(st, source, cfg) : null;
            st.setExperts(source);
            return new OffloadRuntime(st, store, source, stats, cfg, trace, previousRouting, previousLayer, prefetcher);
        } catch (RuntimeException | Error e) {
            if (source != null) source.close();
            store.close();
            throw e;
        }
    }

    /**
     * The fast memory for a cache: slots in {@code format}, less what is set aside within the budget. The slow side needs a
     * transient slot when it cannot compute from the store as it is (a store without an addressable copy, or experts held
     * packed: the slow side computes with the same kernels as every other expert, so it packs its expert too); with room
     * for fewer than two experts there is no slow side. Packing from a store without an addressable copy reads through a
     * staging buffer per loader thread (and one for the slow side).
     */
    static ExpertMemory memory(OffloadConfig cfg, ExpertStore store, SlotFormat format, long budget, long phase, OffloadStats stats) {
        ExpertLayout layout = store.layout();
        boolean inPlace = store.inPlace(firstMoeLayer(layout), 0) != null;
        boolean wantScratch = cfg.balance() && (!inPlace || format.packed());
        int loaderStaging = format.packed() && !inPlace ? cfg.loaderThreads() : 0;
        int scratchStaging = format.packed() && !inPlace ? 1 : 0;
        long slot = ExpertMemory.slotBytes(format, phase), staging = ExpertMemory.stagingBytes(format, phase);
        long transientWithScratch = slot + loaderStaging * staging + scratchStaging * staging + Math.max(0, phase);
        boolean scratch = wantScratch && budget - transientWithScratch >= slot;
        if (wantScratch && !scratch) stats.settings(s -> s.withBalanceNote("off: the budget holds fewer than two experts"));
        return new ExpertMemory(budget, format, scratch ? 1 : 0, loaderStaging + (scratch ? scratchStaging : 0), phase);
    }

    private static int firstMoeLayer(ExpertLayout layout) {
        int l = 0;
        while (!layout.hasExperts(l)) l++;
        return l;
    }

    public OffloadStats stats() { return stats; }
    public OffloadedExpertSource source() { return source; }
    public OffloadConfig config() { return config; }
    public ExpertStore store() { return store; }
    public RoutingTrace trace() { return trace; }

    @Override
    public void close() {
        if (prefetcher != null) {
            try {
                prefetcher.close();
            } catch (Exception e) {
                throw new IllegalStateException("removing the prefetch hooks failed", e);
            }
        }
        state.setExperts(state.model().residentExperts());
        state.setRoutingHook(previousRouting);
        state.setLayerHook(previousLayer);
        source.close();
        store.close();
    }

    /** The routing hook: policy scores, trace, then substitution (decode only). */
    private static final class Hook implements RoutingHook {
        private final RoutingHook previous;
        private final OffloadedExpertSource source;
        private final Substitution substitution;
        private final RoutingTrace trace;
        private final int nExpert;
        private int[] sel = new int[0], subSlots = new int[0];
        private float[] w = new float[0];

        Hook(RoutingHook previous, OffloadedExpertSource source, Substitution substitution, RoutingTrace trace, int nExpert) {
            this.previous = previous;
            this.source = source;
            this.substitution = substitution;
            this.trace = trace;
            this.nExpert = nExpert;
        }

        @Override
        public void onRouting(int layer, int pos, int n, float[] probs, Routing routing) {
            if (previous != null) previous.onRouting(layer, pos, n, probs, routing);
            source.onRouting(layer, n, probs);
            if (trace != null) trace.record(layer, n, probs, routing);
            if (substitution == null || n != 1) return;
            int k = routing.k();
            if (sel.length != k) {
                sel = new int[k];
                w = new float[k];
                subSlots = new int[k];
            }
            for (int j = 0; j < k; j++) {
                sel[j] = routing.expert(0, j);
                w[j] = routing.weight(0, j);
            }
            int subs = substitution.apply(probs, 0, nExpert, sel, w, k, e -> source.isResidentOrLoading(layer, e),
                    e -> source.isResident(layer, e), subSlots);
            if (subs == 0) return;
            boolean[] replaced = new boolean[k];
            for (int i = 0; i < subs; i++) {
                int j = subSlots[i];
                replaced[j] = true;
                routing.replace(0, j, sel[j], w[j]);
                source.markSubstituted(layer, sel[j]);
            }
            for (int j = 0; j < k; j++) if (!replaced[j]) routing.setWeight(0, j, w[j]);
        }

        /**
         * A step over several sequences: the policy scores every row of a decode step, and substitution runs in SMoE's
         * batch mode ({@link Substitution#applyBatch}: an expert is given up only when no row of the step still needs it).
         */
        @Override
        public void onBatchRouting(int layer, Batch batch, float[] probs, Routing routing) {
            if (previous != null) previous.onBatchRouting(layer, batch, probs, routing);
            int n = batch.rows();
            boolean decode = batch.decodeStep();
            source.onRouting(layer, n, decode, probs);
            if (trace != null && batch.sequences() == 1) trace.record(layer, n, probs, routing);
            if (substitution == null || !decode) return;
            int k = routing.k();
            int[] selected = new int[n * k], done = new int[n * k];
            float[] weights = new float[n * k];
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < k; j++) {
                    selected[t * k + j] = routing.expert(t, j);
                    weights[t * k + j] = routing.weight(t, j);
                }
            }
            int subs = substitution.applyBatch(probs, nExpert, n, selected, weights, k, e -> source.isResidentOrLoading(layer, e),
                    e -> source.isResident(layer, e), done);
            if (subs == 0) return;
            boolean[] touched = new boolean[n], replaced = new boolean[n * k];
            for (int i = 0; i < subs; i++) {
                int p = done[i], t = p / k, j = p % k;
                replaced[p] = true;
                touched[t] = true;
                routing.replace(t, j, selected[p], weights[p]);
                source.markSubstituted(layer, selected[p]);
            }
            for (int t = 0; t < n; t++) {
                if (!touched[t]) continue;
                for (int j = 0; j < k; j++) if (!replaced[t * k + j]) routing.setWeight(t, j, weights[t * k + j]);
            }
        }
    }
}
