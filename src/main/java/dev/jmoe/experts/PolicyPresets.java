package dev.jmoe.experts;

/**
 * The {@code --policy} presets, one per paper or peer system, registered once by name. A caching preset fixes the
 * eviction policy, SMoE's substitution threshold α, next-layer prefetch and load/compute balancing (each can be
 * overridden); {@code odmoe} is OD-MoE's cacheless just-in-time loading from a predictor.
 */
public final class PolicyPresets {
    private PolicyPresets() {}

    /**
     * @param justInTime OD-MoE: a working set fed by a predictor, no cache (the other fields do not apply)
     * @param eviction   a name registered in {@code EvictionPolicies}
     * @param alpha      SMoE substitution threshold; 0 = exact
     * @param prefetch   prefetch the next layer's predicted top-score experts
     * @param balance    per decode miss, load it or compute it from the store, whichever finishes sooner
     */
    public record Preset(boolean justInTime, String eviction, double alpha, boolean prefetch, boolean balance) {}

    public static final Registry<Preset> REGISTRY = new Registry<>("policy", "--policy");

    static {
        REGISTRY.register("exact-smoe", "SMoE's caching and scheduling without substitution (score-window eviction, next-layer prefetch,"
                + " load/compute balancing): exact outputs", new Preset(false, "score", 0, true, true));
        REGISTRY.register("smoe", "SMoE: the same plus substitution of low-score misses by resident experts (alpha 0.25; not exact)",
                new Preset(false, "score", 0.25, true, true));
        REGISTRY.register("lru-ondemand", "mixtral-offloading-like: LRU cache, every miss loaded on demand", new Preset(false, "lru", 0, false, false));
        REGISTRY.register("fiddler", "Fiddler: LRU cache, a miss computed on the slow side when that beats loading it",
                new Preset(false, "lru", 0, false, true));
        REGISTRY.register("lfu-ondemand", "LFU cache, every miss loaded on demand", new Preset(false, "lfu", 0, false, false));
        REGISTRY.register("odmoe", "OD-MoE: no cache; each expert the predictor names is loaded just in time into a working set and evicted"
                + " after use (mispredictions demand-loaded: exact)", new Preset(true, null, 0, false, false));
    }

    /** Whether {@code name} is OD-MoE's just-in-time preset (unknown names are an error naming the valid ones). */
    public static boolean isJustInTime(String name) {
        return REGISTRY.get(name).justInTime();
    }
}
