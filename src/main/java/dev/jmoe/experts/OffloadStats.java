package dev.jmoe.experts;

import dev.jmoe.experts.trace.PolicySimulator;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * What one offloaded run did, split into prefill (batches of several tokens) and decode (one token per
 * step). Every policy — live or replayed by {@link PolicySimulator} — reports these same counters.
 * An expert use is exactly one of: exact hit, substitution hit (SMoE's paper counts these as hits; here they
 * are separate), prefetch hit (resident or arriving because a prefetch asked for it), miss loaded, or miss
 * computed from the store. Thread-safe.
 */
public final class OffloadStats {
    /** Counter names, in report order. */
    public enum Counter {
        EXACT_HITS("exact_hits"), SUBSTITUTIONS("substitutions"), PREFETCH_HITS("prefetch_hits"),
        MISSES_LOADED("misses_loaded"), MISSES_COMPUTED("misses_computed"),
        PREFETCHES_ISSUED("prefetches_issued"), PREFETCHES_CANCELLED("prefetches_cancelled"), PREFETCHES_WASTED("prefetches_wasted"),
        EVICTIONS("evictions"), LOADS("loads"), BYTES_MOVED("bytes_moved"), STALL_NANOS("stall_ns"),
        SLOW_COMPUTE_NANOS("slow_compute_ns"), LAYERS("moe_layer_steps");

        final String json;

        Counter(String json) { this.json = json; }
    }

    public static final int PREFILL = 0, DECODE = 1;
    private static final int N = Counter.values().length;

    private final AtomicLongArray counts = new AtomicLongArray(2 * N);
    private volatile long peakResidentBytes;
    private volatile long budgetBytes, slots, slotBytes;
    private OffloadReport.Settings settings = OffloadReport.Settings.NONE;
    private volatile long ttftNanos = -1, decodeNanos, decodeTokens, promptTokens;

    public void add(int phase, Counter c, long v) { counts.addAndGet(phase * N + c.ordinal(), v); }
    public void inc(int phase, Counter c) { add(phase, c, 1); }
    public long get(int phase, Counter c) { return counts.get(phase * N + c.ordinal()); }
    public long total(Counter c) { return get(PREFILL, c) + get(DECODE, c); }

    public synchronized void residentBytes(long now) { if (now > peakResidentBytes) peakResidentBytes = now; }
    public long peakResidentBytes() { return peakResidentBytes; }

    /** The fast-memory shape the run had. */
    public void memory(long budget, long slots, long slotBytes) {
        this.budgetBytes = budget;
        this.slots = slots;
        this.slotBytes = slotBytes;
    }

    /** Records how the run is set up (echoed in reports): {@code settings.update(s -> s.withStore(…))}. */
    public synchronized void settings(java.util.function.UnaryOperator<OffloadReport.Settings> update) { settings = update.apply(settings); }

    public synchronized OffloadReport.Settings settings() { return settings; }

    /** Timing measured by the command that drives the model: time to first token and the decode loop. */
    public void timing(int promptTokens, long ttftNanos, int decodeTokens, long decodeNanos) {
        this.promptTokens = promptTokens;
        this.ttftNanos = ttftNanos;
        this.decodeTokens = decodeTokens;
        this.decodeNanos = decodeNanos;
    }

    /** Expert uses in a phase (every use falls into exactly one of the five outcomes). */
    public long uses(int phase) {
        return get(phase, Counter.EXACT_HITS) + get(phase, Counter.SUBSTITUTIONS) + get(phase, Counter.PREFETCH_HITS)
                + get(phase, Counter.MISSES_LOADED) + get(phase, Counter.MISSES_COMPUTED);
    }

    /** Share of a phase's expert uses served from fast memory without waiting for a demand load (exact + prefetch). */
    public double hitRate(int phase) {
        long u = uses(phase);
        return u == 0 ? 0 : (double) (get(phase, Counter.EXACT_HITS) + get(phase, Counter.PREFETCH_HITS)) / u;
    }

