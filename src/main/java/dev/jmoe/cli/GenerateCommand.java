package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.FinishReason;
import dev.jmoe.engine.GenerationResult;
import dev.jmoe.engine.Session;
import dev.jmoe.engine.SessionOptions;
import dev.jmoe.generate.StopRequest;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe generate}: complete a prompt, streaming tokens as they come. */
@Command(name = "generate", description = "Complete a prompt with the model, streaming the text.")
final class GenerateCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "prompt text") String prompt;
    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "read the prompt from a UTF-8 text file") Path promptFile;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "tokens to generate, -1 = until end of text or full context (default: ${DEFAULT-VALUE})")
    int nPredict = 128;
    @Option(names = "--ignore-eos", description = "keep generating past end-of-text tokens") boolean ignoreEos;
    @Option(names = "--no-display-prompt", description = "print only the generated text") boolean noDisplayPrompt;

    @ArgGroup(validate = false, heading = "%nOutput:%n") Output output = new Output();
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nSampling:%n") SamplingOptions sampling = new SamplingOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    static final class Output {
        @Option(names = "--stats", description = "print prompt and decode speed (and the expert runtime's counters) to stderr") boolean stats;
        @Option(names = "--stats-json", paramLabel = "FILE", description = "write the run's figures as JSON") Path statsJson;
        @Option(names = "--trace", paramLabel = "FILE", description = "record every MoE layer's routing (layer, position, chosen experts, router"
                + " scores) as JSON Lines; replay it with jmoe replay") Path trace;
    }

    @Override
    public Integer call() throws Exception {
        String text = TextPrompts.promptText(prompt, promptFile);
        var request = sampling.request(nPredict, ignoreEos);
        Runs.checkWritable(output.statsJson, "--stats-json");
        Runs.checkWritable(output.trace, "--trace");
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (Engine engine = Runs.open(model, memory, prediction, 0, err);
             Session session = engine.newSession(SessionOptions.DEFAULTS.withRoutingTrace(output.trace))) {
            if (!noDisplayPrompt) {
                out.print(text);
                out.flush();
            }
            // Ctrl-C ends the generation, not the process: the text so far, its newline and the statistics are still printed
            // (a second Ctrl-C exits at once)
            try (StopRequest stop = StopRequest.onInterrupt()) {
                GenerationResult r = session.generate(text, request, (token, piece) -> {
                    out.print(piece);
                    out.flush();
                    if (stop.requested()) session.cancel();
                });
                out.println();
                out.flush();
                if (r.finishReason() == FinishReason.CONTEXT_FULL) {
                    err.println("jmoe: stopped: the context of " + session.contextSize() + " tokens is full (raise --ctx-size)");
                } else if (r.finishReason() == FinishReason.CANCELLED) {
                    err.println("jmoe: interrupted after " + r.tokens().length + " tokens");
                }
                if (output.stats) {
                    err.print(r.stats().describe());
                    if (session.offloadStats() != null) err.print(session.offloadStats().table());
                    if (r.stats().predictor() != null) err.println(Reports.describe(r.stats().predictor()));
                }
                if (output.statsJson != null) {
                    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(output.statsJson.toFile(), r.stats());
                }
                err.flush();
            }
        }
        return 0;
    }
}
