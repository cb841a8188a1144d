package dev.jmoe.experts.predict;

import dev.jmoe.model.InferenceState;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.Parallel;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * OD-MoE's emulative predictor: a lower-precision copy of the model (the shadow) runs the same tokens ahead
 * of the main model and its routers' choices are the prediction. The shadow has its own KV cache and a
 * one-thread pool and, when {@linkplain Mode#THREAD threaded}, its own thread; it starts a token as soon as
 * the main model does and, being cheaper, is layers ahead of it, then speculates the next token with its
 * {@link NextTokenRule} (see {@link ShadowRunner} for alignment and catch-up).
 *
 * <p>{@link #predict} reads the shadow's published routing without waiting. A layer the shadow has not
 * reached (or a guess built on a token the main model did not run) falls back to another predictor, so the
 * main pass never waits for the shadow.
 */
public final class ShadowPredictor implements ExpertPredictor {
    /** How the shadow is run. */
    public enum Mode {
        /** On its own thread, concurrently with the main pass (deployment). */
        THREAD,
        /** Inline when the main model announces a token, to completion: every prediction the shadow can make is
         *  ready before the main pass needs it. Reproducible; used to measure prediction quality. */
        INLINE
    }

    /** Counters of a shadow run. */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    public record Stats(@JsonProperty("predictions_from_shadow") long served,
                        @JsonProperty("predictions_from_fallback") long fallbacks,
                        @JsonProperty("shadow_positions_run") long positionsRun,
                        @JsonProperty("speculated_tokens") long guesses,
                        @JsonProperty("speculated_tokens_right") long guessHits,
                        @JsonProperty("positions_redone_by_token_alignment") long redone,
                        @JsonProperty("positions_copied_from_main") long adopted,
                        @JsonProperty("passes_abandoned") long abandoned,
                        @JsonProperty("kv_aligned_positions") long kvAlignedPositions,
                        @com.fasterxml.jackson.annotation.JsonIgnore long cpuNanos) {
        /** CPU time of the shadow thread, once it has ended; null before. */
        @JsonProperty("shadow_thread_cpu_ms")
        public Double cpuMillis() {
            return cpuNanos >= 0 ? Math.round(cpuNanos / 1e4) / 100.0 : null;
        }
    }

    private final String name;
    private final ShadowRunner runner;
    private final RoutingBoard board;
    private final Alignment align;
    private final ExpertPredictor fallback;
    private final Parallel pool;
    private final Parallel.Competitor competing;
    private final Mode mode;
    private final int nLayer, k;
    private volatile double margin;
    private final Thread thread;
    private final AtomicLong served = new AtomicLong(), fallbacks = new AtomicLong();
    private volatile Throwable failure;
    private volatile long cpuAtExit = -1;
    private final Model shadowModel;
    /** Single-token passes the shadow thread runs on a scratch state before following the main model: at least the first, at most the second. */
    static final int WARMUP_MIN = 8, WARMUP_MAX = 256;
    private final java.util.concurrent.CountDownLatch warm = new java.util.concurrent.CountDownLatch(1);
    private volatile boolean closed;

    /**
     * @param main        the main model's state the shadow follows (tokens and KV entries are read from it)
     * @param shadowModel a copy of the main model at another precision ({@link Requantizer#copyAs}) or another file of it
     * @param fallback    answers for layers the shadow has not published (never null; {@link NoPredictor} for none)
     */
    public ShadowPredictor(String name, InferenceState main, Model shadowModel, Alignment align, NextTokenRule rule, ExpertPredictor fallback,
                           Mode mode) {
        if (fallback == null) throw new IllegalArgumentException("a shadow needs a fallback predictor (NoPredictor for none)");
        Requantizer.requireSameShape(main.model(), shadowModel, name);
        this.name = name;
        this.align = align;
        this.fallback = fallback;
        this.mode = mode;
        this.nLayer = main.model().hyperparams().nLayer();
        this.k = Math.max(1, main.model().hyperparams().nExpertUsed());
        // positions t − 1 … t + 2 (two speculated tokens) must not share a slot
        this.board = new RoutingBoard(nLayer, Lookahead.MAX_TOKENS + 2);
        this.pool = new Parallel(1);
        InferenceState shadow = shadowModel.newState(main.kv().capacity(), pool);
        this.runner = new ShadowRunner(main, shadow, board, align, rule, 1, mode == Mode.THREAD);
        this.shadowModel = shadowModel;
        // The shadow thread needs a core of its own: the main pool stops spinning when that oversubscribes them.
        this.competing = mode == Mode.THREAD && main.pool() != null ? main.pool().addCompetitor() : null;
        this.thread = mode == Mode.THREAD ? Thread.ofPlatform().daemon().name("jmoe-shadow").start(this::loop) : null;
    }

    @Override public String name() { return name; }

    /**
     * Speculates as many tokens past the main model's as {@code depth} layer steps span (one up to the layer count, two
     * beyond it), so a lookahead across the token boundary is answered by the shadow's run of the next token rather
     * than by the fallback. Its speculative positions are redone (token alignment) or overwritten with the main
     * model's KV entries (KV alignment) once the main model runs them, as with one token.
     */
    @Override
    public void lookahead(int depth) {
        runner.speculate(Lookahead.tokensAhead(depth, nLayer));
    }

    /** Tokens the shadow runs past the main model's current one. */
    public int speculationDepth() { return runner.speculation(); }

    /** The adaptive-width margin (0 = exactly k experts per prediction). */
    public double margin() { return margin; }

    /** Returns {@code margin} if it is a valid adaptive-width margin, in [0, 1). */
    public static double checkMargin(double margin) {
        if (!(margin >= 0 && margin < 1)) throw new IllegalArgumentException("--shadow-margin must be in [0, 1), got " + margin);
        return margin;
    }

    /**
     * Adaptive width: with {@code margin > 0} a prediction is the shadow router's k best experts plus every
     * runner-up whose probability is within {@code margin} (relative) of the k-th — a near tie the main router may
     * break the other way — as far as the caller's buffer allows; callers then pass buffers wider than k. With 0
     * (the default) it is the shadow's ranking cut at the buffer's length.
     */
    public ShadowPredictor withMargin(double margin) {
        this.margin = checkMargin(margin);
        return this;
    }

    /** Receives each routing the shadow publishes, on the shadow's thread, as soon as its router has run. */
    public interface PublishListener {
        /**
         * @param ranking experts best first (not to be modified)
         * @param probs   their probabilities, same order
         */
        void published(int layer, int pos, int token, int prevToken, int[] ranking, float[] probs);
    }

    /** Forwards every published routing to {@code listener} too (a shadow node sends them to its main node). */
    public ShadowPredictor onPublish(PublishListener listener) {
        board.listen(listener == null ? null : (layer, e) -> listener.published(layer, e.pos(), e.token(), e.prevToken(), e.ranking(), e.probs()));
        return this;
    }

    /** The predictor asked when the shadow has nothing for a layer. */
    public ExpertPredictor fallback() { return fallback; }

    /** The shadow's own state (its KV cache is what alignment overwrites). */
    public InferenceState shadowState() { return runner.shadowState(); }

    /** The shadow's failure if it stopped with an error (predictions then all come from the fallback), else null. */
    public Throwable failure() { return failure; }

    /** Called on the shadow's thread at each layer it reaches; tests use it to slow or stall the shadow. */
    void setLayerListener(IntConsumer listener) { runner.setLayerListener(listener); }

    @Override
    public void onTokens(int pos, int[] tokens, int off, int n) {
        fallback.onTokens(pos, tokens, off, n);
        runner.announce(pos, tokens, off, n);
        if (mode == Mode.INLINE) {
            while (runner.workOnce()) { /* run until the shadow has done all it can */ }
        } else {
            LockSupport.unpark(thread);
        }
    }

    @Override
    public void onLayer(int layer, int pos, float[] residual, float[] normed) {
        fallback.onLayer(layer, pos, residual, normed);
    }

    @Override
    public void observe(int layer, int pos, int[] experts, int k, float[] probs, int probsOff) {
        fallback.observe(layer, pos, experts, k, probs, probsOff);
    }

    @Override
    public int predict(int pos, int layer, int distance, int[] out) {
        int tp = Lookahead.targetPos(pos, layer, distance, nLayer), tl = Lookahead.targetLayer(layer, distance, nLayer);
        RoutingBoard.Entry e = board.get(tp, tl);
        if (e != null && consistent(e, tp)) {
            int n = Math.min(out.length, e.ranking().length);
            if (margin > 0 && e.probs() != null && n > k) {
                // the router's k best, then any runner-up the shadow cannot tell apart from the k-th
                float kth = e.probs()[k - 1];
                int m = k;
                while (m < n && e.probs()[m] >= (1 - margin) * kth) m++;
                n = m;
            }
            System.arraycopy(e.ranking(), 0, out, 0, n);
            served.incrementAndGet();
            return n;
        }
        fallbacks.incrementAndGet();
        return fallback.predict(pos, layer, distance, out);
    }

    /** An entry is stale if a token it was built on is known to differ from the main model's at an aligned position. */
    private boolean consistent(RoutingBoard.Entry e, int tp) {
        int t = runner.mainToken(tp);
        if (t >= 0 && align.alignsToken(tp) && e.token() != t) return false;
        int prev = runner.mainToken(tp - 1);
        return !(prev >= 0 && align.alignsToken(tp - 1) && e.prevToken() != prev);
    }

    public Stats stats() {
        long cpu = -1;
        if (thread != null) {
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            if (mx.isThreadCpuTimeSupported()) cpu = thread.isAlive() ? mx.getThreadCpuTime(thread.threadId()) : cpuAtExit;
        }
        return new Stats(served.get(), fallbacks.get(), runner.positionsRun.get(), runner.guesses.get(), runner.guessHits.get(),
                runner.redone.get(), runner.adopted.get(), runner.abandoned.get(), runner.kvAligned.get(), cpu);
    }

    private void loop() {
        try {
            warmUp();
            while (!closed) {
                try {
                    if (!runner.workOnce()) LockSupport.park(this);
                } catch (ShadowRunner.Superseded s) {
                    runner.afterAbandon();
                }
            }
        } catch (Throwable t) {
            // The shadow only ever improves prefetching: on failure, leave the main model to the fallback.
            failure = t;
        } finally {
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            if (mx.isCurrentThreadCpuTimeSupported()) cpuAtExit = mx.getCurrentThreadCpuTime();
        }
    }

    /**
     * Passes on a scratch state first: the shadow's kernels (its weight types may be ones the main model never
     * runs) start interpreted, where the Vector API is a hundred times slower, until the JIT compiles them; a shadow
     * that slow would be overtaken, abandon its pass and never catch up. It runs passes until one is no slower than
     * 1.25× the fastest so far (compiled), at least {@link #WARMUP_MIN}. On the shadow thread: the main model never waits.
     */
    private void warmUp() {
        try {
            InferenceState scratch = shadowModel.newState(16, pool);
            int vocab = shadowModel.hyperparams().nVocab();
            long best = Long.MAX_VALUE;
            for (int i = 0; i < WARMUP_MAX && !closed; i++) {
                if (scratch.position() == 16) scratch.rewind(0);
                long t0 = System.nanoTime();
                scratch.next((1 + 31 * i) % vocab);
                long took = System.nanoTime() - t0;
                best = Math.min(best, took);
                if (i + 1 >= WARMUP_MIN && took <= best * 1.25) break;
            }
        } finally {
            warm.countDown();
        }
    }

    /**
     * Waits until the shadow thread has warmed up (or {@code seconds} passed); true if it has. Measurements call
     * this before they start so as not to count the shadow's JIT warm-up; a run does not need to.
     */
    public boolean awaitWarm(double seconds) throws InterruptedException {
        return thread == null || warm.await((long) (seconds * 1000), java.util.concurrent.TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        runner.close();
        if (thread != null) {
            LockSupport.unpark(thread);
            try {
                thread.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        pool.close();
        fallback.close();
        if (competing != null) competing.close();
    }
}
