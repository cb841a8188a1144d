package dev.jmoe.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * What {@code jmoe bench} measures: models, the shared run settings and one or more experiments, each a grid of
 * policy variants × budgets × links × predictors × α. Read from a JSON file (bench/report.json documents the keys)
 * or built from the command's comma-separated flags (one experiment).
 */
record BenchConfig(List<String> models, String text, int prompts, int promptTokens, int nPredict, int warmup, int repeat, String store,
                   int qualityCtx, int qualityChunks, String evalTask, int evalLimit, List<Experiment> experiments, Double slowCompute) {
    /** With the links' own slow-compute ratios. */
    BenchConfig(List<String> models, String text, int prompts, int promptTokens, int nPredict, int warmup, int repeat, String store,
                int qualityCtx, int qualityChunks, String evalTask, int evalLimit, List<Experiment> experiments) {
        this(models, text, prompts, promptTokens, nPredict, warmup, repeat, store, qualityCtx, qualityChunks, evalTask, evalLimit, experiments, null);
    }

    /**
     * A policy variant: a preset ({@code resident} = no offloading, {@code odmoe} = just-in-time from a predictor, or an
     * {@link dev.jmoe.experts.cache.OffloadConfig} preset) with optional overrides; {@code label} names it in tables and plots.
     */
    record Variant(String label, String policy, String eviction, Double alpha, Boolean prefetch, Boolean balance, String prefetchRule,
                   String balanceSplit, Boolean slowOverlap, Integer lookahead) {
        Variant(String label, String policy, String eviction, Double alpha, Boolean prefetch, Boolean balance) {
            this(label, policy, eviction, alpha, prefetch, balance, null, null, null, null);
        }

        boolean resident() { return policy.equals("resident"); }
        boolean odmoe() { return !resident() && dev.jmoe.experts.PolicyPresets.isJustInTime(policy); }
    }

    /**
     * Recall of predictors against the real routing, per lookahead distance (teacher-forced over the text). A predictor
     * is a registered name, or {@code shadow-TYPE} for a shadow of that precision (shadow-q8_0, shadow-q4_0); every shadow
     * is scored at each of {@code margins} (0 = exactly k experts, the papers' metric; above 0 = with runners-up).
     */
    record Recall(List<String> predictors, int maxLookahead, int tokens, List<Double> margins) {}

    /**
     * One experiment. {@code models}: the models it runs on (empty: every model of the config); {@code timing}: whether
     * its time per token is measured (false on models too small for timings to mean anything: one run for hit rates and
     * quality); {@code reference}: the label of the configuration others' times are compared with (default the first).
     */
    record Experiment(String name, String description, List<Variant> variants, List<String> budgets, List<String> links, List<String> predictors,
                      List<Double> alphas, boolean quality, Recall recall, List<String> models, boolean timing, String reference, String shadow,
                      Integer lookahead) {
        Experiment(String name, String description, List<Variant> variants, List<String> budgets, List<String> links, List<String> predictors,
                   List<Double> alphas, boolean quality, Recall recall) {
            this(name, description, variants, budgets, links, predictors, alphas, quality, recall, List.of(), true, null, null, null);
        }

        /** Each configuration compared with the one before it (an ablation adding one mechanism per row). */
        boolean comparesWithPrevious() {
            return "previous".equals(reference);
        }

        /** Whether this experiment runs on {@code model}. */
        boolean runsOn(String model) {
            return models.isEmpty() || model == null || models.contains(model);
        }
    }

    private static final Set<String> TOP_KEYS = Set.of("models", "text", "prompts", "prompt_tokens", "n_predict", "warmup", "repeat", "store",
            "quality_ctx", "quality_chunks", "eval_task", "eval_limit", "experiments", "comment", "slow_compute");
    private static final Set<String> EXP_KEYS = Set.of("name", "description", "policies", "budgets", "links", "predictors", "alphas", "quality",
            "recall", "comment", "models", "timing", "reference", "shadow", "lookahead");
    private static final Set<String> VARIANT_KEYS = Set.of("label", "policy", "eviction", "alpha", "prefetch", "balance", "prefetch_rule", "lookahead",
            "balance_split", "slow_overlap");

    static BenchConfig read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("bench config not found: " + file);
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        String where = file.toString();
        if (root == null || !root.isObject()) throw new IllegalArgumentException(where + ": expected a JSON object");
        unknown(root, TOP_KEYS, where);
        List<Experiment> exps = new ArrayList<>();
        JsonNode ex = root.path("experiments");
        if (!ex.isArray() || ex.isEmpty()) throw new IllegalArgumentException(where + ": \"experiments\" must be a non-empty array");
        for (int i = 0; i < ex.size(); i++) exps.add(experiment(ex.get(i), where + " experiments[" + i + "]"));
        List<String> models = strings(root.path("models"), where + " models");
        for (Experiment e : exps) {
            for (String m : e.models()) if (!models.contains(m)) models.add(m);
        }
        return new BenchConfig(models, root.path("text").asText("models/test.txt"),
                root.path("prompts").asInt(2), root.path("prompt_tokens").asInt(32), root.path("n_predict").asInt(24), root.path("warmup").asInt(1),
                root.path("repeat").asInt(3), root.path("store").asText("direct"), root.path("quality_ctx").asInt(128),
                root.path("quality_chunks").asInt(2), root.path("eval_task").asText(null), root.path("eval_limit").asInt(40), exps,
                root.has("slow_compute") ? dev.jmoe.experts.store.Link.parseRatio(root.get("slow_compute").asText()) : null).validated(where);
    }

    BenchConfig validated(String where) {
        if (prompts < 1 || promptTokens < 1 || nPredict < 1) throw new IllegalArgumentException(where + ": prompts, prompt_tokens and n_predict must be at least 1");
        if (warmup < 0 || repeat < 1) throw new IllegalArgumentException(where + ": warmup must be at least 0 and repeat at least 1");
        if (qualityCtx < 8 || qualityChunks < 1) throw new IllegalArgumentException(where + ": quality_ctx must be at least 8 and quality_chunks at least 1");
        return this;
    }

    private static Experiment experiment(JsonNode n, String where) {
        if (!n.isObject()) throw new IllegalArgumentException(where + ": expected an object");
        unknown(n, EXP_KEYS, where);
        String name = n.path("name").asText(null);
        if (name == null || name.isBlank()) throw new IllegalArgumentException(where + ": needs a \"name\"");
        Recall recall = null;
        if (n.has("recall")) {
            JsonNode r = n.get("recall");
            List<Double> margins = new ArrayList<>();
            for (JsonNode m : r.path("margins")) margins.add(m.asDouble());
            if (margins.isEmpty()) margins.add(0.0);
            for (double m : margins) dev.jmoe.experts.predict.ShadowPredictor.checkMargin(m);
            recall = new Recall(strings(r.path("predictors"), where + " recall.predictors"), r.path("max_lookahead").asInt(3), r.path("tokens").asInt(96),
                    margins);
            if (recall.maxLookahead() < 1 || recall.tokens() < 2) throw new IllegalArgumentException(where + ": recall needs max_lookahead ≥ 1 and tokens ≥ 2");
            for (String p : recall.predictors()) {
                if (p.startsWith("shadow-")) dev.jmoe.experts.predict.PredictorSettings.parseShadowType(p.substring(7));
                else dev.jmoe.experts.predict.Predictors.REGISTRY.require(p);
            }
            return new Experiment(name, n.path("description").asText(""), List.of(), List.of(), List.of(), List.of(), List.of(), false, recall,
                    strings(n.path("models"), where + " models"), false, null, null, null);
        }
        List<Variant> vs = new ArrayList<>();
        JsonNode ps = n.path("policies");
        if (!ps.isArray() || ps.isEmpty()) throw new IllegalArgumentException(where + ": \"policies\" must be a non-empty array");
        for (int i = 0; i < ps.size(); i++) vs.add(variant(ps.get(i), where + " policies[" + i + "]"));
        List<Double> alphas = new ArrayList<>();
        for (JsonNode a : n.path("alphas")) alphas.add(a.asDouble());
        for (String pr : strings(n.path("predictors"), where)) dev.jmoe.experts.predict.Predictors.REGISTRY.require(pr);
        String reference = n.path("reference").asText(null);
        if (reference != null && !reference.equals("previous") && vs.stream().noneMatch(v -> v.label().equals(reference))) {
            throw new IllegalArgumentException(where + ": \"reference\" names no policy label of the experiment (or \"previous\"): " + reference);
        }
        String shadow = n.path("shadow").asText(null);
        if (shadow != null) dev.jmoe.experts.predict.PredictorSettings.parseShadowType(shadow);
        return new Experiment(name, n.path("description").asText(""), vs, orDefault(strings(n.path("budgets"), where), "1/3"),
                orDefault(strings(n.path("links"), where), "unlimited"), orDefault(strings(n.path("predictors"), where), "none"), alphas,
                n.path("quality").asBoolean(false), null, strings(n.path("models"), where + " models"), n.path("timing").asBoolean(true), reference,
                shadow, lookahead(n, where));
    }

    static Variant variant(JsonNode n, String where) {
        if (n.isTextual()) return variant(n.asText(), where);
        if (!n.isObject()) throw new IllegalArgumentException(where + ": a policy is a preset name or an object");
        unknown(n, VARIANT_KEYS, where);
        String policy = n.path("policy").asText(null);
        if (policy == null) throw new IllegalArgumentException(where + ": needs \"policy\"");
        Variant base = variant(policy, where);
        if (n.has("eviction")) dev.jmoe.experts.cache.EvictionPolicies.requireOnline(n.get("eviction").asText());
        if (n.has("prefetch_rule")) dev.jmoe.experts.cache.PrefetchRules.REGISTRY.require(n.get("prefetch_rule").asText());
        String split = n.has("balance_split") ? n.get("balance_split").asText() : null;
        if (split != null && !split.equals("score") && !split.equals("id")) throw new IllegalArgumentException(where + ": balance_split must be score or id");
        return new Variant(n.path("label").asText(policy), base.policy(), n.has("eviction") ? n.get("eviction").asText() : null,
                n.has("alpha") ? n.get("alpha").asDouble() : null, n.has("prefetch") ? n.get("prefetch").asBoolean() : null,
                n.has("balance") ? n.get("balance").asBoolean() : null, n.has("prefetch_rule") ? n.get("prefetch_rule").asText() : null, split,
                n.has("slow_overlap") ? n.get("slow_overlap").asBoolean() : null, variantLookahead(n, where));
    }

    /** A variant's own lookahead (layer steps), overriding the experiment's: compares one predictor's horizons in the same rounds. */
    private static Integer variantLookahead(JsonNode n, String where) {
        if (!n.has("lookahead")) return null;
        JsonNode v = n.get("lookahead");
        if (!v.canConvertToInt() || v.asInt() < 1) throw new IllegalArgumentException(where + ": a policy's \"lookahead\" must be a positive number of layers");
        return v.asInt();
    }

    static Variant variant(String name, String where) {
        String p = name.trim().toLowerCase(Locale.ROOT);
        if (!p.equals("resident")) {
            var e = dev.jmoe.experts.PolicyPresets.REGISTRY.find(p);
            if (e == null) {
                throw new IllegalArgumentException(where + ": unknown policy '" + name + "'; choose resident or one of "
                        + String.join(", ", dev.jmoe.experts.PolicyPresets.REGISTRY.names()));
            }
            p = e.name();
        }
        return new Variant(p, p, null, null, null, null);
    }

    /** Layers ahead the experiment's predictors look ("lookahead": a number, or "layers" for one token: the model's layer count). */
    private static Integer lookahead(JsonNode n, String where) {
        if (!n.has("lookahead")) return null;
        JsonNode v = n.get("lookahead");
        if (v.isTextual() && v.asText().equals("layers")) return 0;
        if (!v.canConvertToInt() || v.asInt() < 1) throw new IllegalArgumentException(where + ": \"lookahead\" must be a positive number of layers or \"layers\"");
        return v.asInt();
    }

    private static List<String> strings(JsonNode n, String where) {
        List<String> out = new ArrayList<>();
        if (n.isMissingNode() || n.isNull()) return out;
        if (!n.isArray()) throw new IllegalArgumentException(where + ": expected an array of strings");
        for (JsonNode s : n) out.add(s.asText());
        return out;
    }

    private static List<String> orDefault(List<String> l, String d) {
        return l.isEmpty() ? List.of(d) : l;
    }

    private static void unknown(JsonNode n, Set<String> known, String where) {
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!known.contains(f)) throw new IllegalArgumentException(where + ": unknown key \"" + f + "\"; known: " + known);
        }
    }
}
