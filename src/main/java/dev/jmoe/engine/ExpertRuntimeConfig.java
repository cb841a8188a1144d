package dev.jmoe.engine;

import dev.jmoe.experts.PolicyPresets;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadedExpertSource;
import dev.jmoe.experts.cache.PrefetchRules;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.PredictorSettings;
import dev.jmoe.experts.predict.Predictors;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.experts.store.ExpertStores;
import dev.jmoe.experts.store.Link;
import dev.jmoe.net.ClusterConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a session's routed experts come from and how they are predicted: all resident (the default), or behind an
 * expert-memory budget filled from a slower store through a link, under a policy, with an optional predictor.
 * Every name is checked against its registry ({@code --policy}, {@code --eviction}, {@code --store}, {@code --link},
 * {@code --predictor}) when the record is made, so a wrong value fails before any model is loaded. A null field means
 * "not given": the policy preset's or the default value applies, and {@link #warnings()} can tell which given values
 * have no effect.
 *
 * @param expertMemory  bytes of expert weights allowed in fast memory ({@code 512MiB}, {@code 2GB}), a fraction of the
 *                      model's expert bytes ({@code 1/3}, {@code 0.25}, {@code 25%}), or {@code auto} (what the memory this
 *                      process may use leaves after the JVM, the heap and the non-expert weights); null keeps every expert
 *                      resident when the model fits (see {@link EngineConfig#autoExpertMemory}; {@code odmoe}'s default is
 *                      its working set)
 * @param store         slow tier: direct, host, mmap (default direct)
 * @param link          emulated store-to-fast-memory link: a preset or {@code BANDWIDTH[,LATENCY]} (default unlimited)
 * @param slowCompute   how much slower the slow side computes (default: the link preset's)
 * @param policy        preset (default exact-smoe)
 * @param eviction      overrides the preset's eviction policy
 * @param alpha         overrides the preset's SMoE substitution threshold (0 = exact)
 * @param scoreWindow   decode steps the score eviction averages over (default 16)
 * @param prefetch      overrides the preset's next-layer prefetch
 * @param balance       overrides the preset's load/compute balancing
 * @param loaderThreads threads moving experts into fast memory (default 1)
 * @param predictor     predictor whose predictions start loads early (default none; odmoe: shadow)
 * @param lookahead     layers ahead to predict (default 2, at most the layer count)
 * @param shadowType    shadow precision made at load: q8_0, q4_0 … (default q8_0)
 * @param shadowModel   another GGUF file of the same model to use as the shadow
 * @param alignPeriod   shadow re-alignment {@code TOKENS[,KV]} (default 1,1)
 * @param shadowMargin  runners-up within this relative distance of the shadow's k-th expert are predicted too (default 0.02)
 * @param historyDecay  the history predictor's per-token decay (default 0.8)
 * @param prefetchRule  how the cache predicts the next layer for its own prefetch: gate, smoe (default gate)
 * @param balanceSplit  the order decode misses are split in between loading and the slow side: score (SMoE's two pointers,
 *                      default) or id (each miss in expert-id order)
 * @param slowOverlap   whether the slow side computes in parallel with the fast side (default true) or after the hits
 * @param cluster       distributed OD-MoE ({@code --workers}, {@code --shadow-node}, {@code --group-size}, node security,
 *                      {@code --net}): every routed expert is computed on worker nodes; null runs on this node alone
 */
public record ExpertRuntimeConfig(String expertMemory, String store, String link, Double slowCompute, String policy, String eviction,
                                  Double alpha, Integer scoreWindow, Boolean prefetch, Boolean balance, Integer loaderThreads,
                                  String predictor, Integer lookahead, String shadowType, Path shadowModel, String alignPeriod,
                                  Double shadowMargin, Double historyDecay, String prefetchRule, String balanceSplit, Boolean slowOverlap,
                                  ClusterConfig cluster) {
    /** Every expert resident, no prediction. */
    public static final ExpertRuntimeConfig RESIDENT = builder().build();

    /** Layers ahead a predictor looks by default (OD-MoE's setting; capped by the model's layer count). */
    public static final int DEFAULT_LOOKAHEAD = 2;

    public ExpertRuntimeConfig {
        if (expertMemory != null) {
            expertMemory = expertMemory.trim();
            // syntax only: fractions resolve against the model, auto against the memory plan, when a session installs them
            if (!dev.jmoe.memory.MemoryPlanner.isAuto(expertMemory)) OffloadConfig.parseBudget(expertMemory, 1L << 40);
        }
        if (store != null) store = ExpertStores.REGISTRY.require(store).name();
        if (link != null) Link.parse(link);
        if (slowCompute != null && !(slowCompute >= 1 && slowCompute < 1e6)) {
            throw new IllegalArgumentException("--slow-compute must be a ratio of at least 1, got " + slowCompute);
        }
        if (policy != null) policy = PolicyPresets.REGISTRY.require(policy).name();
        if (eviction != null) eviction = EvictionPolicies.requireOnline(eviction);
        if (alpha != null && !(alpha >= 0 && alpha < 1)) throw new IllegalArgumentException("--alpha must be in [0, 1), got " + alpha);
        if (scoreWindow != null && (scoreWindow < 1 || scoreWindow > 1 << 16)) {
            throw new IllegalArgumentException("--score-window must be between 1 and 65536, got " + scoreWindow);
        }
        if (loaderThreads != null && (loaderThreads < 1 || loaderThreads > 64)) {
            throw new IllegalArgumentException("--loader-threads must be between 1 and 64, got " + loaderThreads);
        }
        if (predictor != null) predictor = Predictors.REGISTRY.require(predictor).name();
        if (lookahead != null && lookahead < 1) throw new IllegalArgumentException("--lookahead must be at least 1, got " + lookahead);
        if (shadowType != null) PredictorSettings.parseShadowType(shadowType);
        if (shadowType != null && shadowModel != null) throw new IllegalArgumentException("give either --shadow TYPE or --shadow-model FILE, not both");
        if (alignPeriod != null) Alignment.parse(alignPeriod);
        if (shadowMargin != null) ShadowPredictor.checkMargin(shadowMargin);
        if (historyDecay != null && !(historyDecay >= 0 && historyDecay <= 1)) {
            throw new IllegalArgumentException("--history-decay must be in [0, 1], got " + historyDecay);
        }
        if (prefetchRule != null) prefetchRule = PrefetchRules.REGISTRY.require(prefetchRule).name();
        if (balanceSplit != null) balanceSplit = parseSplit(balanceSplit).name().toLowerCase(java.util.Locale.ROOT);
    }

    private static OffloadedExpertSource.Split parseSplit(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "score" -> OffloadedExpertSource.Split.SCORE;
            case "id", "expert-id" -> OffloadedExpertSource.Split.ID;
            default -> throw new IllegalArgumentException("--balance-split must be score or id, got '" + s + "'");
        };
    }

    private static boolean justInTime(String policy) {
        return policy != null && PolicyPresets.isJustInTime(policy);
    }

    /** Whether this is OD-MoE's just-in-time loading ({@code --policy odmoe}). */
    public boolean justInTime() { return justInTime(policy); }

    /** Whether routed experts are computed on worker nodes ({@code --workers}). */
    public boolean distributed() { return cluster != null; }

    /** Whether experts sit behind a budget (a cache or the just-in-time working set). */
    public boolean offloads() { return expertMemory != null || justInTime(); }

    /** The predictor that runs ({@code "none"} when none does; odmoe with none loads every expert on demand). */
    public String predictorName() {
        if (predictor != null) return predictor;
        return justInTime() || distributed() ? "shadow" : "none";
    }

    /** Whether a predictor runs. */
    public boolean predicts() { return !predictorName().equals("none"); }

    /** Whether nothing is installed: every expert resident, no predictor. */
    public boolean resident() { return !offloads() && !predicts() && !distributed(); }

    public String storeName() { return store != null ? store : "direct"; }
    public String policyName() { return policy != null ? policy : "exact-smoe"; }

    /** The link with the slow-compute override applied. */
    public Link resolvedLink() {
        Link l = Link.parse(link != null ? link : "unlimited");
        return slowCompute != null ? l.withSlowCompute(slowCompute) : l;
    }

    /**
     * Layers ahead to predict for a model of {@code nLayer} layers (a given --lookahead above twice the layer count is an
     * error; beyond the layer count, predictions guide a predictive eviction but are not prefetched).
     */
    public int lookaheadFor(int nLayer) {
        if (lookahead != null && lookahead > dev.jmoe.experts.predict.Lookahead.MAX_TOKENS * nLayer) {
            throw new IllegalArgumentException("--lookahead " + lookahead + " is more than twice the model's " + nLayer + " layers (two tokens ahead)");
        }
        return lookahead != null ? lookahead : Math.min(DEFAULT_LOOKAHEAD, nLayer);
    }

    /** The predictor settings these fields describe. */
    public PredictorSettings predictorSettings() {
        PredictorSettings s = PredictorSettings.DEFAULTS;
        if (shadowType != null) s = s.withShadowType(PredictorSettings.parseShadowType(shadowType));
        if (shadowModel != null) s = s.withShadowModel(shadowModel);
        if (alignPeriod != null) s = s.withAlignment(Alignment.parse(alignPeriod));
        if (shadowMargin != null) s = s.withMargin(shadowMargin);
        if (historyDecay != null) s = s.withHistoryDecay(historyDecay);
        return s;
    }

    /** The caching configuration (a budget and a caching policy), with every override applied. */
    public OffloadConfig cacheConfig() {
        if (expertMemory == null || justInTime()) throw new IllegalStateException("no expert cache is configured");
        OffloadConfig c = OffloadConfig.preset(policyName(), expertMemory, storeName(), resolvedLink());
        if (eviction != null) c = c.withEviction(eviction);
        if (alpha != null) c = c.withAlpha(alpha);
        if (scoreWindow != null) c = c.withScoreWindow(scoreWindow);
        if (prefetch != null) c = c.withPrefetch(prefetch);
        if (balance != null) c = c.withBalance(balance);
        if (loaderThreads != null) c = c.withLoaderThreads(loaderThreads);
        if (prefetchRule != null) c = c.withPrefetchRule(prefetchRule);
        if (balanceSplit != null) c = c.withSplit(parseSplit(balanceSplit));
        if (slowOverlap != null) c = c.withOverlap(slowOverlap);
        return c;
    }

    /** Given settings that have no effect in this configuration, one message each (e.g. a policy without a budget). */
    public List<String> warnings() {
        List<String> w = new ArrayList<>();
        if (distributed()) {
            List<String> idle = given(expertMemory, "--expert-memory", store, "--store", link, "--link", slowCompute, "--slow-compute",
                    justInTime() ? null : policy, "--policy " + policy, eviction, "--eviction", alpha, "--alpha", scoreWindow, "--score-window",
                    prefetch, "--prefetch", balance, "--balance", loaderThreads, "--loader-threads", prefetchRule, "--prefetch-rule",
                    balanceSplit, "--balance-split", slowOverlap, "--slow-overlap");
            if (!idle.isEmpty()) {
                w.add(String.join(", ", idle) + (idle.size() == 1 ? " has" : " have")
                        + " no effect with --workers (the main node holds no experts; each worker's own flags set its memory, store and link)");
            }
            if (cluster.shadowNode() != null && !predictorName().equals("shadow")) {
                w.add("--shadow-node has no effect with --predictor " + predictorName());
            }
            if (cluster.shadowToWorkers() && !predictorName().equals("shadow")) {
                w.add("--shadow-to-workers has no effect with --predictor " + predictorName());
            }
            if (cluster.shadowNode() != null && (shadowType != null || shadowModel != null)) {
                w.add("--shadow/--shadow-model have no effect with --shadow-node (the shadow node has its own copy)");
            }
            return w;
        }
        if (!offloads()) {
            List<String> idle = given(store, "--store", link, "--link", slowCompute, "--slow-compute", policy, "--policy", eviction, "--eviction",
                    alpha, "--alpha", scoreWindow, "--score-window", prefetch, "--prefetch", balance, "--balance", loaderThreads, "--loader-threads",
                    prefetchRule, "--prefetch-rule", balanceSplit, "--balance-split", slowOverlap, "--slow-overlap");
            if (!idle.isEmpty()) w.add(String.join(", ", idle) + (idle.size() == 1 ? " has" : " have") + " no effect without --expert-memory (every expert stays resident)");
        } else if (justInTime()) {
            List<String> idle = given(eviction, "--eviction", alpha, "--alpha", scoreWindow, "--score-window", prefetch, "--prefetch", balance, "--balance",
                    prefetchRule, "--prefetch-rule", balanceSplit, "--balance-split", slowOverlap, "--slow-overlap");
            if (!idle.isEmpty()) w.add(String.join(", ", idle) + " do not apply to --policy odmoe (no cache: experts are loaded just in time)");
        }
        if (offloads() && !justInTime()) {
            OffloadConfig c = cacheConfig();
            if (prefetchRule != null && (predicts() || !c.prefetch())) {
                w.add("--prefetch-rule has no effect " + (predicts() ? "with --predictor (the predictor drives the prefetch)" : "without prefetch"));
            }
            if ((balanceSplit != null || slowOverlap != null) && !c.balance()) w.add("--balance-split and --slow-overlap have no effect without --balance");
            if (c.eviction().equals("predictive") && !c.prefetch() && !predicts()) {
                w.add("--eviction predictive has no predictions to look ahead with (no --predictor, no prefetch): it evicts the least recently used");
            }
        }
        if (!predicts()) {
            List<String> idle = given(lookahead, "--lookahead", shadowType, "--shadow", shadowModel, "--shadow-model", alignPeriod, "--align-period",
                    shadowMargin, "--shadow-margin", historyDecay, "--history-decay");
            if (!idle.isEmpty()) w.add(String.join(", ", idle) + (idle.size() == 1 ? " has" : " have") + " no effect without --predictor");
        } else if (!offloads()) {
            w.add("--predictor " + predictorName() + " runs, but without --expert-memory its predictions load nothing (it only costs time)");
        }
        return w;
    }

    /** The flags among (value, flag) pairs whose value was given. */
    private static List<String> given(Object... valueFlagPairs) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < valueFlagPairs.length; i += 2) if (valueFlagPairs[i] != null) out.add((String) valueFlagPairs[i + 1]);
        return out;
    }

    public static Builder builder() { return new Builder(); }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.expertMemory = expertMemory; b.store = store; b.link = link; b.slowCompute = slowCompute; b.policy = policy; b.eviction = eviction;
        b.alpha = alpha; b.scoreWindow = scoreWindow; b.prefetch = prefetch; b.balance = balance; b.loaderThreads = loaderThreads;
        b.predictor = predictor; b.lookahead = lookahead; b.shadowType = shadowType; b.shadowModel = shadowModel; b.alignPeriod = alignPeriod;
        b.shadowMargin = shadowMargin; b.historyDecay = historyDecay; b.prefetchRule = prefetchRule; b.balanceSplit = balanceSplit;
        b.slowOverlap = slowOverlap; b.cluster = cluster;
        return b;
    }

    /** Builds an {@link ExpertRuntimeConfig}; unset fields keep their defaults. */
    public static final class Builder {
        private String expertMemory, store, link, policy, eviction, predictor, shadowType, alignPeriod, prefetchRule, balanceSplit;
        private Boolean slowOverlap;
        private Double slowCompute, alpha, shadowMargin, historyDecay;
        private Integer scoreWindow, loaderThreads, lookahead;
        private Boolean prefetch, balance;
        private Path shadowModel;
        private ClusterConfig cluster;

        private Builder() {}

        public Builder expertMemory(String v) { expertMemory = v; return this; }
        public Builder store(String v) { store = v; return this; }
        public Builder link(String v) { link = v; return this; }
        public Builder slowCompute(Double v) { slowCompute = v; return this; }
        public Builder policy(String v) { policy = v; return this; }
        public Builder eviction(String v) { eviction = v; return this; }
        public Builder alpha(Double v) { alpha = v; return this; }
        public Builder scoreWindow(Integer v) { scoreWindow = v; return this; }
        public Builder prefetch(Boolean v) { prefetch = v; return this; }
        public Builder balance(Boolean v) { balance = v; return this; }
        public Builder loaderThreads(Integer v) { loaderThreads = v; return this; }
        public Builder predictor(String v) { predictor = v; return this; }
        public Builder lookahead(Integer v) { lookahead = v; return this; }
        public Builder shadowType(String v) { shadowType = v; return this; }
        public Builder shadowModel(Path v) { shadowModel = v; return this; }
        public Builder alignPeriod(String v) { alignPeriod = v; return this; }
        public Builder shadowMargin(Double v) { shadowMargin = v; return this; }
        public Builder historyDecay(Double v) { historyDecay = v; return this; }
        public Builder prefetchRule(String v) { prefetchRule = v; return this; }
        public Builder balanceSplit(String v) { balanceSplit = v; return this; }
        public Builder slowOverlap(Boolean v) { slowOverlap = v; return this; }
        public Builder cluster(ClusterConfig v) { cluster = v; return this; }

        public ExpertRuntimeConfig build() {
            return new ExpertRuntimeConfig(expertMemory, store, link, slowCompute, policy, eviction, alpha, scoreWindow, prefetch, balance,
                    loaderThreads, predictor, lookahead, shadowType, shadowModel, alignPeriod, shadowMargin, historyDecay, prefetchRule, balanceSplit,
                    slowOverlap, cluster);
        }
    }
}
