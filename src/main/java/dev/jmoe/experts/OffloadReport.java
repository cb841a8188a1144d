package dev.jmoe.experts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.annotation.JsonUnwrapped;

/**
 * What an offloaded run did, as one typed value: its settings, its fast memory, and the counters of both phases
 * ({@link OffloadStats}). Serialised by Jackson with the keys {@code --stats-json} has always written.
 */
@JsonPropertyOrder({"policy", "eviction", "alpha", "prefetch", "balance", "balance_note", "store", "link", "slow_compute", "expert_bytes_total",
        "store_note", "transient_slots", "predictor", "lookahead", "prefetch_rule", "balance_split", "slow_overlap", "expert_memory_plan", "expert_memory_note", "budget_bytes", "slots", "slot_bytes", "peak_resident_expert_bytes", "prefill",
        "decode"})
public record OffloadReport(@JsonUnwrapped Settings settings,
                            @JsonProperty("budget_bytes") long budgetBytes,
                            @JsonProperty("slots") long slots,
                            @JsonProperty("slot_bytes") long slotBytes,
                            @JsonProperty("peak_resident_expert_bytes") long peakResidentExpertBytes,
                            @JsonProperty("prefill") Phase prefill,
                            @JsonProperty("decode") Phase decode,
                            @JsonUnwrapped Timing timing) {

    /** How the run was set up (absent fields did not apply). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Settings(@JsonProperty("policy") String policy,
                           @JsonProperty("eviction") String eviction,
                           @JsonProperty("alpha") Double alpha,
                           @JsonProperty("prefetch") Boolean prefetch,
                           @JsonProperty("balance") Boolean balance,
                           @JsonProperty("balance_note") String balanceNote,
                           @JsonProperty("store") String store,
                           @JsonProperty("link") String link,
                           @JsonProperty("slow_compute") Double slowCompute,
                           @JsonProperty("expert_bytes_total") Long expertBytesTotal,
                           @JsonProperty("store_note") String storeNote,
                           @JsonProperty("transient_slots") Integer transientSlots,
                           @JsonProperty("predictor") String predictor,
                           @JsonProperty("lookahead") Integer lookahead,
                           @JsonProperty("expert_memory_plan") String memoryPlan,
                           @JsonProperty("expert_memory_note") String budgetNote,
                           @JsonProperty("prefetch_rule") String prefetchRule,
                           @JsonProperty("balance_split") String balanceSplit,
                           @JsonProperty("slow_overlap") Boolean slowOverlap) {
        public static final Settings NONE = new Settings(null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null);

        /** The cache's scheduling: its own prefetch rule, the order misses are split in, whether the slow side runs in parallel. */
        public Settings withScheduling(String prefetchRule, String balanceSplit, Boolean slowOverlap) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withPolicy(String policy, String eviction, Double alpha, Boolean prefetch, Boolean balance) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withStore(String store, String link, Double slowCompute, Long expertBytesTotal, String storeNote) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withBalanceNote(String note) {
            return new Settings(policy, eviction, alpha, prefetch, balance, note, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withTransientSlots(int n) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    n, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withBudgetNote(String note) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, note, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withMemoryPlan(String plan) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, plan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }

        public Settings withPredictor(String predictor, Integer lookahead) {
            return new Settings(policy, eviction, alpha, prefetch, balance, balanceNote, store, link, slowCompute, expertBytesTotal, storeNote,
                    transientSlots, predictor, lookahead, memoryPlan, budgetNote, prefetchRule, balanceSplit, slowOverlap);
        }
    }

    /** One phase's counters (prefill: batches of several tokens; decode: one token per step). */
    @JsonPropertyOrder({"exact_hits", "substitutions", "prefetch_hits", "misses_loaded", "misses_computed", "prefetches_issued",
            "prefetches_cancelled", "prefetches_wasted", "evictions", "loads", "bytes_moved", "stall_ns", "slow_compute_ns", "moe_layer_steps",
            "expert_uses", "hit_rate", "substitution_rate"})
    public record Phase(@JsonProperty("exact_hits") long exactHits,
                        @JsonProperty("substitutions") long substitutions,
                        @JsonProperty("prefetch_hits") long prefetchHits,
                        @JsonProperty("misses_loaded") long missesLoaded,
                        @JsonProperty("misses_computed") long missesComputed,
                        @JsonProperty("prefetches_issued") long prefetchesIssued,
                        @JsonProperty("prefetches_cancelled") long prefetchesCancelled,
                        @JsonProperty("prefetches_wasted") long prefetchesWasted,
                        @JsonProperty("evictions") long evictions,
                        @JsonProperty("loads") long loads,
                        @JsonProperty("bytes_moved") long bytesMoved,
                        @JsonProperty("stall_ns") long stallNanos,
                        @JsonProperty("slow_compute_ns") long slowComputeNanos,
                        @JsonProperty("moe_layer_steps") long moeLayerSteps,
                        @JsonProperty("expert_uses") long expertUses,
                        @JsonProperty("hit_rate") double hitRate,
                        @JsonProperty("substitution_rate") double substitutionRate) {}

    /** The timing of the run that produced the counters, when the command driving it reported one. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Timing(@JsonProperty("prompt_tokens") Integer promptTokens,
                         @JsonProperty("ttft_ms") Double ttftMs,
                         @JsonProperty("decode_tokens") Integer decodeTokens,
                         @JsonProperty("decode_ms_per_token") Double decodeMsPerToken) {
        public static final Timing NONE = new Timing(null, null, null, null);
    }
}
