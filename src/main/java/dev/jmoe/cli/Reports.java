package dev.jmoe.cli;

import dev.jmoe.experts.predict.PredictorReport;
import java.util.Locale;

/** One-line descriptions of the engine's reports for the terminal. */
final class Reports {
    private Reports() {}

    /** What a predictor did: for a shadow, how many predictions it served itself and what its thread cost. */
    static String describe(PredictorReport p) {
        if (p.shadow() == null) return "predictor: " + p.name();
        var x = p.shadow();
        long all = x.served() + x.fallbacks();
        return String.format(Locale.ROOT, "%s: %d of %d predictions from the shadow (%.1f%%), the rest from its fallback%s", p.name(), x.served(), all,
                all == 0 ? 0.0 : 100.0 * x.served() / all, x.cpuMillis() == null ? "" : String.format(Locale.ROOT, "; shadow thread CPU %.1f ms",
                        x.cpuMillis()));
    }
}
