package dev.jmoe.experts.cache;

import dev.jmoe.experts.predict.PrefetchSink;

/**
 * Feeds predictions to the caching runtime ({@link OffloadedExpertSource}, e.g. {@code --policy smoe} or
 * {@code exact-smoe}) in place of its built-in next-layer gate: each predicted layer's experts become a prefetch
 * request that the source queues once the pass is one layer before it (see {@link OffloadedExpertSource#prefetch}).
 * The source caches by layer; the predicted position dates the prediction for a predictive eviction policy.
 */
public final class OffloadedSourceSink implements PrefetchSink {
    private final OffloadedExpertSource source;

    public OffloadedSourceSink(OffloadedExpertSource source) {
        if (source == null) throw new IllegalArgumentException("source is required");
        this.source = source;
    }

    @Override
    public void at(int pos, int layer, int n) {
        source.at(pos, layer);
    }

    @Override
    public void prefetch(int pos, int layer, int[] experts, int count, int distance) {
        source.prefetch(pos, layer, experts, count);
    }

    @Override
    public void foresee(int pos, int layer, int[] experts, int count, int distance) {
        source.foresee(pos, layer, experts, count);
    }
}
