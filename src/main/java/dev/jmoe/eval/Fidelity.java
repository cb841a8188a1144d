package dev.jmoe.eval;

import dev.jmoe.model.InferenceState;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * How far an approximate run (offloading with substitution, another store …) drifts from the exact one,
 * teacher-forced over the same text. Chunks and scored positions are llama-perplexity's (see {@link Perplexity}),
 * but the scored half of each chunk is fed one token at a time: substitution and prefetching act on decode
 * steps only, so a batched pass would measure prefill and hide exactly the approximation being asked about.
 */
public final class Fidelity {
    private Fidelity() {}

    /**
     * @param klMean       mean KL(exact ‖ approximate) of the next-token distributions, in nats
     * @param klP99        99th percentile of the per-token KL
     * @param top1         share of positions where both runs put the same token first
     * @param pplExact     perplexity of the exact run over the scored positions
     * @param pplApprox    perplexity of the approximate run over the same positions
     */
    public record Result(double klMean, double klP99, double klMax, double top1, double pplExact, double pplApprox, int chunks, int scored) {
        /** Relative perplexity change of the approximate run, (approx − exact) / exact. */
        public double pplDelta() { return pplApprox / pplExact - 1; }
    }

    /**
     * Compares {@code approx} with {@code exact} over {@code maxChunks} chunks of {@code nCtx} tokens (all whole
     * chunks if ≤ 0). Both states must belong to models with the same vocabulary.
     */
    public static Result compare(InferenceState exact, InferenceState approx, int[] tokens, int nCtx, int maxChunks, int batch, int bos,
                                 IntConsumer onChunk) {
        if (nCtx < 4) throw new IllegalArgumentException("context for fidelity must be at least 4 tokens, got " + nCtx);
        for (InferenceState s : new InferenceState[]{exact, approx}) {
            if (nCtx > s.kv().capacity()) throw new IllegalArgumentException("context " + nCtx + " exceeds the state's --ctx-size " + s.kv().capacity());
        }
        int vocab = exact.model().hyperparams().nVocab();
        if (approx.model().hyperparams().nVocab() != vocab) throw new IllegalArgumentException("the two models have different vocabularies");
        int chunks = tokens.length / nCtx;
        if (maxChunks > 0) chunks = Math.min(chunks, maxChunks);
        if (chunks == 0) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one chunk of " + nCtx + "; use a longer text or a smaller --ctx-size");
        }
        int first = nCtx / 2;
        int perChunk = nCtx - 1 - first;
        double[] kl = new double[chunks * perChunk];
        int n = 0, agree = 0;
        double nllExact = 0, nllApprox = 0;
        int[] chunk = new int[nCtx];
        for (int c = 0; c < chunks; c++) {
            System.arraycopy(tokens, c * nCtx, chunk, 0, nCtx);
            if (bos >= 0) chunk[0] = bos;
            exact.rewind(0);
            approx.rewind(0);
            // the unscored first half is context: prefill it in batches, then decode the scored half token by token
            float[] le = exact.eval(chunk, 0, first + 1, batch);
            float[] la = approx.eval(chunk, 0, first + 1, batch);
            for (int j = first; j < nCtx - 1; j++) {
                if (j > first) {
                    le = exact.next(chunk[j]);
                    la = approx.next(chunk[j]);
                }
                int target = tokens[c * nCtx + j + 1];
                nllExact -= Perplexity.logSoftmaxAt(le, 0, vocab, target);
                nllApprox -= Perplexity.logSoftmaxAt(la, 0, vocab, target);
                kl[n++] = kl(le, la, vocab);
                if (argmax(le) == argmax(la)) agree++;
            }
            if (onChunk != null) onChunk.accept(c + 1);
        }
        exact.rewind(0);
        approx.rewind(0);
        double sum = 0, max = 0;
        for (int i = 0; i < n; i++) {
            sum += kl[i];
            max = Math.max(max, kl[i]);
        }
        return new Result(sum / n, percentile(kl, n, 0.99), max, (double) agree / n, Math.exp(nllExact / n), Math.exp(nllApprox / n), chunks, n);
    }

    /**
     * Greedy decoding from each prompt on both states: per prompt, how many of the first {@code nPredict} tokens
     * the approximate run produces identically before its first difference.
     */
    public static int[] greedyIdentical(InferenceState exact, InferenceState approx, int[][] prompts, int nPredict, int batch) {
        int[] same = new int[prompts.length];
        for (int p = 0; p < prompts.length; p++) {
            int[] a = greedy(exact, prompts[p], nPredict, batch);
            int[] b = greedy(approx, prompts[p], nPredict, batch);
            int i = 0;
            while (i < nPredict && a[i] == b[i]) i++;
            same[p] = i;
        }
        return same;
    }

    static int[] greedy(InferenceState st, int[] prompt, int n, int batch) {
        if (prompt.length + n > st.kv().capacity()) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens + " + n + " generated exceed the context " + st.kv().capacity());
        }
        st.rewind(0);
        float[] logits = st.eval(prompt, 0, prompt.length, batch);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = argmax(logits);
            if (i + 1 < n) logits = st.next(out[i]);
        }
        st.rewind(0);
        return out;
    }

    /** KL(p ‖ q) of the softmaxes of two logit vectors, in nats (double accumulation). */
    public static double kl(float[] p, float[] q, int n) {
        double mp = Double.NEGATIVE_INFINITY, mq = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            mp = Math.max(mp, p[i]);
            mq = Math.max(mq, q[i]);
        }
        double zp = 0, zq = 0;
        for (int i = 0; i < n; i++) {
            zp += Math.exp(p[i] - mp);
            zq += Math.exp(q[i] - mq);
        }
        double lzp = Math.log(zp), lzq = Math.log(zq), kl = 0;
        for (int i = 0; i < n; i++) {
            double lp = p[i] - mp - lzp, lq = q[i] - mq - lzq;
            kl += Math.exp(lp) * (lp - lq);
        }
        return Math.max(0, kl); // rounding can leave −1e-17 for identical inputs
    }

    static double percentile(double[] v, int n, double q) {
        double[] s = Arrays.copyOf(v, n);
        Arrays.sort(s);
        int i = (int) Math.ceil(q * n) - 1;
        return s[Math.max(0, Math.min(n - 1, i))];
    }

    static int argmax(float[] x) {
        int b = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
        return b;
    }
}
