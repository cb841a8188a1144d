package dev.jmoe.model;

/**
 * Sees which tokens the forward pass is about to run, before any layer: predictors that keep a model of
 * their own in step with this one (a shadow model) learn the tokens from it, and know that every earlier
 * position of the KV cache is complete.
 */
@FunctionalInterface
public interface TokenHook {
    /**
     * @param pos position of {@code tokens[off]}; positions before it are complete in the KV cache
     * @param n   tokens in this batch ({@code tokens[off .. off+n)}); the array must not be kept or modified
     */
    void onTokens(int pos, int[] tokens, int off, int n);

    /**
     * A step over several sequences starts. By default a step of one sequence is heard as {@link #onTokens} and a step of
     * several is not heard: a hook that keeps a model of its own in step with one sequence cannot follow several.
     */
    default void onBatchTokens(Batch batch) {
        if (batch.sequences() == 1) onTokens(batch.position(0), batch.tokens(), 0, batch.rows());
    }
}
