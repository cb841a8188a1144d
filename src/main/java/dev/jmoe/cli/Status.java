package dev.jmoe.cli;

import java.io.PrintStream;

/**
 * A live status line on stderr for steps that may take more than a second: redrawn in place on a
 * terminal, printed sparingly (every few seconds) when stderr is a file or pipe, silent with --quiet.
 */
final class Status implements AutoCloseable {
    private static final long MIN_REDRAW_NANOS = 100_000_000L;
    private static final long PIPE_INTERVAL_NANOS = 5_000_000_000L;
    private final PrintStream err = System.err;
    private final String label;
    private final boolean terminal = System.console() != null;
    private final boolean quiet;
    private final long start = System.nanoTime();
    private long lastDraw = 0;
    private int lastWidth = 0;
    private boolean drew;

    Status(String label, boolean quiet) {
        this.label = label;
        this.quiet = quiet;
    }

    /** Reports progress {@code done}/{@code total} (total ≤ 0: unknown) with an optional note. */
    void update(long done, long total, String note) {
        if (quiet) return;
        long now = System.nanoTime();
        long interval = terminal ? MIN_REDRAW_NANOS : PIPE_INTERVAL_NANOS;
        // only steps lasting over a second; into a file or pipe only those lasting several, so logs stay readable
        long minAge = terminal ? 1_000_000_000L : PIPE_INTERVAL_NANOS;
        if (now - start < minAge || now - lastDraw < interval) return;
        lastDraw = now;
        StringBuilder sb = new StringBuilder(label).append(' ');
        if (total > 0) {
            int width = 24;
            int filled = (int) Math.min(width, done * width / total);
            sb.append('[').append("#".repeat(filled)).append(".".repeat(width - filled)).append("] ")
              .append(done).append('/').append(total);
        } else {
            sb.append(done);
        }
        if (note != null && !note.isEmpty()) sb.append("  ").append(note);
        sb.append(String.format("  %.1fs", (now - start) / 1e9));
        String line = sb.toString();
        if (terminal) {
            err.print('\r' + line + " ".repeat(Math.max(0, lastWidth - line.length())));
            lastWidth = line.length();
        } else {
            err.println(line);
        }
        err.flush();
        drew = true;
    }

    @Override
    public void close() {
        if (drew && terminal && !quiet) {
            err.print('\r' + " ".repeat(lastWidth) + '\r');
            err.flush();
        }
    }
}
