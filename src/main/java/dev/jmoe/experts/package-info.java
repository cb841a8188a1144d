/**
 * Where expert weights come from, and how they are kept within a memory budget.
 *
 * <p>The forward pass reaches routed experts only through an {@link dev.jmoe.model.ExpertSource}
 * ({@code willUse}, {@code order}, {@code acquire}/{@code release}). {@link dev.jmoe.model.ResidentExpertSource}
 * serves them from the file mapping; {@link dev.jmoe.experts.cache.OffloadedExpertSource} serves them from a bounded
 * fast memory:
 * <ul>
 *   <li>{@link dev.jmoe.experts.store.ExpertStore} — the slow tier holding every expert: {@code direct} (O_DIRECT reads,
 *       {@link dev.jmoe.experts.store.DirectStore}), {@code host} (one off-heap copy), {@code mmap} (page cache);
 *       {@link dev.jmoe.experts.store.ExpertLayout} says where each expert's three byte ranges are in the file;</li>
 *   <li>{@link dev.jmoe.experts.store.Link} — the store-to-fast-memory path, throttled to an emulated bandwidth and
 *       latency, with the slow side's compute ratio;</li>
 *   <li>{@link dev.jmoe.experts.cache.ExpertMemory} — fixed-size off-heap slots, never above the budget;</li>
 *   <li>{@link dev.jmoe.experts.cache.EvictionPolicy} — LRU, LFU, SMoE's score window, Belady — driving both the live
 *       cache and {@link dev.jmoe.experts.trace.PolicySimulator}, which replays a {@link dev.jmoe.experts.trace.RoutingTrace};</li>
 *   <li>{@link dev.jmoe.experts.cache.Substitution} (SMoE, decode only), {@link dev.jmoe.experts.cache.NextLayerPrefetcher}
 *       (next-layer gate prefetch) and {@link dev.jmoe.experts.cache.Balancer} (load a miss or compute it from the
 *       store);</li>
 *   <li>{@link dev.jmoe.experts.cache.OffloadRuntime} builds all of it from an {@link dev.jmoe.experts.cache.OffloadConfig}
 *       and installs it on an inference state; {@link dev.jmoe.experts.OffloadStats} is the one metrics format.</li>
 * </ul>
 */
package dev.jmoe.experts;
