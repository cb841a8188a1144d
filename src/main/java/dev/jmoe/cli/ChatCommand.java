package dev.jmoe.cli;

import dev.jmoe.generate.ChatMessage;
import dev.jmoe.generate.ChatTemplate;
import dev.jmoe.model.InferenceState;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe chat}: an interactive conversation rendered with the model's chat template. Each turn
 * re-renders the whole conversation and feeds only the tokens past what the KV cache already holds.
 */
@Command(name = "chat", description = "Chat with the model (its chat template; /exit or end of input quits).")
final class ChatCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin ModelOptions modelOptions;
    @Mixin SamplingOptions sampling;
    @Mixin OffloadOptions offload;
    @Mixin PredictOptions predict;

    @Option(names = {"-sys", "--system-prompt"}, description = "system message") String system;
    @Option(names = {"-n", "--n-predict"}, defaultValue = "256", description = "max tokens per reply (default: ${DEFAULT-VALUE})") int nPredict;
    @Option(names = "--stats", description = "print speed after each reply") boolean stats;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (LoadedModel lm = LoadedModel.open(modelOptions, offload)) {
            ChatTemplate template = ChatTemplate.forTokenizer(lm.tokenizer);
            if (template.isFallback() && !modelOptions.quiet) err.println("jmoe: the model has no chat template; using ChatML");
            InferenceState st = lm.newState();
            var offloading = PredictiveOffload.install(offload, predict, lm, st);
            List<ChatMessage> messages = new ArrayList<>();
            if (system != null) messages.add(ChatMessage.system(system));
            int[] fed = new int[0];
            Generation.TokenPicker picker = sampling.picker(lm.tokenizer.vocabSize());
            err.println("jmoe chat: type a message, /exit to quit");
            while (true) {
                out.print("> ");
                out.flush();
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit")) break;
                if (line.isBlank()) continue;
                messages.add(new ChatMessage("user", line));
                int[] all = template.encode(lm.tokenizer, messages, true);
                int common = commonPrefix(fed, all, st.position());
                st.rewind(common);
                int[] delta = java.util.Arrays.copyOfRange(all, common, all.length);
                if (delta.length == 0) { // the whole prompt is cached: re-feed the last token to get fresh logits
                    st.rewind(common - 1);
                    delta = new int[]{all[all.length - 1]};
                }
                StringWriter reply = new StringWriter();
                PrintWriter tee = new PrintWriter(new TeeWriter(out, reply), true);
                GenerationStats s = new GenerationStats();
                Generation gen = new Generation(st, lm.tokenizer, picker, lm.batch, modelOptions.quiet);
                Generation.Stop stop = gen.run(delta, nPredict, false, tee, s);
                out.println();
                messages.add(new ChatMessage("assistant", reply.toString().strip()));
                // What the cache holds now: the prompt plus the reply tokens that were fed back.
                int[] turn = gen.evaluatedTokens();
                fed = java.util.Arrays.copyOf(all, common + turn.length);
                System.arraycopy(turn, 0, fed, common, turn.length);
                if (stop == Generation.Stop.CONTEXT_FULL) {
                    err.println("jmoe: the context is full; starting over with an empty conversation");
                    messages.clear();
                    if (system != null) messages.add(ChatMessage.system(system));
                    st.rewind(0);
                    fed = new int[0];
                }
                if (stats) s.print(err);
                offloading.report(s, stats, err);
            }
        }
        return 0;
    }

    /** Tokens of {@code all} that are already in the cache, i.e. equal to {@code fed} (of which {@code cached} are valid). */
    private static int commonPrefix(int[] fed, int[] all, int cached) {
        int n = Math.min(Math.min(fed.length, all.length), cached);
        int i = 0;
        while (i < n && fed[i] == all[i]) i++;
        return i;
    }

    /** Writes to two writers: the terminal and the transcript of the reply. */
    private static final class TeeWriter extends java.io.Writer {
        private final java.io.Writer a, b;
        TeeWriter(java.io.Writer a, java.io.Writer b) { this.a = a; this.b = b; }
        @Override public void write(char[] c, int off, int len) throws java.io.IOException { a.write(c, off, len); b.write(c, off, len); }
        @Override public void flush() throws java.io.IOException { a.flush(); b.flush(); }
        @Override public void close() {}
    }
}
