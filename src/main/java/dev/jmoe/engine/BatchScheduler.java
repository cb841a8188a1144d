package dev.jmoe.engine;

import dev.jmoe.experts.OffloadReport;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.generate.Sampler;
import dev.jmoe.generate.SamplerConfig;
import dev.jmoe.generate.StreamingDecoder;
import dev.jmoe.model.Batch;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Continuous batching over one {@link Engine}: up to {@link BatchConfig#slots()} generations decode together, one token
 * each per step, in one forward pass ({@link Model#forward(InferenceState, dev.jmoe.model.Batch, float[])}), so each
 * MoE layer reads each expert's weights once for every token routed to it, and the expert runtime (budget, cache,
 * prefetch, predictor) sees the whole step's expert set. New generations join the running batch at the next step;
 * their prompts go in chunks of at most {@link BatchConfig#stepPromptTokens()} tokens per step shared among them, beside
 * the decode rows, so a long prompt never stalls the others. Every generation takes a region of one shared KV memory
 * ({@link BatchConfig#kvPositions()}) for its prompt and its token limit when it starts.
 *
 * <p>A generation's tokens do not depend on what else runs: the step computes every row with the arithmetic it has
 * alone, so at temperature 0 (or with a seed) N generations submitted together produce exactly what each produces alone.
 * The exception is expert substitution ({@code --alpha} above 0), which by design depends on what the cache holds.
 *
 * <p>One thread (the scheduler's) runs the steps; {@link #submit} and {@link Generation#cancel} may be called from any
 * thread. Listeners are called on the scheduler's thread and must return quickly (a server hands the text to the
 * connection's own thread), or every generation waits for them.
 */
public final class BatchScheduler implements AutoCloseable {
    private final Engine engine;
    private final BatchConfig config;
    private final Model model;
    private final InferenceState runtime; // carries the expert runtime and hooks every generation shares
    private final ExpertRuntime expertRuntime;
    private final KvMemory memory;
    private final SchedulerMetrics metrics = new SchedulerMetrics();
    private final Thread thread;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final ArrayDeque<Generation> queue = new ArrayDeque<>(); // guarded by lock
    private volatile int busy;
    private volatile boolean closed;

    // scheduler thread only
    private final List<Running> running = new ArrayList<>();
    /** Results of generations that ended this step, completed once the slot counts say they are gone. */
    private final List<Runnable> completions = new ArrayList<>();

    BatchScheduler(Engine engine, BatchConfig config) throws IOException {
        ExpertRuntimeConfig experts = engine.config().experts();
        if (experts.predictorName().equals("shadow")) {
            throw new IllegalArgumentException("the shadow predictor follows one sequence with a model of its own, and a batch holds many: use"
                    + " --predictor gate or history (with --policy odmoe too)");
        }
        this.engine = engine;
        this.config = config;
        this.model = engine.model();
        this.runtime = model.newState(1, engine.pool());
        this.memory = new KvMemory(model.newKvCache(config.kvPositions()));
        this.expertRuntime = ExpertRuntime.install(runtime, experts, engine.shadows(), engine.listener()::notice);
        this.thread = Thread.ofPlatform().name("jmoe-scheduler").daemon(true).unstarted(this::loop);
        thread.start();
    }

    public BatchConfig config() { return config; }

    public SchedulerMetrics metrics() { return metrics; }

    /** Generations waiting for a slot. */
    public int queued() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    /** Slots decoding (or processing a prompt) now. */
    public int busySlots() { return busy; }

    /** KV positions held by running generations, and the memory's size. */
    public int kvUsed() { return kvUsed; }

    private volatile int kvUsed;

    public int kvCapacity() { return memory.capacity(); }

    /** The shared expert runtime's counters (null when every expert is resident). */
    public OffloadStats offloadStats() { return expertRuntime.stats(); }

    /** The shared expert runtime's counters as a report (null when every expert is resident). */
    public OffloadReport offloadReport() { return expertRuntime.offloadReport(); }

    /**
     * Queues a generation of {@code prompt} (tokens, BOS included as wanted). Fails at once, with one message, when the
     * prompt does not fit the context, when it could never fit the KV memory, or when the queue is full
     * ({@link SchedulerBusyException}).
     */
    public Generation submit(int[] prompt, GenerationRequest request, TokenListener listener) {
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens to start from)");
        if (request == null) throw new IllegalArgumentException("a generation request is required");
        int vocab = model.hyperparams().nVocab();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                throw new IllegalArgumentException("token id " + prompt[i] + " at index " + i + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        if (prompt.length > config.maxContext()) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens but the context holds " + config.maxContext()
                    + " (--ctx-size)");
        }
        Generation g = new Generation(prompt.clone(), request, listener);
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("the scheduler is closed");
            // free slots take requests at once; beyond them at most queueLimit wait
            if (queue.size() >= config.queueLimit() + Math.max(0, config.slots() - busy)) {
                metrics.refused.increment();
                throw new SchedulerBusyException(queue.size());
            }
            queue.addLast(g);
            metrics.submitted.increment();
            work.signalAll();
        } finally {
            lock.unlock();
        }
        return g;
    }

    /** Positions a generation reserves: its prompt and its token limit (the last token is never fed), at most the context. */
    private int reservation(Generation g) {
        int max = g.request().maxTokens();
        long want = max < 0 ? config.maxContext() : (long) g.prompt().length + Math.max(0, max - 1);
        return (int) Math.max(g.prompt().length, Math.min(config.maxContext(), want));
    }

    // ---------------------------------------------------------------- the scheduler's thread

    /** A generation holding a slot. */
    private final class Running {
        final Generation g;
        final KvMemory.Region region;
        final InferenceState state;
        final int[] history; // prompt, then the generated tokens fed (what the KV holds, position by position)
        final Sampler sampler;
        final StreamingDecoder decoder = new StreamingDecoder(engine.tokenizer());
        final StopStrings stops;
        final StringBuilder text = new StringBuilder();
        final int[] one = new int[1];
        int[] produced = new int[16];
        int count, fed, row = -1, evals;
        long admitted, firstLogits = -1, firstToken = -1, lastToken;

        Running(Generation g, KvMemory.Region region) {
            this.g = g;
            this.region = region;
            this.state = model.newState(region.kv(), engine.pool());
            region.filledBy(state::position);
            this.history = new int[region.size() + 1];
            System.arraycopy(g.prompt(), 0, history, 0, g.prompt().length);
            GenerationRequest r = g.request();
            long seed = r.seed() != null ? r.seed() : new SecureRandom().nextLong();
            this.sampler = new Sampler(new SamplerConfig(r.temperature(), r.topK(), r.topP(), r.minP(), r.repeatPenalty(), r.repeatLastN(), seed));
            this.stops = new StopStrings(r.stop());
            this.admitted = System.nanoTime();
        }

        boolean prefilled() { return fed == g.prompt().length; }
    }

    private void loop() {
        Batch batch = new Batch();
        int vocab = model.hyperparams().nVocab();
        float[] logits = new float[config.slots() * vocab], rowLogits = new float[vocab];
        try {
            while (true) {
                admit();
                if (closed) break;
                running.removeIf(r -> {
                    if (!r.g.cancelled()) return false;
                    finish(r, FinishReason.CANCELLED);
                    return true;
                });
                publish();
                if (running.isEmpty()) {
                    lock.lock();
                    try {
                        while (queue.isEmpty() && !closed) work.await();
                    } finally {
                        lock.unlock();
                    }
                    continue;
                }
                buildStep(batch);
                long t0 = System.nanoTime();
                try {
                    model.forward(runtime, batch, logits);
                } catch (RuntimeException | Error e) {
                    // the step's generations cannot go on (their KV is incomplete); the others never ran in it
                    for (Running r : running) fail(r, e);
                    running.clear();
                    publish();
                    continue;
                }
                long t1 = System.nanoTime();
                metrics.steps.increment();
                metrics.stepRows.add(batch.rows());
                metrics.stepNanos.add(t1 - t0);
                for (Iterator<Running> it = running.iterator(); it.hasNext(); ) {
                    Running r = it.next();
                    if (r.row < 0) continue;
                    System.arraycopy(logits, r.row * vocab, rowLogits, 0, vocab);
                    FinishReason done;
                    try {
                        done = accept(r, rowLogits, t1);
                    } catch (RuntimeException e) { // e.g. non-finite logits: this generation ends, the others go on
                        fail(r, e);
                        it.remove();
                        continue;
                    }
                    if (done != null) {
                        finish(r, done);
                        it.remove();
                    }
                }
                publish();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            for (Running r : running) finish(r, FinishReason.CANCELLED);
            running.clear();
            lock.lock();
            try {
                for (Generation g : queue) g.result().complete(new GenerationResult("", new int[0], FinishReason.CANCELLED, emptyStats(g)));
                queue.clear();
            } finally {
                lock.unlock();
            }
            publish();
        }
    }

    /** Moves queued generations into free slots, first come first served, while the KV memory has room. */
    private void admit() {
        lock.lock();
        try {
            while (!queue.isEmpty() && running.size() < config.slots()) {
                Generation g = queue.peekFirst();
                if (g.cancelled()) {
                    queue.pollFirst();
                    metrics.countFinished(FinishReason.CANCELLED);
                    g.result().complete(new GenerationResult("", new int[0], FinishReason.CANCELLED, emptyStats(g)));
                    continue;
                }
                KvMemory.Region region = memory.allocate(reservation(g));
                if (region == null) break; // the head waits for positions to come free (no one overtakes it)
                queue.pollFirst();
                try {
                    running.add(new Running(g, region));
                } catch (RuntimeException e) {
                    memory.release(region);
                    g.result().completeExceptionally(e);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private void publish() {
        busy = running.size();
        kvUsed = memory.used();
        for (Runnable c : completions) c.run();
        completions.clear();
    }

    /** The step's rows: every decoding generation's last token, then prompt chunks within the step's prompt budget. */
    private void buildStep(Batch batch) {
        batch.clear();
        for (Running r : running) {
            r.row = -1;
            if (r.prefilled()) {
                r.one[0] = r.history[r.state.position()];
                r.row = batch.add(r.state, r.one, 0, 1, true);
                r.evals++;
            }
        }
        int budget = config.stepPromptTokens();
        int waiting = 0;
        for (Running r : running) if (!r.prefilled()) waiting++;
        for (Running r : running) {
            if (r.prefilled() || budget == 0) continue;
            // oldest first, each prompt at most an even share of what is left (but not tiny pieces)
            int share = Math.max(Math.min(16, budget), budget / waiting--);
            int chunk = Math.min(share, g(r).prompt().length - r.fed);
            boolean last = r.fed + chunk == g(r).prompt().length;
            int index = batch.add(r.state, g(r).prompt(), r.fed, chunk, last);
            if (last) r.row = index;
            r.fed += chunk;
            budget -= chunk;
            metrics.promptTokens.add(chunk);
        }
    }

    private static Generation g(Running r) { return r.g; }

    /** Samples the generation's next token from its logits; returns why it ends, or null if it goes on. */
    private FinishReason accept(Running r, float[] row, long now) {
        Generation g = r.g;
        GenerationRequest req = g.request();
        if (r.firstLogits < 0) r.firstLogits = now;
        if (g.cancelled()) return FinishReason.CANCELLED;
        if (req.maxTokens() == 0) return FinishReason.MAX_TOKENS;
        int next = r.sampler.sample(row, r.history, r.state.position());
        if (r.firstToken < 0) {
            r.firstToken = now;
            metrics.timeToFirstToken.observeNanos(now - g.submittedNanos());
        } else {
            metrics.timePerToken.observeNanos(now - r.lastToken);
        }
        r.lastToken = now;
        if (!req.ignoreEos() && engine.tokenizer().isEndOfGeneration(next)) return FinishReason.END_OF_GENERATION;
        if (r.count == r.produced.length) r.produced = Arrays.copyOf(r.produced, r.count * 2);
        r.produced[r.count++] = next;
        metrics.generatedTokens.increment();
        String piece = r.stops.accept(r.decoder.accept(next));
        r.text.append(piece);
        try {
            g.listener().onToken(next, piece);
        } catch (RuntimeException e) {
            return FinishReason.CANCELLED; // the listener cannot take more (its client went away)
        }
        if (r.stops.stopped()) return FinishReason.STOP_STRING;
        if (req.maxTokens() >= 0 && r.count >= req.maxTokens()) return FinishReason.MAX_TOKENS;
        if (r.state.position() >= r.region.size()) return req.maxTokens() >= 0 ? FinishReason.MAX_TOKENS : FinishReason.CONTEXT_FULL;
        if (r.state.position() >= config.maxContext()) return FinishReason.CONTEXT_FULL;
        r.history[r.state.position()] = next; // fed at the next step
        return null;
    }

    private void finish(Running r, FinishReason reason) {
        memory.release(r.region);
        metrics.countFinished(reason);
        if (!r.stops.stopped()) {
            String tail = r.stops.finish(r.decoder.flush());
            if (!tail.isEmpty()) {
                r.text.append(tail);
                try {
                    r.g.listener().onToken(-1, tail);
                } catch (RuntimeException ignored) {
                    // the listener's client is gone; the result still completes
                }
            }
        }
        long end = System.nanoTime();
        long promptNanos = (r.firstLogits < 0 ? end : r.firstLogits) - r.admitted;
        GenerationStats stats = new GenerationStats(r.g.prompt().length, promptNanos, Math.max(0, r.evals), r.firstToken < 0 ? 0 : end - r.firstToken,
                r.count, r.firstToken < 0 ? -1 : r.firstToken - r.g.submittedNanos(), null, null);
        GenerationResult result = new GenerationResult(r.text.toString(), Arrays.copyOf(r.produced, r.count), reason, stats);
        completions.add(() -> r.g.result().complete(result));
    }

    private void fail(Running r, Throwable e) {
        memory.release(r.region);
        metrics.failed.increment();
        completions.add(() -> r.g.result().completeExceptionally(e));
    }

    private static GenerationStats emptyStats(Generation g) {
        return new GenerationStats(g.prompt().length, 0, 0, 0, 0, -1, null, null);
    }

    /** Cancels everything queued or running, stops the scheduler's thread and removes the shared expert runtime. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            work.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            expertRuntime.close();
        } finally {
            engine.closed(this);
        }
    }
}
