/**
 * The slow tier and the path from it: {@link dev.jmoe.experts.store.ExpertStore} (every expert, read into fast memory or
 * computed in place), {@link dev.jmoe.experts.store.ExpertLayout} (where each expert's bytes are), the registered store
 * kinds ({@link dev.jmoe.experts.store.ExpertStores}: direct, host, mmap) and {@link dev.jmoe.experts.store.Link}, the
 * emulated bandwidth, latency and slow-side compute ratio between store and fast memory.
 */
package dev.jmoe.experts.store;
