package dev.jmoe.cli;

import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.EvictionPolicy;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.cache.Predictions;
import dev.jmoe.experts.trace.PolicySimulator;
import dev.jmoe.experts.trace.RecordedPredictor;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.experts.trace.RoutingTrace;
import dev.jmoe.experts.trace.SimulatedPredictor;
import dev.jmoe.experts.cache.Substitution;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Eviction policies (and the Belady bound) replayed on a recorded routing trace, per budget: the policy alone, demand
 * loads only. Policies that look ahead are driven by a predictor model ({@link SimulatedPredictor}) at each lookahead and
 * recall asked for; policies that need the router's full probabilities fall back, with a note, on traces that lack them.
 */
final class Replay {
    private Replay() {}

    /**
     * Expert sizes for a replay: bytes per expert of each layer and the slot size, from the model; or, for a trace recorded
     * elsewhere without its model, one unit per expert (budgets are then fractions of the expert count).
     */
    record Sizes(long[] perLayer, long slotBytes, boolean bytes) {
        long total(RoutingTrace t) {
            long sum = 0;
            for (long b : perLayer) sum += b * t.nExpert();
            return sum;
        }
    }

    /**
     * Predictor models to drive look-ahead policies with: lookaheads (layer steps) × recalls, reproducible with the seed;
     * and, when the trace carries a real predictor's recorded predictions ({@code recorded}, else null), those at each
     * lookahead within their depth.
     */
    record PredictorModels(List<Integer> lookaheads, List<Double> recalls, long seed, RoutingTraceFile.Loaded recorded) {
        PredictorModels(List<Integer> lookaheads, List<Double> recalls, long seed) {
            this(lookaheads, recalls, seed, null);
        }
    }

    /**
     * One replayed configuration. {@code lookahead}/{@code recall} are null for policies that do not look ahead;
     * {@code recorded} names the real predictor whose recorded predictions drove it (recall then null), else null.
     */
    record Row(String budget, int slots, String eviction, double alpha, Integer lookahead, Double recall, String recorded, String note, OffloadStats stats) {
        double decodeHitRate() {
            long u = stats.uses(OffloadStats.DECODE);
            // substitutions count as hits here, as SMoE's paper counts them
            return u == 0 ? Double.NaN : (double) (stats.get(OffloadStats.DECODE, Counter.EXACT_HITS) + stats.get(OffloadStats.DECODE, Counter.SUBSTITUTIONS)) / u;
        }

        /** The policy with its predictor model, as tables print it. */
        String label() {
            if (lookahead == null) return eviction;
            if (recorded != null) return String.format(Locale.ROOT, "%s H=%d recorded", eviction, lookahead);
            return String.format(Locale.ROOT, "%s H=%d r=%s", eviction, lookahead, java.math.BigDecimal.valueOf(recall).stripTrailingZeros().toPlainString());
        }

        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("budget", budget);
            m.put("slots", slots);
            m.put("eviction", eviction);
            m.put("alpha", alpha);
            if (lookahead != null) {
                m.put("lookahead", lookahead);
                m.put("recall", recall);
                if (recorded != null) m.put("recorded_predictions", recorded);
            }
            if (note != null) m.put("note", note);
            m.put("decode_hit_rate", decodeHitRate());
            m.put("stats", stats.toMap());
            return m;
        }
    }

    static List<Row> run(RoutingTrace trace, Sizes sizes, boolean renormalize, List<String> budgets, List<String> evictions, double alpha,
                         int scoreWindow, PredictorModels models) {
        List<Row> rows = new ArrayList<>();
        long slotUnit = sizes.bytes() ? (sizes.slotBytes() + 63) / 64 * 64 : 1;
        for (String b : budgets) {
            String spec = b.trim();
            if (!sizes.bytes() && !isFraction(spec)) {
                throw new IllegalArgumentException("--expert-memory " + spec + ": without the trace's model (-m) a budget is a fraction of the experts (1/4, 25%)");
            }
            long budget = OffloadConfig.parseBudget(spec, sizes.total(trace));
            int slots = (int) Math.min(Integer.MAX_VALUE, budget / slotUnit);
            if (slots < 1) throw new IllegalArgumentException("budget " + spec + " holds no expert" + (sizes.bytes() ? " (one is " + Units.bytes(sizes.slotBytes()) + ")" : ""));
            for (String e : evictions) {
                var entry = EvictionPolicies.REGISTRY.require(e);
                String name = entry.name();
                String note = null;
                String replayed = name;
                if (entry.value().needsProbabilities() && trace.detail() != RoutingTrace.Detail.PROBABILITIES) {
                    if (trace.detail() == RoutingTrace.Detail.WEIGHTS) {
                        note = name + " needs every expert's router probability; the trace has the selected experts' weights only: scored by those (0 for the rest)";
                    } else {
                        note = name + " needs the router's probabilities; the trace has expert ids only: replayed as lru";
                        replayed = "lru";
                    }
                }
                if (entry.value().usesPredictions()) {
                    for (int h : models.lookaheads()) {
                        for (double r : models.recalls()) {
                            Predictions view = new Predictions(trace.nLayer(), trace.nExpert());
                            EvictionPolicy pol = EvictionPolicies.create(replayed, new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), scoreWindow,
                                    trace.keySteps(), view));
                            SimulatedPredictor p = new SimulatedPredictor(trace, h, r, models.seed());
                            OffloadStats st = PolicySimulator.simulate(trace, sizes.perLayer(), sizes.slotBytes(), slots, pol, substitution(alpha, renormalize), p, view);
                            rows.add(new Row(spec, slots, name, alpha, h, r, null, note, st));
                        }
                        RoutingTraceFile.Loaded rec = models.recorded();
                        if (rec != null && rec.predictions() != null && h <= rec.predictions().depth()) {
                            Predictions view = new Predictions(trace.nLayer(), trace.nExpert());
                            EvictionPolicy pol = EvictionPolicies.create(replayed, new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), scoreWindow,
                                    trace.keySteps(), view));
                            OffloadStats st = PolicySimulator.simulate(trace, sizes.perLayer(), sizes.slotBytes(), slots, pol, substitution(alpha, renormalize),
                                    new RecordedPredictor(rec, h), view);
                            rows.add(new Row(spec, slots, name, alpha, h, null, rec.predictions().predictor(), note, st));
                        }
                    }
                    continue;
                }
                // every policy sees the recorded future; only offline bounds (belady) use it
                EvictionPolicy pol = EvictionPolicies.create(replayed, new EvictionPolicy.Context(trace.nLayer(), trace.nExpert(), scoreWindow, trace.keySteps()));
                OffloadStats st = PolicySimulator.simulate(trace, sizes.perLayer(), sizes.slotBytes(), slots, pol, substitution(alpha, renormalize), null, null);
                rows.add(new Row(spec, slots, name, alpha, null, null, null, note, st));
            }
        }
        return rows;
    }

    private static Substitution substitution(double alpha, boolean renormalize) {
        return alpha > 0 ? new Substitution(alpha, renormalize) : null;
    }

    private static boolean isFraction(String s) {
        return s.matches("\\s*[0-9]+\\s*/\\s*[0-9]+\\s*") || s.endsWith("%") || s.matches("[0-9]*\\.[0-9]+");
    }
}
