package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.eval.MultipleChoice;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe eval MODEL --task FILE.jsonl}: multiple choice by log-likelihood (see {@link MultipleChoice}). */
@Command(name = "eval", description = "Multiple-choice accuracy by log-likelihood (lm-evaluation-harness style) on a JSONL task; takes every runtime flag.")
final class EvalCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin OffloadOptions offload;
    @Mixin PredictOptions predict;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "GGUF file (same as -m)") Path positionalModel;
    @Option(names = "--task", required = true, paramLabel = "FILE", description = "JSON Lines, one {\"context\", \"choices\", \"gold\"} per line") Path task;
    @Option(names = "--limit", defaultValue = "0", description = "score only the first N items, 0 = all (default: ${DEFAULT-VALUE})") int limit;
    @Option(names = "--json", paramLabel = "FILE", description = "write {accuracy, accuracy_norm, items, …} as JSON") Path json;

    @Override
    public Integer call() throws Exception {
        ModelArgs.positional(modelOptions, positionalModel);
        if (limit < 0) throw new IllegalArgumentException("--limit must be at least 0");
        List<MultipleChoice.Item> items = MultipleChoice.read(task);
        if (modelOptions.ctxSize == null) modelOptions.ctxSize = 512;
        PrintWriter out = spec.commandLine().getOut();
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            InferenceState st = lm.newState();
            PredictiveOffload po = PredictiveOffload.install(offload, predict, lm, st);
            long t0 = System.nanoTime();
            Map<String, Object> m = measure(lm, st, items, limit, modelOptions.quiet);
            m.put("seconds", (System.nanoTime() - t0) / 1e9);
            m.put("task", task.toString());
            if (po.stats != null) m.put("offload", po.stats.toMap());
            out.printf(Locale.ROOT, "%s: %d items, accuracy %.2f%%, normalized accuracy %.2f%% (chance %.1f%%)%n", task.getFileName(), (int) m.get("items"),
                    100 * (double) m.get("accuracy"), 100 * (double) m.get("accuracy_norm"), 100 * (double) m.get("chance"));
            if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), m);
        }
        return 0;
    }

    static Map<String, Object> measure(LoadedModel lm, InferenceState st, List<MultipleChoice.Item> items, int limit, boolean quiet) {
        int n = limit > 0 ? Math.min(limit, items.size()) : items.size();
        MultipleChoice.Result r;
        try (Status status = new Status("eval", quiet)) {
            r = MultipleChoice.evaluate(st, lm.tokenizer, items, limit, lm.batch, done -> status.update(done, n, "items"));
        }
        double chance = items.subList(0, n).stream().mapToDouble(i -> 1.0 / i.choices().size()).average().orElse(0);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("items", r.items());
        m.put("accuracy", r.accuracy());
        m.put("accuracy_norm", r.accuracyNorm());
        m.put("chance", chance);
        return m;
    }
}
