package dev.jmoe.engine;

/** A {@link BatchScheduler}'s queue is full: the submission was refused and may be retried later. */
public final class SchedulerBusyException extends RuntimeException {
    private final int queued;

    public SchedulerBusyException(int queued) {
        super("the server is busy: " + queued + " requests are already waiting for a slot; retry later");
        this.queued = queued;
    }

    /** Requests that were waiting when this one was refused. */
    public int queued() { return queued; }
}
