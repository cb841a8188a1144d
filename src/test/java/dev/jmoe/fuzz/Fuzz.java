package dev.jmoe.fuzz;

import dev.jmoe.tensor.Parallel;

/**
 * What every fuzz target shares. A target feeds its input to the code under test inside {@link #expectOnly}, naming
 * the exception types that are that code's documented way of rejecting bad input; anything else escaping (an
 * IndexOutOfBounds from deep inside, an OutOfMemoryError, a StackOverflowError, an error without a message) is a
 * finding. Hangs are findings too: the campaign command sets a per-input time limit (docs/hardening.md).
 */
final class Fuzz {
    private Fuzz() {}

    /** One compute thread for every target: fuzzing runs one input at a time. */
    static final Parallel POOL = new Parallel(1);

    @FunctionalInterface
    interface Body {
        void run() throws Exception;
    }

    /** Runs {@code body}; a declared rejection must carry a message, anything else is rethrown as a finding. */
    @SafeVarargs
    static void expectOnly(Body body, Class<? extends Throwable>... declared) {
        try {
            body.run();
        } catch (Throwable t) {
            for (Class<? extends Throwable> c : declared) {
                if (c.isInstance(t)) {
                    String m = t.getMessage();
                    if (m == null || m.isBlank()) throw new AssertionError("a rejection without a message", t);
                    return;
                }
            }
            if (t instanceof RuntimeException r) throw r;
            if (t instanceof Error e) throw e;
            throw new AssertionError("undeclared checked exception", t);
        }
    }
}