    /** Everything so far, as one typed value. */
    public synchronized OffloadReport report() {
        OffloadReport.Timing timing = ttftNanos < 0 ? OffloadReport.Timing.NONE : new OffloadReport.Timing((int) promptTokens, round(ttftNanos / 1e6),
                (int) decodeTokens, decodeTokens == 0 ? 0.0 : round(decodeNanos / 1e6 / decodeTokens));
        return new OffloadReport(settings, budgetBytes, slots, slotBytes, peakResidentBytes, phase(PREFILL), phase(DECODE), timing);
    }

    private OffloadReport.Phase phase(int p) {
        long u = uses(p);
        return new OffloadReport.Phase(get(p, Counter.EXACT_HITS), get(p, Counter.SUBSTITUTIONS), get(p, Counter.PREFETCH_HITS),
                get(p, Counter.MISSES_LOADED), get(p, Counter.MISSES_COMPUTED), get(p, Counter.PREFETCHES_ISSUED), get(p, Counter.PREFETCHES_CANCELLED),
                get(p, Counter.PREFETCHES_WASTED), get(p, Counter.EVICTIONS), get(p, Counter.LOADS), get(p, Counter.BYTES_MOVED),
                get(p, Counter.STALL_NANOS), get(p, Counter.SLOW_COMPUTE_NANOS), get(p, Counter.LAYERS), u, round(hitRate(p)),
                u == 0 ? 0.0 : round((double) get(p, Counter.SUBSTITUTIONS) / u));
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    /** {@link #report()} as a JSON-ready map, for reports that nest it in larger maps of their own. */
    public Map<String, Object> toMap() {
        return JSON.convertValue(report(), new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() {});
    }

    private static double round(double v) {
        return Math.round(v * 10000) / 10000.0;
    }

    /** A readable table of the counters (both phases side by side). */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append("expert offloading:");
        for (Map.Entry<String, Object> e : JSON.convertValue(settings(), new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() {})
                .entrySet()) {
            sb.append(' ').append(e.getKey()).append('=').append(e.getValue());
        }
        sb.append('\n');
        sb.append(String.format(Locale.ROOT, "  fast memory: %d slots x %s = %s of %s budget, peak resident %s%n", slots, bytes(slotBytes),
                bytes(slots * slotBytes), bytes(budgetBytes), bytes(peakResidentBytes)));
        sb.append(String.format(Locale.ROOT, "  %-22s %14s %14s%n", "", "prefill", "decode"));
        for (Counter c : Counter.values()) {
            String a, b;
            if (c == Counter.BYTES_MOVED) {
                a = bytes(get(PREFILL, c));
                b = bytes(get(DECODE, c));
            } else if (c == Counter.STALL_NANOS || c == Counter.SLOW_COMPUTE_NANOS) {
                a = String.format(Locale.ROOT, "%.1f ms", get(PREFILL, c) / 1e6);
                b = String.format(Locale.ROOT, "%.1f ms", get(DECODE, c) / 1e6);
            } else {
                a = Long.toString(get(PREFILL, c));
                b = Long.toString(get(DECODE, c));
            }
            sb.append(String.format(Locale.ROOT, "  %-22s %14s %14s%n", c.json, a, b));
        }
        sb.append(String.format(Locale.ROOT, "  %-22s %13.1f%% %13.1f%%%n", "hit_rate", 100 * hitRate(PREFILL), 100 * hitRate(DECODE)));
        if (ttftNanos >= 0) {
            sb.append(String.format(Locale.ROOT, "  TTFT %.1f ms (%d prompt tokens), %.2f ms per output token (%d tokens)%n", ttftNanos / 1e6,
                    promptTokens, decodeTokens == 0 ? 0.0 : decodeNanos / 1e6 / decodeTokens, decodeTokens));
        }
        return sb.toString();
    }

    public static String bytes(long b) {
        if (b < 1024) return b + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = b;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
