package dev.jmoe.engine;

import java.nio.file.Path;

/**
 * How one session differs from its engine's defaults.
 *
 * @param experts      where its experts come from (null: the engine's {@link EngineConfig#experts()})
 * @param routingTrace record every MoE layer's routing into this JSON Lines file (docs/trace-format.md), or null
 */
public record SessionOptions(ExpertRuntimeConfig experts, Path routingTrace) {
    /** The engine's defaults. */
    public static final SessionOptions DEFAULTS = new SessionOptions(null, null);

    public static SessionOptions experts(ExpertRuntimeConfig experts) {
        return new SessionOptions(experts, null);
    }

    public SessionOptions withRoutingTrace(Path file) {
        return new SessionOptions(experts, file);
    }
}
