package dev.jmoe.engine;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * What a {@link BatchScheduler} has done so far: generations by outcome, tokens, steps, and the latency histograms
 * (time to first token from submission, time between a generation's tokens). Thread-safe; a server renders it.
 */
public final class SchedulerMetrics {
    final LongAdder submitted = new LongAdder(), refused = new LongAdder(), failed = new LongAdder();
    final LongAdder promptTokens = new LongAdder(), generatedTokens = new LongAdder();
    final LongAdder steps = new LongAdder(), stepRows = new LongAdder(), stepNanos = new LongAdder();
    private final Map<FinishReason, LongAdder> finished = new EnumMap<>(FinishReason.class);
    final LatencyHistogram timeToFirstToken = new LatencyHistogram(), timePerToken = new LatencyHistogram();

    SchedulerMetrics() {
        for (FinishReason r : FinishReason.values()) finished.put(r, new LongAdder());
    }

    void countFinished(FinishReason r) { finished.get(r).increment(); }

    /** Generations accepted into the queue. */
    public long submitted() { return submitted.sum(); }

    /** Submissions refused because the queue was full. */
    public long refused() { return refused.sum(); }

    /** Generations that ended because the forward pass failed under them. */
    public long failed() { return failed.sum(); }

    /** Generations that ended for this reason. */
    public long finished(FinishReason reason) { return finished.get(reason).sum(); }

    /** Prompt tokens evaluated. */
    public long promptTokens() { return promptTokens.sum(); }

    /** Tokens generated (sampled and streamed). */
    public long generatedTokens() { return generatedTokens.sum(); }

    /** Forward steps run, the rows they held in all, and the time they took. */
    public long steps() { return steps.sum(); }

    public long stepRows() { return stepRows.sum(); }

    public long stepNanos() { return stepNanos.sum(); }

    /** Submission to first token, per generation. */
    public LatencyHistogram timeToFirstToken() { return timeToFirstToken; }

    /** Time between consecutive tokens of a generation. */
    public LatencyHistogram timePerToken() { return timePerToken; }
}
