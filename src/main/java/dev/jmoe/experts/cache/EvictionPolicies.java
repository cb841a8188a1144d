package dev.jmoe.experts.cache;

import dev.jmoe.experts.Registry;

/**
 * The eviction policies jmoe knows, by name: the live cache ({@code --eviction}), {@code jmoe replay} and the bench
 * grids all take their names, help and validation from {@link #REGISTRY}. A new policy is one class implementing
 * {@link EvictionPolicy} and one {@link #register} call; offline bounds (they need the whole run in advance) are
 * registered with {@link #registerOffline} and are then accepted by replay only.
 */
public final class EvictionPolicies {
    private EvictionPolicies() {}

    /**
     * A registered policy: its factory; whether it needs the run's future (an offline bound, replay only); whether it
     * needs the router's full probabilities (a replay of a trace that records less falls back, saying so); whether it
     * looks ahead through a predictor's view ({@link EvictionPolicy.Context#predictions()}: replays drive it with a
     * predictor model, runs with their predictor or next-layer prefetch).
     */
    public record Kind(EvictionPolicy.Factory factory, boolean offline, boolean needsProbabilities, boolean usesPredictions) {
        public Kind(EvictionPolicy.Factory factory, boolean offline) {
            this(factory, offline, false, false);
        }
    }

    public static final Registry<Kind> REGISTRY = new Registry<>("eviction policy", "--eviction");

    static {
        register("lru", "least recently used: evict the expert whose last use is oldest", c -> new EvictionPolicy.Lru(c.keys()));
        register("lfu", "least frequently used over the whole run, ties to the least recent", c -> new EvictionPolicy.Lfu(c.keys()));
        REGISTRY.register("score", "SMoE's score window: evict the lowest mean router probability over the last --score-window decode steps",
                new Kind(c -> new EvictionPolicy.ScoreWindow(c.nLayer(), c.nExpert(), c.scoreWindow()), false, true, false), "score-window", "smoe");
        REGISTRY.register("predictive", "evict the expert whose predicted next use is farthest (the predictor's or the next-layer prefetch's"
                + " view of the next layers and tokens); unpredicted experts least used lately first (use counts with a half-life)",
                new Kind(c -> new EvictionPolicy.Predictive(c.keys(), c.predictions() != null ? c.predictions() : new Predictions(c.nLayer(), c.nExpert()),
                        (double) EvictionPolicy.Predictive.HALF_LIFE_PER_LAYER * c.nLayer()), false, false, true), "lookahead");
        REGISTRY.register("belady", "Belady's MIN, the offline optimum: evict the expert used farthest in the future (replay only)",
                new Kind(c -> {
                    if (c.future() == null) {
                        throw new IllegalArgumentException("the belady (oracle) policy needs the run's future accesses: it is replayed from a"
                                + " recorded routing trace (jmoe replay, jmoe offload-bench), not usable live");
                    }
                    return new EvictionPolicy.Belady(c.keys(), c.future());
                }, true), "oracle");
    }

    /** Registers an online policy (usable live and in replay). */
    public static Registry.Registration register(String name, String help, EvictionPolicy.Factory factory) {
        return REGISTRY.register(name, help, new Kind(factory, false));
    }

    /** Registers an offline bound: it needs {@link EvictionPolicy.Context#future()}, so only replays accept it. */
    public static Registry.Registration registerOffline(String name, String help, EvictionPolicy.Factory factory) {
        return REGISTRY.register(name, help, new Kind(factory, true));
    }

    /** The policy called {@code name}, made for {@code context}; an error naming the valid names if there is none. */
    public static EvictionPolicy create(String name, EvictionPolicy.Context context) {
        return REGISTRY.get(name).factory().create(context);
    }

    /** Checks a name for a live cache: known, and not an offline bound. Returns the canonical name. */
    public static String requireOnline(String name) {
        Registry.Entry<Kind> e = REGISTRY.require(name);
        if (e.value().offline()) {
            throw new IllegalArgumentException("--eviction " + e.name() + " is an offline bound replayed from a recorded trace (jmoe replay reports it);"
                    + " a live run takes one of " + String.join(", ", onlineNames()));
        }
        return e.name();
    }

    /** Names of the policies a live cache accepts. */
    public static java.util.List<String> onlineNames() {
        return REGISTRY.entries().stream().filter(e -> !e.value().offline()).map(Registry.Entry::name).toList();
    }
}
