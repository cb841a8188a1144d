package dev.jmoe.engine;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A generation submitted to a {@link BatchScheduler}: its text streams to the submitter's {@link TokenListener} as the
 * scheduler decodes it together with the others, and {@link #result()} completes when it ends. {@link #cancel()} (from
 * any thread) ends it at the next step and frees its slot and KV positions; a generation cancelled while queued never
 * starts.
 */
public final class Generation {
    private final int[] prompt;
    private final GenerationRequest request;
    private final TokenListener listener;
    private final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
    private final long submittedNanos = System.nanoTime();
    private volatile boolean cancelled;

    Generation(int[] prompt, GenerationRequest request, TokenListener listener) {
        this.prompt = prompt;
        this.request = request;
        this.listener = listener == null ? TokenListener.NONE : listener;
    }

    int[] prompt() { return prompt; }
    GenerationRequest request() { return request; }
    TokenListener listener() { return listener; }
    long submittedNanos() { return submittedNanos; }
    boolean cancelled() { return cancelled; }

    /** Tokens of the prompt. */
    public int promptTokens() { return prompt.length; }

    /** Ends the generation at the scheduler's next step (its result then has {@link FinishReason#CANCELLED}). */
    public void cancel() {
        cancelled = true;
    }

    /** Completes with the result when the generation ends (exceptionally if the forward pass failed under it). */
    public CompletableFuture<GenerationResult> result() { return result; }

    public boolean isDone() { return result.isDone(); }

    /** Waits for the result; a failure of the run is rethrown as it was. */
    public GenerationResult await() throws InterruptedException {
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw rethrow(e.getCause());
        }
    }

    /** Waits at most {@code timeout} for the result. */
    public GenerationResult await(long timeout, TimeUnit unit) throws InterruptedException, TimeoutException {
        try {
            return result.get(timeout, unit);
        } catch (ExecutionException e) {
            throw rethrow(e.getCause());
        }
    }

    private static RuntimeException rethrow(Throwable cause) {
        if (cause instanceof RuntimeException r) return r;
        if (cause instanceof Error err) throw err;
        if (cause instanceof CancellationException c) return c;
        return new IllegalStateException(cause);
    }
}
