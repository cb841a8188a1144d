package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.FinishReason;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.engine.GenerationResult;
import dev.jmoe.engine.Session;
import dev.jmoe.generate.StopRequest;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe chat}: an interactive conversation rendered with the model's chat template. Each turn re-renders the
 * whole conversation and feeds only the tokens past what the KV cache already holds.
 */
@Command(name = "chat", description = "Chat with the model through its chat template (/help lists the commands; /exit or end of input quits).")
final class ChatCommand implements Callable<Integer> {
    static final String HELP = "commands: /clear starts the conversation over (the system prompt stays), /help shows this, /exit quits";

    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-sys", "--system-prompt"}, paramLabel = "TEXT", description = "system message") String system;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS",
            description = "most tokens per reply (default: a quarter of the context, so several turns fit)") Integer nPredict;
    @Option(names = "--stats", description = "print speed (and the expert runtime's counters) after each reply") boolean stats;

    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nSampling:%n") SamplingOptions sampling = new SamplingOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (nPredict != null && nPredict < 1) throw new IllegalArgumentException("-n must be at least 1, got " + nPredict);
        sampling.request(1, false); // checks the sampling flags before the model loads
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (Engine engine = Runs.open(model, memory, prediction, 0, err); Session session = engine.newSession()) {
            if (engine.chatTemplate().isFallback() && !model.quiet) err.println("jmoe: the model has no chat template; using ChatML");
            int replyTokens = nPredict != null ? nPredict : Math.max(1, session.contextSize() / 4);
            GenerationRequest request = sampling.request(replyTokens, false);
            session.setSystemPrompt(system);
            err.println("jmoe chat: type a message; " + HELP);
            while (true) {
                out.print("> ");
                out.flush();
                String line = in.readLine();
                if (line == null) break;
                String cmd = line.strip();
                if (cmd.equals("/exit") || cmd.equals("/quit")) break;
                if (cmd.equals("/help")) {
                    err.println(HELP);
                    continue;
                }
                if (cmd.equals("/clear")) {
                    session.clearConversation();
                    err.println("jmoe: conversation cleared");
                    continue;
                }
                if (cmd.startsWith("/")) {
                    err.println("jmoe: unknown command " + cmd + "; " + HELP);
                    continue;
                }
                if (line.isBlank()) continue;
                GenerationResult r;
                // Ctrl-C ends the reply, not the conversation (a second one exits at once)
                try (StopRequest stop = StopRequest.onInterrupt()) {
                    r = session.chat(line, request, (token, text) -> {
                        out.print(text);
                        out.flush();
                        if (stop.requested()) session.cancel();
                    });
                }
                out.println();
                if (r.finishReason() == FinishReason.CANCELLED) err.println("jmoe: reply interrupted");
                if (r.finishReason() == FinishReason.CONTEXT_FULL) err.println("jmoe: the context is full; starting over with an empty conversation");
                if (stats) {
                    err.print(r.stats().describe());
                    if (session.offloadStats() != null) err.print(session.offloadStats().table());
                    if (r.stats().predictor() != null) err.println(Reports.describe(r.stats().predictor()));
                }
                err.flush();
            }
        }
        return 0;
    }
}
