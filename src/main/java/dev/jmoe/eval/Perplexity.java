package dev.jmoe.eval;

import dev.jmoe.model.InferenceState;
import java.util.function.IntConsumer;

/**
 * Perplexity by llama-perplexity's method: the token stream is cut into ⌊n / nCtx⌋ chunks, each chunk is
 * evaluated from an empty cache (its first token replaced by BOS when the model adds one), and only the
 * second half is scored — positions nCtx/2 … nCtx−2 predicting the next token — so every scored token has
 * at least nCtx/2 tokens of context.
 */
public final class Perplexity {
    private Perplexity() {}

    /**
     * @param runningPpl perplexity after each chunk, as llama-perplexity prints it
     * @param stdError   standard error of the estimate (same formula llama-perplexity uses: from the NLL variance)
     */
    public record Result(double ppl, double stdError, int chunks, int scoredTokens, int nCtx, double[] runningPpl) {}

    /**
     * @param tokens     the whole text, tokenized (BOS first if {@code bos >= 0})
     * @param bos        BOS id to put at the start of each chunk, or −1 if the model adds none
     * @param onChunk    called with the number of chunks done (progress)
     */
    public static Result compute(InferenceState state, int[] tokens, int nCtx, int batch, int bos, IntConsumer onChunk) {
        if (nCtx < 4) throw new IllegalArgumentException("context for perplexity must be at least 4 tokens, got " + nCtx);
        if (nCtx > state.kv().capacity()) {
            throw new IllegalArgumentException("perplexity context " + nCtx + " exceeds the state's --ctx-size " + state.kv().capacity());
        }
        int chunks = tokens.length / nCtx;
        if (chunks == 0) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one chunk of " + nCtx
                    + "; use a longer text or a smaller --ctx-size");
        }
        int first = nCtx / 2;
        int vocab = state.model().hyperparams().nVocab();
        double nll = 0, nll2 = 0;
        int count = 0;
        double[] running = new double[chunks];
        int[] chunk = new int[nCtx];
        for (int c = 0; c < chunks; c++) {
            System.arraycopy(tokens, c * nCtx, chunk, 0, nCtx);
            if (bos >= 0) chunk[0] = bos;
            state.rewind(0);
            float[] logits = state.evalAll(chunk, 0, nCtx, batch);
            for (int j = first; j < nCtx - 1; j++) {
                int target = tokens[c * nCtx + j + 1];
                double lp = logSoftmaxAt(logits, j * vocab, vocab, target);
                nll -= lp;
                nll2 += lp * lp;
                count++;
            }
            running[c] = Math.exp(nll / count);
            if (onChunk != null) onChunk.accept(c + 1);
        }
        state.rewind(0);
        double mean = nll / count;
        double var = nll2 / count - mean * mean;
        double err = count > 1 && var > 0 ? Math.sqrt(var / (count - 1)) : 0;
        double ppl = Math.exp(mean);
        return new Result(ppl, err * ppl, chunks, count, nCtx, running);
    }

    /** log softmax(logits[off..off+n))[target], in double. */
    public static double logSoftmaxAt(float[] logits, int off, int n, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        return logits[off + target] - max - Math.log(sum);
    }
}
