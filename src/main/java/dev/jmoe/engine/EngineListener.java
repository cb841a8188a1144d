package dev.jmoe.engine;

/**
 * Hears what an {@link Engine} is doing: progress of steps that may take seconds (loading, warming kernels,
 * evaluating a prompt) and notices a user should read (a store's fallback, a setting without effect). The default
 * methods ignore both: a library prints nothing unless its user asks.
 */
public interface EngineListener {
    /** Nothing is reported. */
    EngineListener SILENT = new EngineListener() {};

    /**
     * A step advanced.
     *
     * @param step  "loading", "warming kernels", "prompt" …
     * @param done  units done so far
     * @param total units in all (≤ 0: unknown)
     * @param unit  what is counted ("tokens", "weight types"), or null
     */
    default void progress(String step, long done, long total, String unit) {}

    /** A step that reported progress has ended. */
    default void stepDone(String step) {}

    /** A remark for the user (one line, no prefix). */
    default void notice(String message) {}

    /** A setting that will not do what its user may think (one line, no prefix), e.g. a policy given without a budget. */
    default void warning(String message) {}
}
