package dev.jmoe.engine;

import java.util.List;

/**
 * Streams generated text while watching for stop strings: text that could be the start of a stop string is held
 * back until the next pieces show whether it is one, so a listener never sees a stop string or anything past it.
 */
final class StopStrings {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    StopStrings(List<String> stops) {
        this.stops = stops;
    }

    /** Adds a decoded piece; returns the text now safe to emit (empty while a possible stop string is pending). */
    String accept(String piece) {
        if (stopped) return "";
        if (stops.isEmpty()) return piece;
        pending.append(piece);
        int at = -1;
        for (String s : stops) {
            int i = pending.indexOf(s);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        if (at >= 0) {
            stopped = true;
            String out = pending.substring(0, at);
            pending.setLength(0);
            return out;
        }
        int hold = 0;
        for (String s : stops) hold = Math.max(hold, prefixSuffix(s));
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        return out;
    }

    /** The longest k below the stop's length such that the pending text ends with the stop's first k characters. */
    private int prefixSuffix(String stop) {
        int max = Math.min(stop.length() - 1, pending.length());
        for (int k = max; k > 0; k--) {
            if (pending.toString().regionMatches(pending.length() - k, stop, 0, k)) return k;
        }
        return 0;
    }

    /** The generation ended without a stop string: everything held back (plus {@code last}) is text after all. */
    String finish(String last) {
        String out = accept(last);
        if (stopped) return out;
        out += pending;
        pending.setLength(0);
        return out;
    }

    boolean stopped() { return stopped; }
}
