package dev.jmoe.experts.trace;

import dev.jmoe.experts.cache.Predictions;

/**
 * What drives a look-ahead eviction policy in a replay: before each trace step it moves the policy's view of the future to
 * that step and writes what it predicts for the coming steps, as a live predictor does through the cache before each layer.
 */
public interface ReplayPredictor {
    /** At trace step {@code i}: moves {@code view}'s clock to {@code i} and writes the predictions made there. */
    void announce(int i, Predictions view);
}
