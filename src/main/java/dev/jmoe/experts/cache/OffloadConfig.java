package dev.jmoe.experts.cache;

import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.experts.PolicyPresets;
import dev.jmoe.experts.Registry;
import dev.jmoe.experts.store.ExpertStores;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How an offloaded run is set up: the fast-memory budget, the store and link, and the policy — a named
 * preset whose parts (eviction, α, prefetch, balancing) can each be overridden.
 *
 * @param budget        {@code BYTES} (512MiB, 2GB, 1000000) or a fraction of the model's expert bytes (1/3, 0.25, 25%)
 * @param store         direct, host or mmap
 * @param policy        the preset the settings came from (reported)
 * @param eviction      lru, lfu, score or belady
 * @param alpha         SMoE substitution threshold; 0 = off (exact)
 * @param scoreWindow   decode steps the score-window policy averages over
 * @param prefetch      top-score prefetch of the next layer from the next-layer gate prediction
 * @param balance       per decode miss, load it or compute it from the store, whichever finishes sooner
 * @param loaderThreads threads moving experts store → fast memory
 * @param prefetchRule  how the next layer's experts are predicted for the prefetch ({@link PrefetchRules})
 * @param split         the order decode misses are split between loading and the slow side in ({@link Balancer})
 * @param overlap       the slow side computes in parallel with the fast side (else after the hits, on the same thread)
 */
