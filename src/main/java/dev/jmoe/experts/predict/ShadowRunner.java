package dev.jmoe.experts.predict;

import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Routing;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;

/**
 * Drives a shadow model (its own {@link InferenceState}, KV cache and pool) alongside the main model and
 * publishes every layer's routing on a {@link RoutingBoard} the moment the shadow's router has run.
 *
 * <p>The main side only {@link #announce}s the tokens it starts; it never waits. The shadow side calls
 * {@link #workOnce} repeatedly (its own thread, or inline for reproducible evaluation), and each call does the
 * next useful thing:
 * <ol>
 *   <li>when the main model went back (a rewind), it goes back too;</li>
 *   <li>token alignment: a position it ran with a guessed token that the main model has now run with another
 *       is redone (if the alignment period covers that position);</li>
 *   <li>catch-up: positions the main model has completed that the shadow never ran are copied from the main
 *       KV cache instead of computed (after a prompt batch, or when the shadow fell behind);</li>
 *   <li>KV alignment: once enough positions have completed, the shadow's KV entries for them are overwritten
 *       with the main model's;</li>
 *   <li>it runs the next position: the token the main model is running, then up to {@code ahead} positions
 *       past it with tokens from its {@link NextTokenRule} (speculation, since the main model has not sampled
 *       them yet).</li>
 * </ol>
 * Work on a position the main model has already passed is abandoned mid-pass ({@link Superseded}) so the
 * shadow never lags more than the position being computed.
 */
final class ShadowRunner {
    /** Thrown from the shadow's own layer hook to abandon a pass that is no longer useful. */
    static final class Superseded extends RuntimeException {
        Superseded() { super("shadow pass superseded", null, false, false); }
    }

    /** What the main model has announced: it is running [start, end); tokens of [0, end) are known. */
    private record Cursor(int start, int end, int epoch) {}

    private final InferenceState main, shadow;
    private final RoutingBoard board;
    private final Alignment align;
    private final NextTokenRule rule;
    private final int nExpert, publishWidth;
    private volatile int ahead;
    private final boolean abandonStale;

    // main → shadow
    private final int[] mainTokens;
    private volatile Cursor cursor;
    private int announcedEnd; // main thread only

    // shadow side only
    private final int[] ownTokens;
    private final boolean[] guessed;
    private int verifiedTo, kvAlignedTo, seenEpoch;
    private float[] logits;
    private int logitsPos = -1;
    private volatile boolean closed;
    private IntConsumer layerListener;

    // counters, read by any thread
    final AtomicLong positionsRun = new AtomicLong(), guesses = new AtomicLong(), guessHits = new AtomicLong(),
            redone = new AtomicLong(), adopted = new AtomicLong(), abandoned = new AtomicLong(), kvAligned = new AtomicLong();

    /**
     * @param abandonStale check at every shadow layer whether the pass is still useful (only meaningful when the
     *                     shadow runs on its own thread)
     */
    ShadowRunner(InferenceState main, InferenceState shadow, RoutingBoard board, Alignment align, NextTokenRule rule, int ahead,
                 boolean abandonStale) {
        if (ahead < 0) throw new IllegalArgumentException("shadow speculation depth must be >= 0, got " + ahead);
        if (shadow.kv().capacity() < main.kv().capacity()) {
            throw new IllegalArgumentException("the shadow's context (" + shadow.kv().capacity() + ") is smaller than the main model's ("
                    + main.kv().capacity() + ")");
        }
        this.main = main;
        this.shadow = shadow;
        this.board = board;
        this.align = align;
        this.rule = rule;
        this.ahead = ahead;
        this.abandonStale = abandonStale;
        this.nExpert = main.model().hyperparams().nExpert();
        this.publishWidth = Math.min(nExpert, Math.max(8, 2 * main.model().hyperparams().nExpertUsed()));
        int cap = shadow.kv().capacity();
        this.mainTokens = new int[main.kv().capacity()];
        this.ownTokens = new int[cap];
        this.guessed = new boolean[cap];
        shadow.setRoutingHook(this::publish);
        shadow.setLayerHook((layer, pos, n, residual, normed) -> checkStillUseful(layer, pos));
    }

    InferenceState shadowState() { return shadow; }

    /** Sets how many positions past the main model's the shadow speculates (before the first token). */
    void speculate(int tokens) {
        if (tokens < 0 || tokens > Lookahead.MAX_TOKENS) {
            throw new IllegalArgumentException("shadow speculation depth must be between 0 and " + Lookahead.MAX_TOKENS + ", got " + tokens);
        }
        this.ahead = tokens;
    }

    int speculation() { return ahead; }

    /** Called with each layer index the shadow reaches (tests use it to slow or stall the shadow). */
    void setLayerListener(IntConsumer listener) { this.layerListener = listener; }

    // ------------------------------------------------------------------ main side

    /** The main model starts {@code tokens[off .. off+n)} at {@code pos} (main thread; never blocks). */
    void announce(int pos, int[] tokens, int off, int n) {
        Cursor c = cursor;
        int epoch = c == null ? 0 : c.epoch();
        // Going back (or skipping positions) invalidates what the shadow believes about positions ≥ pos.
        if (c != null && pos != announcedEnd) epoch++;
        System.arraycopy(tokens, off, mainTokens, pos, n);
        announcedEnd = pos + n;
        cursor = new Cursor(pos, pos + n, epoch); // volatile write publishes the tokens
    }

