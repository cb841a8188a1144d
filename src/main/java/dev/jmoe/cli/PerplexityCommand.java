package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.eval.Perplexity;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe perplexity MODEL -f TEXT}: llama-perplexity's measurement (see {@link Perplexity}). */
@Command(name = "perplexity", description = "Perplexity of a text, computed the way llama-perplexity does.")
final class PerplexityCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin OffloadOptions offload;
    @Mixin PredictOptions predict;
    @Mixin TraceOption trace;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "GGUF file (same as -m)")
    Path positionalModel;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "text file to score")
    Path textFile;

    @Option(names = "--chunks", defaultValue = "-1", description = "score at most N chunks, -1 = all (as llama-perplexity's --chunks) (default: ${DEFAULT-VALUE})")
    int maxChunks;

    @Option(names = "--json", paramLabel = "FILE", description = "write {ppl, chunks, tokens, …} as JSON")
    Path json;

    @Override
    public Integer call() throws Exception {
        if (positionalModel != null) {
            if (modelOptions.model != null) throw new IllegalArgumentException("give the model either as MODEL or with -m, not both");
            modelOptions.model = positionalModel;
        }
        int nCtx = modelOptions.ctxSize != null ? modelOptions.ctxSize : 512;
        modelOptions.ctxSize = nCtx;
        if (!Files.isRegularFile(textFile)) throw new IllegalArgumentException("text file not found: " + textFile);
        String text = Files.readString(textFile, StandardCharsets.UTF_8);
        PrintWriter out = spec.commandLine().getOut();
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            int[] tokens = lm.tokenizer.encode(text, true, false);
            if (maxChunks >= 0 && tokens.length > maxChunks * nCtx) tokens = java.util.Arrays.copyOf(tokens, Math.max(maxChunks, 1) * nCtx);
            int bos = lm.tokenizer.addBos() ? lm.tokenizer.bos() : -1;
            InferenceState st = lm.newState();
            trace.install(lm, st);
            PredictiveOffload offloading = PredictiveOffload.install(offload, predict, lm, st);
            int chunks = tokens.length / nCtx;
            out.printf("perplexity: %d tokens, %d chunks of %d, scoring the second half of each%n", tokens.length, chunks, nCtx);
            long t0 = System.nanoTime();
            Perplexity.Result r;
            try (Status status = new Status("perplexity", modelOptions.quiet)) {
                r = Perplexity.compute(st, tokens, nCtx, lm.batch, bos, done -> status.update(done, chunks, null));
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < r.runningPpl().length; i++) sb.append('[').append(i + 1).append(']').append(String.format("%.4f", r.runningPpl()[i])).append(',');
            out.println(sb);
            out.printf("Final estimate: PPL = %.4f +/- %.5f%n", r.ppl(), r.stdError());
            out.printf("%d tokens scored in %.1f s (%.1f tokens/s evaluated)%n", r.scoredTokens(), seconds, chunks * (double) nCtx / seconds);
            // the runtime's metrics with this run's timing: the whole text is "prompt" (batched evaluation)
            GenerationStats gs = new GenerationStats();
            gs.promptTokens = chunks * nCtx;
            gs.promptNanos = System.nanoTime() - t0;
            gs.firstTokenNanos = gs.promptNanos;
            offloading.report(gs, true, spec.commandLine().getErr());
            if (json != null) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("model", lm.path.toString());
                m.put("file", textFile.toString());
                m.put("ppl", r.ppl());
                m.put("ppl_stderr", r.stdError());
                m.put("chunks", r.chunks());
                m.put("n_ctx", r.nCtx());
                m.put("tokens", tokens.length);
                m.put("scored_tokens", r.scoredTokens());
                m.put("seconds", seconds);
                m.put("tokens_per_s", chunks * (double) nCtx / seconds);
                m.putAll(gs.extra);
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), m);
            }
        }
        return 0;
    }
}
