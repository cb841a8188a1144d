package dev.jmoe.generate;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Turns Ctrl-C (SIGINT) into a request that a generation loop can honour between tokens, so an interrupted run still
 * ends its line and prints the statistics gathered so far, instead of the JVM stopping mid-token. A second Ctrl-C
 * while the first is pending exits at once (status 130, as a shell reports SIGINT), so a loop that does not poll can
 * still be left.
 *
 * <p>Use: {@code try (StopRequest stop = StopRequest.onInterrupt()) { while (… && !stop.requested()) … }}. Closing it
 * restores the handler that was there before (the JVM's: exit). Only one can be installed at a time.
 */
public final class StopRequest implements AutoCloseable {
    private static final Object LOCK = new Object();
    private static StopRequest installed;

    private final AtomicInteger signals = new AtomicInteger();
    private final sun.misc.Signal signal;
    private final sun.misc.SignalHandler previous;
    private volatile boolean closed;

    private StopRequest(String name) {
        this.signal = new sun.misc.Signal(name);
        this.previous = sun.misc.Signal.handle(signal, s -> {
            if (signals.incrementAndGet() > 1) Runtime.getRuntime().halt(130);
        });
    }

    /** Installs the handler for SIGINT. */
    public static StopRequest onInterrupt() {
        return on("INT");
    }

    /** The same for another signal (tests use it: SIGINT is ignored in background processes of some shells). */
    static StopRequest on(String signalName) {
        synchronized (LOCK) {
            if (installed != null) throw new IllegalStateException("a StopRequest is already installed");
            installed = new StopRequest(signalName);
            return installed;
        }
    }

    /** Whether a stop was asked for (Ctrl-C pressed once). */
    public boolean requested() {
        return signals.get() > 0;
    }

    /** Asks for a stop as the signal would (for callers with another way to stop, and tests). */
    public void request() {
        signals.compareAndSet(0, 1);
    }

    @Override
    public void close() {
        synchronized (LOCK) {
            if (closed) return;
            closed = true;
            sun.misc.Signal.handle(signal, previous);
            if (installed == this) installed = null;
        }
    }
}
