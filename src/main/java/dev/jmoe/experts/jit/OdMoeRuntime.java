package dev.jmoe.experts.jit;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.cache.ExpertMemory;
import dev.jmoe.experts.cache.SlotFormat;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.MemoryBudget;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.PredictorHooks;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;

/**
 * {@code --policy odmoe} on one node: a {@link JustInTimeExpertSource} fed by an {@link ExpertPredictor}
 * {@code lookahead} layers ahead. Installs the source and the predictor's hooks on a state; {@link #close}
 * puts the state back on its resident experts and frees everything (the predictor included).
 */
public final class OdMoeRuntime implements AutoCloseable {
    private final InferenceState state;
    private final ExpertStore store;
    private final JustInTimeExpertSource source;
    private final PredictorHooks hooks;

    private OdMoeRuntime(InferenceState state, ExpertStore store, JustInTimeExpertSource source, PredictorHooks hooks) {
        this.state = state;
        this.store = store;
        this.source = source;
        this.hooks = hooks;
    }

    /**
     * @param budget    fast memory: bytes or a fraction of the expert bytes ({@link OffloadConfig#parseBudget}); null for the
     *                  working set of k experts × (lookahead + 1) layers
     * @param predictor closed with the runtime
     */
    public static OdMoeRuntime install(InferenceState st, ExpertPredictor predictor, int lookahead, String storeKind, Link link, String budget,
                                       int loaderThreads) {
        return install(st, predictor, lookahead, st.model().hyperparams().nExpertUsed(), storeKind, link, budget, loaderThreads);
    }

    /** Like the other, asking the predictor for up to {@code width} experts per predicted layer (more than k: see ShadowPredictor#withMargin). */
    public static OdMoeRuntime install(InferenceState st, ExpertPredictor predictor, int lookahead, int width, String storeKind, Link link,
                                       String budget, int loaderThreads) {
        Model model = st.model();
        if (!model.spec().moe() || !model.hyperparams().hasExperts()) {
            predictor.close();
            throw new IllegalArgumentException("--policy odmoe needs a mixture-of-experts model; this " + model.spec().name() + " model has no routed experts");
        }
        ExpertStore store = null;
        JustInTimeExpertSource source = null;
        try {
            store = ExpertStore.open(storeKind, model);
            ExpertLayout layout = store.layout();
            SlotFormat format = SlotFormat.of(model, layout);
            int first = 0;
            while (!layout.hasExperts(first)) first++;
            int staging = format.packed() && store.inPlace(first, 0) == null ? loaderThreads : 0;
            long requested = budget != null ? OffloadConfig.parseBudget(budget, format.totalBytes())
                    : format.slotBytes() * model.hyperparams().nExpertUsed() * (lookahead + 1L) + staging * format.stagingBytes();
            // Clamped to what holds every expert (with a note), refused above what the machine has: before allocating.
            MemoryBudget.Fit fit = MemoryBudget.fit(requested, budget != null ? budget : requested + " bytes", layout, format.slotBytes(),
                    staging * format.stagingBytes());
            long bytes = fit.bytes();
            if (fit.note() != null) System.err.println("jmoe: note: " + fit.note());
            OffloadStats stats = new OffloadStats();
            ExpertStore opened = store;
            stats.settings(s -> s.withPolicy("odmoe", null, null, null, null).withPredictor(predictor.name(), lookahead)
                    .withStore(opened.name(), link.name(), link.slowCompute(), format.totalBytes(), opened.note()));
            source = new JustInTimeExpertSource(store, new ExpertMemory(bytes, format, 0, staging), link, stats, loaderThreads);
            PredictorHooks hooks = new PredictorHooks(st, predictor, lookahead, width, source);
            st.setExperts(source);
            return new OdMoeRuntime(st, store, source, hooks);
        } catch (RuntimeException | Error e) {
            if (source != null) source.close();
            if (store != null) store.close();
            predictor.close();
            throw e;
        }
    }

    public JustInTimeExpertSource source() { return source; }
    public OffloadStats stats() { return source.stats(); }
    public ExpertPredictor predictor() { return hooks.predictor(); }

    @Override
    public void close() {
        state.setExperts(state.model().residentExperts());
        hooks.close();
        source.close();
        store.close();
    }
}
