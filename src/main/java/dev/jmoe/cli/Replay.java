package dev.jmoe.cli;

import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.trace.PolicySimulator;
import dev.jmoe.experts.trace.RoutingTrace;
import dev.jmoe.experts.cache.Substitution;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Eviction policies (and the Belady bound) replayed on a recorded routing trace, per budget: the policy alone, demand loads only. */
final class Replay {
    private Replay() {}

    /** One replayed configuration. */
    record Row(String budget, int slots, String eviction, double alpha, OffloadStats stats) {
        double decodeHitRate() {
            long u = stats.uses(OffloadStats.DECODE);
            // substitutions count as hits here, as SMoE's paper counts them
            return u == 0 ? Double.NaN : (double) (stats.get(OffloadStats.DECODE, Counter.EXACT_HITS) + stats.get(OffloadStats.DECODE, Counter.SUBSTITUTIONS)) / u;
        }

        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("budget", budget);
            m.put("slots", slots);
            m.put("eviction", eviction);
            m.put("alpha", alpha);
            m.put("decode_hit_rate", decodeHitRate());
            m.put("stats", stats.toMap());
            return m;
        }
    }

    static List<Row> run(RoutingTrace trace, ExpertLayout layout, boolean renormalize, List<String> budgets, List<String> evictions, double alpha,
                         int scoreWindow) {
        if (layout.nExpert() != trace.nExpert() || layout.layerCount() != trace.nLayer()) {
            throw new IllegalArgumentException("the trace has " + trace.nLayer() + " layers x " + trace.nExpert() + " experts but the model "
                    + layout.layerCount() + " x " + layout.nExpert() + "; give the model the trace was recorded with");
        }
        List<Row> rows = new ArrayList<>();
        for (String b : budgets) {
            long budget = OffloadConfig.parseBudget(b.trim(), layout.totalBytes());
            int slots = (int) (budget / ((layout.maxExpertBytes() + 63) / 64 * 64));
            if (slots < 1) throw new IllegalArgumentException("budget " + b + " holds no expert (one is " + Units.bytes(layout.maxExpertBytes()) + ")");
            for (String e : evictions) {
                String name = EvictionPolicies.REGISTRY.require(e).name();
                // every policy sees the recorded future; only offline bounds (belady) use it
                EvictionPolicy pol = EvictionPolicies.create(name, new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), scoreWindow, trace.keySteps()));
                OffloadStats st = PolicySimulator.simulate(trace, layout, slots, pol, alpha > 0 ? new Substitution(alpha, renormalize) : null, renormalize);
                rows.add(new Row(b.trim(), slots, name, alpha, st));
            }
        }
        return rows;
    }
}
