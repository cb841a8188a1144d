package dev.jmoe.cli;

import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe generate}: complete a prompt, streaming tokens as they come. */
@Command(name = "generate", description = "Complete a prompt with the model, streaming the text.")
final class GenerateCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin SamplingOptions sampling;
    @Mixin OffloadOptions offload;
    @Mixin PredictOptions predict;
    @Mixin TraceOption trace;

    @Option(names = {"-p", "--prompt"}, description = "prompt text") String prompt;
    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "read the prompt from a file") Path promptFile;
    @Option(names = {"-n", "--n-predict"}, defaultValue = "128", description = "tokens to generate, -1 = until end of text or full context (default: ${DEFAULT-VALUE})") int nPredict;
    @Option(names = "--ignore-eos", description = "keep generating past end-of-text tokens") boolean ignoreEos;
    @Option(names = "--no-display-prompt", description = "print only the generated text") boolean noDisplayPrompt;
    @Option(names = "--stats", description = "print prompt and decode speed to stderr") boolean stats;
    @Option(names = "--stats-json", paramLabel = "FILE", description = "write the run's figures as JSON") Path statsJson;

    @Override
    public Integer call() throws Exception {
        String text = promptText();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            int[] tokens = lm.tokenizer.encode(text, true, true);
            InferenceState st = lm.newState();
            trace.install(lm, st);
            var offloading = PredictiveOffload.install(offload, predict, lm, st);
            if (!noDisplayPrompt) {
                out.print(text);
                out.flush();
            }
            GenerationStats s = new GenerationStats();
            Generation gen = new Generation(st, lm.tokenizer, sampling.picker(lm.tokenizer.vocabSize()), lm.batch, modelOptions.quiet);
            Generation.Stop stop = gen.run(tokens, nPredict, ignoreEos, out, s);
            out.println();
            out.flush();
            if (stop == Generation.Stop.CONTEXT_FULL) err.println("jmoe: stopped: the context of " + lm.ctxSize + " tokens is full (raise --ctx-size)");
            if (stats) s.print(err);
            offloading.report(s, stats, err);
            if (statsJson != null) s.writeJson(statsJson);
        }
        return 0;
    }

    private String promptText() throws java.io.IOException {
        if (prompt != null && promptFile != null) throw new IllegalArgumentException("give either -p or -f, not both");
        if (promptFile != null) {
            if (!Files.isRegularFile(promptFile)) throw new IllegalArgumentException("prompt file not found: " + promptFile);
            String t = Files.readString(promptFile, StandardCharsets.UTF_8);
            return t.endsWith("\n") ? t.substring(0, t.length() - 1) : t; // as llama.cpp reads -f
        }
        return prompt != null ? prompt : "";
    }
}