    /** The main model's token at {@code pos} if it has announced it, else −1 (main thread). */
    int mainToken(int pos) {
        return pos >= 0 && pos < announcedEnd ? mainTokens[pos] : -1;
    }

    void close() { closed = true; }

    // ------------------------------------------------------------------ shadow side

    /** Does the next piece of useful work; false when there is nothing to do until the main model announces more. */
    boolean workOnce() {
        Cursor c = cursor;
        if (c == null || closed) return false;
        if (c.epoch() != seenEpoch) {
            seenEpoch = c.epoch();
            goBack(Math.min(shadow.position(), c.start()));
            verifiedTo = Math.min(verifiedTo, c.start());
            kvAlignedTo = Math.min(kvAlignedTo, c.start());
            board.clearFrom(c.start());
        }
        int sp = shadow.position();
        // token alignment: compare the tokens the shadow ran with the ones the main model ran
        int upto = Math.min(sp, c.end());
        for (int p = verifiedTo; p < upto; p++) {
            boolean same = ownTokens[p] == mainTokens[p];
            if (guessed[p]) {
                guessed[p] = false;
                guesses.incrementAndGet();
                if (same) guessHits.incrementAndGet();
            }
            if (!same && align.alignsToken(p)) {
                redone.incrementAndGet();
                goBack(p);
                sp = p;
                upto = p;
                break;
            }
        }
        verifiedTo = Math.max(verifiedTo, upto);
        // catch up with positions the main model has finished and the shadow never ran
        if (sp < c.start()) {
            shadow.adoptFrom(main, c.start());
            System.arraycopy(mainTokens, sp, ownTokens, sp, c.start() - sp);
            for (int p = sp; p < c.start(); p++) guessed[p] = false;
            adopted.addAndGet(c.start() - sp);
            sp = c.start();
            verifiedTo = Math.max(verifiedTo, sp);
            kvAlignedTo = Math.max(kvAlignedTo, sp);
            logitsPos = -1;
        }
        // KV alignment over the positions the main model has completed
        if (align.kvDue(kvAlignedTo, c.start())) {
            for (int p = kvAlignedTo; p < c.start(); p++) shadow.kv().copyPositionFrom(main.kv(), p);
            kvAligned.addAndGet(c.start() - kvAlignedTo);
            kvAlignedTo = c.start();
        }
        // the next position to run
        if (sp < c.end() - 1) return false;          // inside a main batch: its KV entries are taken once it is done
        if (sp >= c.end() + ahead) return false;     // far enough ahead
        if (sp >= shadow.kv().capacity()) return false; // the context ends here
        int tok;
        boolean guess;
        if (sp < c.end()) {
            guess = !align.alignsToken(sp) && hasLogitsBefore(sp);
            tok = guess ? rule.next(sp, logits) : mainTokens[sp];
        } else {
            if (!hasLogitsBefore(sp)) return false;  // nothing to speculate from (the last position was copied)
            guess = true;
            tok = rule.next(sp, logits);
        }
        run(sp, tok, guess);
        return true;
    }

    /** Whether the shadow has its own logits after position {@code pos − 1} to pick a token for {@code pos} from. */
    private boolean hasLogitsBefore(int pos) {
        return logits != null && logitsPos >= 0 && logitsPos == pos - 1;
    }

    private void run(int pos, int token, boolean guess) {
        ownTokens[pos] = token;
        guessed[pos] = guess;
        float[] l = shadow.next(token);
        logits = l;
        logitsPos = pos;
        positionsRun.incrementAndGet();
    }

    /** After a {@link Superseded} pass: the state did not advance; drop what was published for it. */
    void afterAbandon() {
        abandoned.incrementAndGet();
        board.clearFrom(shadow.position());
    }

    private void goBack(int p) {
        if (p < shadow.position()) shadow.rewind(p);
        board.clearFrom(p);
        if (logitsPos >= p) logitsPos = -1;
    }

    private void publish(int layer, int pos, int n, float[] probs, Routing routing) {
        if (n != 1) return; // the shadow runs one position at a time
        int[] ranking = new int[publishWidth];
        Ranking.top(probs, 0, nExpert, ranking);
        float[] p = new float[publishWidth];
        for (int i = 0; i < publishWidth; i++) p[i] = probs[ranking[i]];
        board.publish(layer, new RoutingBoard.Entry(pos, ownTokens[pos], pos > 0 ? ownTokens[pos - 1] : -1, ranking, p));
    }

    private void checkStillUseful(int layer, int pos) {
        IntConsumer l = layerListener;
        if (l != null) l.accept(layer);
        if (!abandonStale) return;
        Cursor c = cursor;
        if (closed || c.epoch() != seenEpoch || pos < c.start()) throw new Superseded();
        // a token this pass is built on turned out different from the main model's, and alignment will redo it
        for (int p = Math.max(0, pos - 1); p <= pos; p++) {
            if (p < c.end() && align.alignsToken(p) && ownTokens[p] != mainTokens[p]) throw new Superseded();
        }
    }
}
