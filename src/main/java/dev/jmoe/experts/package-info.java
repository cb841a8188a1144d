/**
 * Where expert weights come from, and how they are kept within a memory budget.
 *
 * <p>The forward pass reaches routed experts only through an {@link dev.jmoe.experts.ExpertSource}
 * ({@code willUse}, {@code order}, {@code acquire}/{@code release}). {@link dev.jmoe.experts.ResidentExpertSource}
 * serves them from the file mapping; {@link dev.jmoe.experts.OffloadedExpertSource} serves them from a bounded
 * fast memory:
 * <ul>
 *   <li>{@link dev.jmoe.experts.ExpertStore} — the slow tier holding every expert: {@code direct} (O_DIRECT reads,
 *       {@link dev.jmoe.experts.DirectStore}), {@code host} (one off-heap copy), {@code mmap} (page cache);
 *       {@link dev.jmoe.experts.ExpertLayout} says where each expert's three byte ranges are in the file;</li>
 *   <li>{@link dev.jmoe.experts.Link} — the store-to-fast-memory path, throttled to an emulated bandwidth and
 *       latency, with the slow side's compute ratio;</li>
 *   <li>{@link dev.jmoe.experts.ExpertMemory} — fixed-size off-heap slots, never above the budget;</li>
 *   <li>{@link dev.jmoe.experts.EvictionPolicy} — LRU, LFU, SMoE's score window, Belady — driving both the live
 *       cache and {@link dev.jmoe.experts.PolicySimulator}, which replays a {@link dev.jmoe.experts.RoutingTrace};</li>
 *   <li>{@link dev.jmoe.experts.Substitution} (SMoE, decode only), {@link dev.jmoe.experts.NextLayerPrefetcher}
 *       (next-layer gate prefetch) and {@link dev.jmoe.experts.Balancer} (load a miss or compute it from the
 *       store);</li>
 *   <li>{@link dev.jmoe.experts.OffloadRuntime} builds all of it from an {@link dev.jmoe.experts.OffloadConfig}
 *       and installs it on an inference state; {@link dev.jmoe.experts.OffloadStats} is the one metrics format.</li>
 * </ul>
 */
package dev.jmoe.experts;
