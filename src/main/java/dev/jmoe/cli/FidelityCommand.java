package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.eval.Fidelity;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe fidelity MODEL -f TEXT --policy …}: the exact and an approximate run side by side (see {@link Fidelity}). */
@Command(name = "fidelity", description = "Compare an approximate run (offloading policy, alpha, predictor) with the exact one over a text: KL, top-1 agreement, perplexity delta, identical greedy tokens.")
final class FidelityCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin OffloadOptions offload;
    @Mixin PredictOptions predict;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "GGUF file (same as -m)") Path positionalModel;
    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "text to teacher-force") Path textFile;
    @Option(names = "--chunks", defaultValue = "4", description = "chunks of --ctx-size tokens to score, 0 = the whole text (default: ${DEFAULT-VALUE})") int maxChunks;
    @Option(names = "--prompts", defaultValue = "4", description = "greedy prompts cut from the text (default: ${DEFAULT-VALUE})") int prompts;
    @Option(names = "--prompt-tokens", defaultValue = "32", description = "tokens per greedy prompt (default: ${DEFAULT-VALUE})") int promptTokens;
    @Option(names = {"-n", "--n-predict"}, defaultValue = "32", description = "greedy tokens per prompt (default: ${DEFAULT-VALUE})") int nPredict;
    @Option(names = "--json", paramLabel = "FILE", description = "write the figures as JSON") Path json;

    @Override
    public Integer call() throws Exception {
        ModelArgs.positional(modelOptions, positionalModel);
        if (modelOptions.ctxSize == null) modelOptions.ctxSize = 256;
        if (offload.expertMemory == null && !"odmoe".equalsIgnoreCase(offload.policy.trim())) offload.expertMemory = "1/3"; // fidelity needs something to approximate
        if (prompts < 0 || nPredict < 1 || promptTokens < 1) throw new IllegalArgumentException("--prompts must be at least 0, --prompt-tokens and -n at least 1");
        if (!Files.isRegularFile(textFile)) throw new IllegalArgumentException("text file not found: " + textFile);
        String text = Files.readString(textFile, StandardCharsets.UTF_8);
        PrintWriter out = spec.commandLine().getOut();
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            int[] tokens = lm.tokenizer.encode(text, true, false);
            int bos = lm.tokenizer.addBos() ? lm.tokenizer.bos() : -1;
            InferenceState exact = lm.newState();
            InferenceState approx = lm.newState();
            PredictiveOffload po = PredictiveOffload.install(offload, predict, lm, approx);
            Map<String, Object> m = measure(lm, exact, approx, tokens, bos, lm.ctxSize, maxChunks, prompts, promptTokens, nPredict, modelOptions.quiet);
            if (po.stats != null) m.put("offload", po.stats.toMap());
            print(out, m);
            if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), m);
        }
        return 0;
    }

    /** Teacher-forced comparison and greedy agreement, as a JSON-ready map (shared with bench). */
    static Map<String, Object> measure(LoadedModel lm, InferenceState exact, InferenceState approx, int[] tokens, int bos, int nCtx, int maxChunks,
                                       int prompts, int promptTokens, int nPredict, boolean quiet) {
        int chunks = maxChunks > 0 ? Math.min(maxChunks, tokens.length / nCtx) : tokens.length / nCtx;
        Fidelity.Result r;
        try (Status status = new Status("fidelity", quiet)) {
            r = Fidelity.compare(exact, approx, tokens, nCtx, maxChunks, lm.batch, bos, done -> status.update(done, chunks, "chunks"));
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("n_ctx", nCtx);
        m.put("chunks", r.chunks());
        m.put("scored_tokens", r.scored());
        m.put("kl_mean", r.klMean());
        m.put("kl_p99", r.klP99());
        m.put("kl_max", r.klMax());
        m.put("top1_agreement", r.top1());
        m.put("ppl_exact", r.pplExact());
        m.put("ppl_approx", r.pplApprox());
        m.put("ppl_delta", r.pplDelta());
        if (prompts > 0) {
            int[][] ps = TextPrompts.cut(tokens, prompts, promptTokens, bos);
            int[] same = Fidelity.greedyIdentical(exact, approx, ps, nPredict, lm.batch);
            m.put("greedy_prompts", prompts);
            m.put("greedy_tokens", nPredict);
            m.put("greedy_identical_prefix", same);
            m.put("greedy_identical_mean", Arrays.stream(same).average().orElse(0));
            m.put("greedy_all_identical", Arrays.stream(same).filter(s -> s == nPredict).count());
        }
        return m;
    }

    static void print(PrintWriter out, Map<String, Object> m) {
        out.printf(Locale.ROOT, "fidelity over %s chunks of %s (%s scored tokens, decoded one at a time):%n", m.get("chunks"), m.get("n_ctx"), m.get("scored_tokens"));
        out.printf(Locale.ROOT, "  %-26s %.6f nats%n", "KL mean", (double) m.get("kl_mean"));
        out.printf(Locale.ROOT, "  %-26s %.6f nats%n", "KL p99", (double) m.get("kl_p99"));
        out.printf(Locale.ROOT, "  %-26s %.2f%%%n", "top-1 agreement", 100 * (double) m.get("top1_agreement"));
        out.printf(Locale.ROOT, "  %-26s %.4f -> %.4f (%+.3f%%)%n", "perplexity exact -> approx", (double) m.get("ppl_exact"), (double) m.get("ppl_approx"),
                100 * (double) m.get("ppl_delta"));
        if (m.containsKey("greedy_prompts")) {
            out.printf(Locale.ROOT, "  %-26s %.1f of %s tokens on average; %s of %s prompts fully identical%n", "greedy identical prefix",
                    (double) m.get("greedy_identical_mean"), m.get("greedy_tokens"), m.get("greedy_all_identical"), m.get("greedy_prompts"));
        }
        out.flush();
    }
}
