package dev.jmoe.tensor;

/**
 * A fixed set of worker threads for splitting one operation over ranges, with low dispatch latency
 * (decode runs about a hundred small products per token, so a fork/join per product would dominate).
 */
public final class Parallel implements AutoCloseable {
    /** Work over the half-open range [start, end). */
    @FunctionalInterface
    public interface RangeTask { void run(int start, int end); }

    public Parallel(int threads) { throw new UnsupportedOperationException("TODO"); }

    public int threads() { throw new UnsupportedOperationException("TODO"); }

    /** Splits [0, n) into contiguous chunks (multiples of {@code grain} where possible) and runs them on all threads; returns when all are done. */
    public void forRange(int n, int grain, RangeTask task) { throw new UnsupportedOperationException("TODO"); }

    @Override public void close() {}
}
