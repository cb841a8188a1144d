package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.Session;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe logits}: per-position logits in the layout of llama.cpp reference dumps
 * ({@code pos token_id logit_0 … logit_{n_vocab-1}}, floats as %.9g), for conformance and debugging.
 */
@Command(name = "logits", description = "Print the logits the model computes for a token sequence (llama.cpp's reference dump format).")
final class LogitsCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--tokens", paramLabel = "IDS", split = ",", description = "comma-separated token ids")
    int[] tokens;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "text to tokenize instead of --tokens (BOS added as the model says)")
    String prompt;

    @Option(names = "--all", description = "print every position (default: only the last)")
    boolean all;

    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions model = new ModelOptions();
    @ArgGroup(validate = false, heading = "%nExpert memory:%n") ExpertMemoryOptions memory = new ExpertMemoryOptions();
    @ArgGroup(validate = false, heading = "%nPrediction:%n") PredictionOptions prediction = new PredictionOptions();

    @Override
    public Integer call() throws Exception {
        if ((tokens == null) == (prompt == null)) throw new IllegalArgumentException("give exactly one of --tokens or --prompt");
        PrintWriter out = spec.commandLine().getOut();
        try (Engine engine = Runs.open(model, memory, prediction, 0, spec.commandLine().getErr()); Session session = engine.newSession()) {
            int[] ids = tokens != null ? tokens : engine.tokenize(prompt);
            if (ids.length == 0) throw new IllegalArgumentException("no tokens to evaluate");
            int v = engine.info().vocabulary();
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] < 0 || ids[i] >= v) throw new IllegalArgumentException("--tokens: id " + ids[i] + " (item " + (i + 1) + ") is outside the vocabulary [0, " + v + ")");
            }
            if (ids.length > session.contextSize()) throw new IllegalArgumentException(ids.length + " tokens exceed --ctx-size " + session.contextSize());
            float[] logits = session.evaluateAll(ids);
            out.println("# model=" + engine.info().path().getFileName());
            out.println("# n_vocab=" + v);
            out.println("# n_tokens=" + ids.length);
            StringBuilder tl = new StringBuilder("# tokens=");
            for (int i = 0; i < ids.length; i++) tl.append(i == 0 ? "" : ",").append(ids[i]);
            out.println(tl);
            out.println("# format=pos token_id logit_0 ... logit_{n_vocab-1}");
            for (int p = all ? 0 : ids.length - 1; p < ids.length; p++) {
                StringBuilder sb = new StringBuilder().append(p).append(' ').append(ids[p]);
                for (int i = 0; i < v; i++) sb.append(' ').append(FloatFormat.g9(logits[p * v + i]));
                out.println(sb);
            }
        }
        return 0;
    }
}
