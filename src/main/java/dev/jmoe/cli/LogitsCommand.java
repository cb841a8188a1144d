package dev.jmoe.cli;

import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe logits}: per-position logits in the layout of llama.cpp reference dumps
 * ({@code pos token_id logit_0 … logit_{n_vocab-1}}, floats as %.9g), for conformance and debugging.
 */
@Command(name = "logits", description = "Print the logits the model computes for a token sequence.")
final class LogitsCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin OffloadOptions offload;

    @Option(names = "--tokens", paramLabel = "IDS", split = ",", description = "comma-separated token ids")
    int[] tokens;

    @Option(names = {"-p", "--prompt"}, description = "text to tokenize instead of --tokens (BOS added as the model says)")
    String prompt;

    @Option(names = "--all", description = "print every position (default: only the last)")
    boolean all;

    @Override
    public Integer call() throws Exception {
        if ((tokens == null) == (prompt == null)) throw new IllegalArgumentException("give exactly one of --tokens or --prompt");
        PrintWriter out = spec.commandLine().getOut();
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            int[] ids = tokens != null ? tokens : lm.tokenizer.encode(prompt, true, false);
            if (ids.length == 0) throw new IllegalArgumentException("no tokens to evaluate");
            if (ids.length > lm.ctxSize) throw new IllegalArgumentException(ids.length + " tokens exceed --ctx-size " + lm.ctxSize);
            int v = lm.model.hyperparams().nVocab();
            InferenceState st = lm.newState();
            offload.install(lm, st);
            float[] logits = st.evalAll(ids, 0, ids.length, lm.batch);
            out.println("# model=" + lm.path.getFileName());
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
