package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.eval.Perplexity;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe perplexity MODEL -f TEXT}: llama-perplexity's measurement (see {@link Perplexity}). */
@Command(name = "perplexity", description = "Perplexity of a text, computed the way llama-perplexity does; takes every runtime flag.")
final class PerplexityCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "GGUF file (same as -m)")
    Path positionalModel;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "FILE", description = "UTF-8 text file to score")
    Path textFile;

    @Option(names = "--chunks", paramLabel = "COUNT", description = "score at most COUNT chunks, -1 = all (as llama-perplexity's --chunks) (default: ${DEFAULT-VALUE})")
    int maxChunks = -1;

    @Option(names = "--json", paramLabel = "FILE", description = "write {ppl, chunks, tokens, …} and the runtime's counters as JSON")
    Path json;

    @Option(names = "--trace", paramLabel = "FILE", description = "record every MoE layer's routing as JSON Lines (for jmoe replay)")
    Path trace;

    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    @Override
    public Integer call() throws Exception {
        model.positional(positionalModel);
        if (maxChunks < -1) throw new IllegalArgumentException("--chunks must be -1 (all) or at least 0, got " + maxChunks);
        String text = TextPrompts.readText(textFile, "-f");
        Runs.checkWritable(json, "--json");
        Runs.checkWritable(trace, "--trace");
        PrintWriter out = spec.commandLine().getOut();
        try (Engine engine = Runs.open(model, memory, prediction, 512, spec.commandLine().getErr());
             Session session = engine.newSession(SessionOptions.DEFAULTS.withRoutingTrace(trace))) {
            int nCtx = session.contextSize();
            int[] tokens = engine.tokenize(text);
            if (maxChunks >= 0 && tokens.length > maxChunks * nCtx) tokens = java.util.Arrays.copyOf(tokens, Math.max(maxChunks, 1) * nCtx);
            int bos = engine.tokenizer().addBos() ? engine.tokenizer().bos() : -1;
            int chunks = tokens.length / nCtx;
            out.printf("perplexity: %d tokens, %d chunks of %d, scoring the second half of each%n", tokens.length, chunks, nCtx);
            long t0 = System.nanoTime();
            Perplexity.Result r;
            try (Status status = new Status("perplexity", model.quiet)) {
                r = Perplexity.compute(session.state(), tokens, nCtx, engine.config().batchSize(), bos, done -> status.update(done, chunks, null));
            }
            long nanos = System.nanoTime() - t0;
            double seconds = nanos / 1e9;
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < r.runningPpl().length; i++) sb.append('[').append(i + 1).append(']').append(String.format("%.4f", r.runningPpl()[i])).append(',');
            out.println(sb);
            out.printf("Final estimate: PPL = %.4f +/- %.5f%n", r.ppl(), r.stdError());
            out.printf("%d tokens scored in %.1f s (%.1f tokens/s evaluated)%n", r.scoredTokens(), seconds, chunks * (double) nCtx / seconds);
            // the runtime's counters with this run's timing: the whole text is "prompt" (batched evaluation)
            var stats = session.offloadStats();
            if (stats != null) {
                stats.timing(chunks * nCtx, nanos, 0, 0);
                spec.commandLine().getErr().print(stats.table());
            }
            if (session.predictorReport() != null) spec.commandLine().getErr().println(Reports.describe(session.predictorReport()));
            spec.commandLine().getErr().flush();
            if (json != null) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("model", engine.info().path().toString());
                m.put("file", textFile.toString());
                m.put("ppl", r.ppl());
                m.put("ppl_stderr", r.stdError());
                m.put("chunks", r.chunks());
                m.put("n_ctx", r.nCtx());
                m.put("tokens", tokens.length);
                m.put("scored_tokens", r.scoredTokens());
                m.put("seconds", seconds);
                m.put("tokens_per_s", chunks * (double) nCtx / seconds);
                if (stats != null) m.put("offload", stats.report());
                if (session.predictorReport() != null) m.put("predictor", session.predictorReport());
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), m);
            }
        }
        return 0;
    }
}
