/**
 * Fast memory for experts and what decides its contents. {@link dev.jmoe.experts.cache.ExpertSlots} is the core every
 * bounded source shares (fixed slots, pins, loader threads, waiting for an expert); SMoE's caching source
 * {@link dev.jmoe.experts.cache.OffloadedExpertSource} adds an {@link dev.jmoe.experts.cache.EvictionPolicy} (registered in
 * {@link dev.jmoe.experts.cache.EvictionPolicies}), prefetches, and the slow side chosen by the
 * {@link dev.jmoe.experts.cache.Balancer}; {@link dev.jmoe.experts.cache.Substitution} is SMoE's replacement of low-score
 * misses; {@link dev.jmoe.experts.cache.OffloadRuntime} builds it all from an {@link dev.jmoe.experts.cache.OffloadConfig}
 * and installs it on an inference state, with next-layer prefetch as an ordinary predictor.
 */
package dev.jmoe.experts.cache;
