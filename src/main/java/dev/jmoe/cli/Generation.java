package dev.jmoe.cli;

import dev.jmoe.generate.StreamingDecoder;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.util.Arrays;

/**
 * The decode loop shared by generate and chat: feed the prompt in batches, then sample, stream and feed
 * one token at a time until the count, an end-of-generation token or the context limit. Timings go to
 * {@link GenerationStats}.
 */
final class Generation {
    /** Picks the next token from logits given every token so far (for repetition penalties). */
    @FunctionalInterface
    interface TokenPicker {
        int pick(float[] logits, int[] history, int historyLength);
    }

    /** Why a run stopped. */
    enum Stop { COUNT, END_OF_GENERATION, CONTEXT_FULL }

    private final InferenceState state;
    private final Tokenizer tokenizer;
    private final TokenPicker picker;
    private final int batch;
    private final boolean quiet;
    private int[] history = new int[256];
    private int historyLength;
    private int evaluated;

    Generation(InferenceState state, Tokenizer tokenizer, TokenPicker picker, int batch, boolean quiet) {
        this.quiet = quiet;
        this.state = state;
        this.tokenizer = tokenizer;
        this.picker = picker;
        this.batch = batch;
    }

    /**
     * Feeds {@code prompt} (appended to whatever the state already holds) and generates up to {@code maxTokens}
     * tokens (negative: until end of generation or a full context), streaming text to {@code out}.
     */
    Stop run(int[] prompt, int maxTokens, boolean ignoreEos, PrintWriter out, GenerationStats stats) {
        int capacity = state.kv().capacity();
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens to start from)");
        if (state.position() + prompt.length > capacity) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens but only "
                    + (capacity - state.position()) + " fit in the context (--ctx-size " + capacity + ")");
        }
        long t0 = System.nanoTime();
        float[] logits;
        try (Status status = new Status("prompt", quiet)) {
            logits = state.eval(prompt, 0, prompt.length, batch, done -> status.update(done, prompt.length, "tokens"));
        }
        long t1 = System.nanoTime();
        stats.promptTokens += prompt.length;
        stats.promptNanos += t1 - t0;
        for (int tok : prompt) remember(tok);

        StreamingDecoder decoder = new StreamingDecoder(tokenizer);
        Stop stop = Stop.COUNT;
        long decodeStart = System.nanoTime();
        int produced = 0, evals = 0;
        while (maxTokens < 0 || produced < maxTokens) {
            int next = picker.pick(logits, history, historyLength);
            if (stats.firstTokenNanos < 0) stats.firstTokenNanos = System.nanoTime() - t0;
            if (!ignoreEos && tokenizer.isEndOfGeneration(next)) {
                stop = Stop.END_OF_GENERATION;
                break;
            }
            out.print(decoder.accept(next));
            out.flush();
            produced++;
            remember(next);
            if (state.position() >= capacity) {
                stop = Stop.CONTEXT_FULL;
                break;
            }
            if (maxTokens >= 0 && produced >= maxTokens) break;
            logits = state.next(next);
            evals++;
        }
        out.print(decoder.flush());
        out.flush();
        // decode speed counts forward passes after the prompt (the first token comes from the prompt's logits)
        evaluated += prompt.length + evals;
        stats.decodeTokens += evals;
        stats.generatedTokens += produced;
        stats.decodeNanos += System.nanoTime() - decodeStart;
        return stop;
    }

    /** The tokens this generation has fed to the model so far (prompts and the replies fed back), in order. */
    int[] evaluatedTokens() {
        int[] out = new int[evaluated];
        int p = 0;
        // history holds every prompt token and every produced token; a produced token that ended a run was not fed
        for (int i = 0; i < historyLength && p < evaluated; i++) out[p++] = history[i];
        return out;
    }

    private void remember(int token) {
        if (historyLength == history.length) history = Arrays.copyOf(history, history.length * 2);
        history[historyLength++] = token;
    }
}
