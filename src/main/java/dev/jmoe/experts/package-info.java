/**
 * Where routed experts come from, and how they are kept within a memory budget. The forward pass reaches experts only
 * through {@link dev.jmoe.model.ExpertSource}; this package provides the sources that hold fewer experts than the
 * model has, grouped by concern:
 * <ul>
 *   <li>{@link dev.jmoe.experts.store} — the slow tier holding every expert ({@code direct} O_DIRECT reads, {@code host},
 *       {@code mmap}; {@link dev.jmoe.experts.store.ExpertStores}) and the emulated {@link dev.jmoe.experts.store.Link}
 *       to fast memory (presets in {@code Link.PRESETS});</li>
 *   <li>{@link dev.jmoe.experts.cache} — {@link dev.jmoe.experts.cache.ExpertSlots}, the slot table and loader core
 *       every bounded source shares; SMoE's caching source {@link dev.jmoe.experts.cache.OffloadedExpertSource}, the
 *       eviction policies ({@link dev.jmoe.experts.cache.EvictionPolicies}), substitution, load/compute balancing and
 *       {@link dev.jmoe.experts.cache.OffloadRuntime}, which installs it all on a state;</li>
 *   <li>{@link dev.jmoe.experts.jit} — OD-MoE's just-in-time working set, fed by a predictor;</li>
 *   <li>{@link dev.jmoe.experts.predict} — predictors of the next layers' experts ({@link dev.jmoe.experts.predict.Predictors}),
 *       the shadow model among them, and the hooks that connect them to a forward pass;</li>
 *   <li>{@link dev.jmoe.experts.trace} — routing traces and the simulator that replays policies on them.</li>
 * </ul>
 * Here at the root: {@link dev.jmoe.experts.Registry} (how plug-ins are registered once),
 * {@link dev.jmoe.experts.PolicyPresets} ({@code --policy}) and {@link dev.jmoe.experts.OffloadStats} /
 * {@link dev.jmoe.experts.OffloadReport}, the one metrics format every policy reports, live or replayed.
 */
package dev.jmoe.experts;
