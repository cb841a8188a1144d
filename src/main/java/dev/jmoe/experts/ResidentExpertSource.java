package dev.jmoe.experts;

import java.util.List;

/** Every expert used straight from the model's (memory-mapped) tensors: the fully resident case. */
public final class ResidentExpertSource implements ExpertSource {
    private final ExpertWeights[][] experts;

    /** {@code layers.get(l)} is layer l's experts, or null for a layer without experts. */
    public ResidentExpertSource(List<StackedExperts> layers) {
        experts = new ExpertWeights[layers.size()][];
        for (int l = 0; l < layers.size(); l++) {
            StackedExperts stacked = layers.get(l);
            if (stacked == null) continue;
            experts[l] = new ExpertWeights[stacked.nExpert()];
            for (int e = 0; e < stacked.nExpert(); e++) experts[l][e] = stacked.expert(e);
        }
    }

    @Override
    public ExpertWeights acquire(int layer, int expert) {
        return experts[layer][expert];
    }
}