public record OffloadConfig(String budget, String store, Link link, String policy, String eviction, double alpha, int scoreWindow,
                            boolean prefetch, boolean balance, int loaderThreads, String prefetchRule, OffloadedExpertSource.Split split,
                            boolean overlap) {
    /** With SMoE's scheduling: the default prefetch rule, score-order split, overlapped slow side. */
    public OffloadConfig(String budget, String store, Link link, String policy, String eviction, double alpha, int scoreWindow, boolean prefetch,
                         boolean balance, int loaderThreads) {
        this(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, loaderThreads, PrefetchRules.DEFAULT,
                OffloadedExpertSource.Split.SCORE, true);
    }

    public OffloadConfig {
        prefetchRule = PrefetchRules.REGISTRY.require(prefetchRule == null ? PrefetchRules.DEFAULT : prefetchRule).name();
        if (split == null) split = OffloadedExpertSource.Split.SCORE;
        if (budget == null || budget.isBlank()) throw new IllegalArgumentException("--expert-memory is required to offload experts");
        if (store == null) throw new IllegalArgumentException("--store is required");
        store = ExpertStores.REGISTRY.require(store).name();
        if (link == null) throw new IllegalArgumentException("link is required");
        eviction = EvictionPolicies.requireOnline(eviction);
        if (!(alpha >= 0 && alpha < 1)) throw new IllegalArgumentException("--alpha must be in [0, 1), got " + alpha);
        if (scoreWindow < 1) throw new IllegalArgumentException("--score-window must be at least 1, got " + scoreWindow);
        if (loaderThreads < 1) throw new IllegalArgumentException("loader threads must be at least 1, got " + loaderThreads);
    }

    /** The preset's settings ({@link PolicyPresets}) with the given budget, store and link. */
    public static OffloadConfig preset(String policy, String budget, String store, Link link) {
        Registry.Entry<PolicyPresets.Preset> e = PolicyPresets.REGISTRY.require(policy == null ? "exact-smoe" : policy);
        PolicyPresets.Preset p = e.value();
        if (p.justInTime()) {
            throw new IllegalArgumentException("--policy " + e.name() + " loads experts just in time from a predictor; it has no cache configuration");
        }
        return new OffloadConfig(budget, store, link, e.name(), p.eviction(), p.alpha(), 16, p.prefetch(), p.balance(), 1);
    }

    public OffloadConfig withEviction(String e) {
        return new OffloadConfig(budget, store, link, policy, e == null ? eviction : e.toLowerCase(Locale.ROOT), alpha, scoreWindow, prefetch, balance, loaderThreads, prefetchRule, split, overlap);
    }

    public OffloadConfig withAlpha(double a) {
        return new OffloadConfig(budget, store, link, policy, eviction, a, scoreWindow, prefetch, balance, loaderThreads, prefetchRule, split, overlap);
    }

    public OffloadConfig withScoreWindow(int n) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, n, prefetch, balance, loaderThreads, prefetchRule, split, overlap);
    }

    public OffloadConfig withPrefetch(boolean p) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, p, balance, loaderThreads, prefetchRule, split, overlap);
    }

    public OffloadConfig withBalance(boolean b) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, b, loaderThreads, prefetchRule, split, overlap);
    }

    public OffloadConfig withLoaderThreads(int n) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, n, prefetchRule, split, overlap);
    }

    public OffloadConfig withPrefetchRule(String rule) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, loaderThreads, rule, split, overlap);
    }

    public OffloadConfig withSplit(OffloadedExpertSource.Split s) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, loaderThreads, prefetchRule, s, overlap);
    }

    public OffloadConfig withOverlap(boolean o) {
        return new OffloadConfig(budget, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, loaderThreads, prefetchRule, split, o);
    }

    public OffloadConfig withBudget(String b) {
        return new OffloadConfig(b, store, link, policy, eviction, alpha, scoreWindow, prefetch, balance, loaderThreads, prefetchRule, split, overlap);
    }

    private static final Pattern BYTES = Pattern.compile("\\s*([0-9]*\\.?[0-9]+)\\s*([kKmMgGtT]?)(i?)[bB]?\\s*");
    private static final Pattern FRACTION = Pattern.compile("\\s*([0-9]+)\\s*/\\s*([0-9]+)\\s*");

    /**
     * Resolves a budget: a fraction of {@code expertBytes} ({@code 1/3}, {@code 0.25}, {@code 25%}) or a byte count
     * ({@code 512MiB}, {@code 2GB}, {@code 1000000}). A plain number with a decimal point is a fraction.
     */
    public static long parseBudget(String spec, long expertBytes) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("--expert-memory needs BYTES or a FRACTION of the expert bytes");
        String s = spec.trim();
        double fraction = -1;
        Matcher f = FRACTION.matcher(s);
        if (f.matches()) {
            double den = Double.parseDouble(f.group(2));
            if (den == 0) throw new IllegalArgumentException("--expert-memory '" + spec + "' divides by zero");
            fraction = Double.parseDouble(f.group(1)) / den;
        } else if (s.endsWith("%")) {
            try {
                fraction = Double.parseDouble(s.substring(0, s.length() - 1).trim()) / 100;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("cannot parse --expert-memory '" + spec + "'");
            }
        } else if (s.matches("[0-9]*\\.[0-9]+")) {
            fraction = Double.parseDouble(s);
        }
        if (fraction >= 0) {
            if (!(fraction > 0 && fraction <= 1)) throw new IllegalArgumentException("--expert-memory fraction must be in (0, 1], got '" + spec + "'");
            return (long) Math.floor(fraction * expertBytes);
        }
        Matcher m = BYTES.matcher(s);
        if (!m.matches()) {
            throw new IllegalArgumentException("cannot parse --expert-memory '" + spec + "': expected bytes (512MiB, 2GB, 1000000) or a fraction (1/3, 0.25, 25%)");
        }
        boolean binary = !m.group(3).isEmpty();
        double unit = switch (m.group(2).toLowerCase(Locale.ROOT)) {
            case "k" -> binary ? 1024.0 : 1e3;
            case "m" -> binary ? 1024.0 * 1024 : 1e6;
            case "g" -> binary ? 1024.0 * 1024 * 1024 : 1e9;
            case "t" -> binary ? 1024.0 * 1024 * 1024 * 1024 : 1e12;
            default -> 1;
        };
        double v = Double.parseDouble(m.group(1)) * unit;
        if (!(v >= 1)) throw new IllegalArgumentException("--expert-memory must be at least one byte, got '" + spec + "'");
        // Larger than any machine: said as such, not as "at least one byte" (what a cast to long used to end in).
        if (v >= 0x1p63) throw new IllegalArgumentException("--expert-memory '" + spec + "' is far more bytes than any machine has (the limit is 2^63)");
        return (long) v;
    }
}
