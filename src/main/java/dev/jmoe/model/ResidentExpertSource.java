package dev.jmoe.model;

import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.PackedMatrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.Parallel;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Every expert used straight from the model's (memory-mapped) tensors: the fully resident case. With
 * packing on, an expert's Q4_0, Q4_K and Q6_K matrices are regrouped for the integer kernels ({@link PackedMatrix}) the first
 * time it is used, so a run that offloads experts instead, or never routes to some, pays nothing for them.
 */
public final class ResidentExpertSource implements ExpertSource {
    private final AtomicReferenceArray<ExpertWeights>[] experts;
    private final List<StackedExperts> layers;
    private final AtomicLong packedBytes = new AtomicLong();

    /** {@code layers.get(l)} is layer l's experts, or null for a layer without experts. */
    public ResidentExpertSource(List<StackedExperts> layers) {
        this(layers, false);
    }

    /** As above; with {@code pack}, packs each expert's packable matrices on first use. */
    @SuppressWarnings("unchecked")
    public ResidentExpertSource(List<StackedExperts> layers, boolean pack) {
        this.layers = new java.util.ArrayList<>(layers); // may hold nulls
        experts = new AtomicReferenceArray[layers.size()];
        for (int l = 0; l < layers.size(); l++) {
            StackedExperts stacked = layers.get(l);
            if (stacked == null) continue;
            experts[l] = new AtomicReferenceArray<>(stacked.nExpert());
            if (!pack) {
                for (int e = 0; e < stacked.nExpert(); e++) experts[l].set(e, stacked.expert(e));
            }
        }
    }

    /** Packs the announced experts not packed yet, their rows split over {@code pool}. */
    @Override
    public void willUse(int layer, int[] used, Parallel pool) {
        for (int e : used) {
            if (experts[layer].get(e) == null) packExpert(layer, e, pool);
        }
    }

    /** Always: every expert is in memory (packing, if any, happened in {@link #willUse}). */
    @Override
    public boolean allReady(int layer, int[] experts) {
        return true;
    }

    @Override
    public ExpertWeights acquire(int layer, int expert) {
        ExpertWeights w = experts[layer].get(expert);
        if (w == null) w = packExpert(layer, expert, null);
        return w;
    }

    /** Bytes of packed expert copies made so far. */
    public long packedBytes() {
        return packedBytes.get();
    }

    private synchronized ExpertWeights packExpert(int layer, int expert, Parallel pool) {
        ExpertWeights w = experts[layer].get(expert);
        if (w != null) return w;
        ExpertWeights plain = layers.get(layer).expert(expert);
        w = new ExpertWeights(layer, expert, packed(plain.gate(), pool), packed(plain.up(), pool), packed(plain.down(), pool));
        experts[layer].set(expert, w);
        return w;
    }

    private Matrix packed(Matrix m, Parallel pool) {
        if (!Packing.canPack(m)) return m;
        PackedMatrix p = Packing.packIfRoom(m, pool);
        if (p == null) return m;
        packedBytes.addAndGet(p.byteSize());
        return m.withPacked(p);
    }
}
