package dev.jmoe.engine;

/**
 * How a {@link BatchScheduler} shares one engine among many generations. Checked when made.
 *
 * @param slots            generations decoded together at most ({@code --parallel}); more wait in the queue
 * @param maxContext       positions one generation may use at most, prompt and generated tokens together ({@code --ctx-size})
 * @param kvPositions      positions of the KV memory every running generation takes its positions from (0: slots ×
 *                         maxContext, so every slot can always hold a generation of the longest kind); a generation
 *                         reserves prompt + max tokens (at most maxContext) when it starts
 * @param queueLimit       generations waiting for a slot at most; a submission beyond them is refused
 *                         ({@link SchedulerBusyException})
 * @param stepPromptTokens prompt tokens one step processes at most, shared among the prompts in progress: a long prompt
 *                         goes in chunks, so the generations already decoding keep getting a token every step
 */
public record BatchConfig(int slots, int maxContext, int kvPositions, int queueLimit, int stepPromptTokens) {
    /** The most slots a scheduler runs (the step's rows grow with them). */
    public static final int MAX_SLOTS = 256;

    public BatchConfig {
        if (slots < 1 || slots > MAX_SLOTS) throw new IllegalArgumentException("--parallel must be between 1 and " + MAX_SLOTS + ", got " + slots);
        if (maxContext < 2) throw new IllegalArgumentException("--ctx-size must be at least 2, got " + maxContext);
        if (kvPositions == 0) kvPositions = (int) Math.min(Integer.MAX_VALUE / 2, (long) slots * maxContext);
        if (kvPositions < maxContext) {
            throw new IllegalArgumentException("the KV memory (" + kvPositions + " positions) must hold at least one whole context (--ctx-size " + maxContext + ")");
        }
        if (queueLimit < 0) throw new IllegalArgumentException("--queue must be >= 0, got " + queueLimit);
        if (stepPromptTokens < 1) throw new IllegalArgumentException("--prefill-chunk (prompt tokens per step) must be at least 1, got " + stepPromptTokens);
    }

    /** {@code slots} slots of {@code maxContext} positions each, a queue of 4 × slots (at least 16), 64 prompt tokens per step. */
    public static BatchConfig of(int slots, int maxContext) {
        return new BatchConfig(slots, maxContext, 0, Math.max(16, 4 * slots), 64);
    }
}
