package dev.jmoe.engine;

import dev.jmoe.experts.OffloadReport;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.predict.PredictorReport;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.generate.ChatMessage;
import dev.jmoe.generate.Sampler;
import dev.jmoe.generate.SamplerConfig;
import dev.jmoe.generate.StreamingDecoder;
import dev.jmoe.model.InferenceState;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One conversation's state on an {@link Engine}: its KV cache, the tokens it holds, and the expert runtime its
 * MoE layers read from. Evaluate prompts, generate with a {@link GenerationRequest}, rewind, or chat through the
 * model's chat template (a chat turn feeds only what the cache does not already hold).
 *
 * <p>A session is used by one thread at a time; {@link #cancel()} may be called from any thread.
 */
public final class Session implements AutoCloseable {
    private final Engine engine;
    private final InferenceState state;
    private final ExpertRuntimeConfig runtimeConfig;
    private final ExpertRuntime runtime;
    private final RoutingTraceFile.Recorder trace;
    private int[] tokens = new int[256];   // what the KV cache holds, position by position
    private final List<ChatMessage> conversation = new ArrayList<>();
    private volatile boolean cancelled;
    private boolean closed;

    Session(Engine engine, ExpertRuntimeConfig runtimeConfig, Path routingTrace) throws IOException {
        this.engine = engine;
        this.runtimeConfig = runtimeConfig;
        this.state = engine.model().newState(engine.contextSize(), engine.pool());
        RoutingTraceFile.Recorder recorder = null;
        try {
            // the trace goes in first, so it records the router's own choice rather than a substituted one
            if (routingTrace != null) recorder = new RoutingTraceFile.Recorder(state, routingTrace, engine.config().model().toString());
            this.runtime = ExpertRuntime.install(state, runtimeConfig, engine.shadows(), engine.listener()::notice);
        } catch (IOException | RuntimeException e) {
            if (recorder != null) {
                try {
                    recorder.close();
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
        this.trace = recorder;
    }

    public Engine engine() { return engine; }

    /** Tokens the session holds (the next token goes to this position). */
    public int position() { return state.position(); }

    /** Tokens of context the session has. */
    public int contextSize() { return state.kv().capacity(); }

    /** The tokens the KV cache holds, in order. */
    public int[] tokens() { return Arrays.copyOf(tokens, state.position()); }

    /** The expert runtime this session runs with. */
    public ExpertRuntimeConfig expertRuntime() { return runtimeConfig; }

    // ---------------------------------------------------------------- evaluation

    /** Feeds tokens after what the session holds and returns the last one's logits. */
    public float[] evaluate(int[] prompt) {
        checkFits(prompt);
        int start = state.position();
        String step = "prompt";
        EngineListener l = engine.listener();
        float[] logits = state.eval(prompt, 0, prompt.length, engine.config().batchSize(), done -> l.progress(step, done, prompt.length, "tokens"));
        l.stepDone(step);
        remember(start, prompt);
        return logits;
    }

    /** Feeds tokens and returns the logits of every one of them ({@code n × vocabulary}, token-major). */
    public float[] evaluateAll(int[] prompt) {
        checkFits(prompt);
        int start = state.position();
        float[] all = state.evalAll(prompt, 0, prompt.length, engine.config().batchSize());
        remember(start, prompt);
        return all;
    }

    /** One decode step: feeds a single token and returns its logits. */
    public float[] next(int token) {
        checkFits(new int[]{token});
        int start = state.position();
        float[] logits = state.next(token);
        remember(start, new int[]{token});
        return logits;
    }

    private void checkFits(int[] prompt) {
        checkOpen();
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (no tokens to start from)");
        int room = contextSize() - state.position();
        if (prompt.length > room) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens but only " + room + " fit in the context (--ctx-size "
                    + contextSize() + ")");
        }
    }

    private void remember(int start, int[] fed) {
        int end = start + fed.length;
        if (end > tokens.length) tokens = Arrays.copyOf(tokens, Math.max(end, tokens.length * 2));
        System.arraycopy(fed, 0, tokens, start, fed.length);
    }

    /** Forgets everything from {@code position} on (the cache entries past it will be overwritten). */
    public void rewind(int position) {
        checkOpen();
        state.rewind(position);
    }

    /** Forgets everything, the chat conversation included. */
    public void reset() {
        rewind(0);
        conversation.clear();
    }

    // ---------------------------------------------------------------- generation

    /**
     * Encodes {@code prompt} (with BOS as the model says when the session is empty), feeds it after what the session
     * holds, and generates.
     */
    public GenerationResult generate(String prompt, GenerationRequest request, TokenListener listener) {
        int[] ids = engine.tokenizer().encode(prompt, state.position() == 0, false);
        return generate(ids, request, listener);
    }

    /**
     * Feeds {@code prompt} after what the session holds, then samples, streams and feeds one token at a time until
     * the request's limit, an end-of-generation token, a stop string, a full context or {@link #cancel()}.
     */
    public GenerationResult generate(int[] prompt, GenerationRequest request, TokenListener listener) {
        checkOpen();
        if (listener == null) listener = TokenListener.NONE;
        cancelled = false;
        long t0 = System.nanoTime();
        float[] logits = evaluate(prompt);
        long t1 = System.nanoTime();
        long seed = request.seed() != null ? request.seed() : new SecureRandom().nextLong();
        Sampler sampler = new Sampler(new SamplerConfig(request.temperature(), request.topK(), request.topP(), request.minP(),
                request.repeatPenalty(), request.repeatLastN(), seed));
        StreamingDecoder decoder = new StreamingDecoder(engine.tokenizer());
        StopStrings stops = new StopStrings(request.stop());
        StringBuilder text = new StringBuilder();
        int[] produced = new int[16];
        int count = 0, evals = 0;
        long firstToken = -1;
        int max = request.maxTokens();
        FinishReason reason = FinishReason.MAX_TOKENS;
        while (max < 0 || count < max) {
            if (cancelled) {
                reason = FinishReason.CANCELLED;
                break;
            }
            int next = sampler.sample(logits, tokens, state.position());
            if (firstToken < 0) firstToken = System.nanoTime() - t0;
            if (!request.ignoreEos() && engine.tokenizer().isEndOfGeneration(next)) {
                reason = FinishReason.END_OF_GENERATION;
                break;
            }
            if (count == produced.length) produced = Arrays.copyOf(produced, count * 2);
            produced[count++] = next;
            String piece = stops.accept(decoder.accept(next));
            text.append(piece);
            listener.onToken(next, piece);
            if (stops.stopped()) {
                reason = FinishReason.STOP_STRING;
                break;
            }
            if (state.position() >= contextSize()) {
                reason = FinishReason.CONTEXT_FULL;
                break;
            }
            if (max >= 0 && count >= max) break;
            if (cancelled) {
                reason = FinishReason.CANCELLED;
                break;
            }
            logits = next(next);
            evals++;
        }
        if (!stops.stopped()) {
            String tail = stops.finish(decoder.flush());
            if (!tail.isEmpty()) {
                text.append(tail);
                listener.onToken(-1, tail);
            }
        }
        long end = System.nanoTime();
        // decode speed counts forward passes after the prompt (the first token comes from the prompt's logits)
        GenerationStats stats = new GenerationStats(prompt.length, t1 - t0, evals, end - t1, count, firstToken,
                offloadReport(prompt.length, firstToken, evals, end - t1), predictorReport());
        return new GenerationResult(text.toString(), Arrays.copyOf(produced, count), reason, stats);
    }

    /** Ends the generation running on this session after its current token (callable from any thread). */
    public void cancel() {
        cancelled = true;
    }

    // ---------------------------------------------------------------- chat

    /**
     * Generates the assistant's reply to a whole conversation rendered with the model's chat template (ChatML when
     * the model has none). Only the tokens the session does not already hold are fed: a conversation that extends the
     * previous one costs only its new turns.
     */
    public GenerationResult chat(List<ChatMessage> messages, GenerationRequest request, TokenListener listener) {
        checkOpen();
        int[] all = engine.chatTemplate().encode(engine.tokenizer(), messages, true);
        int common = 0, n = Math.min(all.length, state.position());
        while (common < n && tokens[common] == all[common]) common++;
        if (common == all.length) common--; // everything is cached: re-feed the last token for fresh logits
        if (all.length > contextSize()) {
            throw new IllegalArgumentException("the conversation has " + all.length + " tokens but the context holds " + contextSize()
                    + " (--ctx-size); start a new conversation");
        }
        state.rewind(common);
        return generate(Arrays.copyOfRange(all, common, all.length), request, listener);
    }

    /**
     * One turn of the conversation this session keeps: adds {@code userMessage}, generates the reply, adds it. When
     * the reply fills the context, the conversation starts over (only the system prompt is kept).
     */
    public GenerationResult chat(String userMessage, GenerationRequest request, TokenListener listener) {
        conversation.add(ChatMessage.user(userMessage));
        GenerationResult r;
        try {
            r = chat(List.copyOf(conversation), request, listener);
        } catch (RuntimeException e) {
            conversation.removeLast();
            throw e;
        }
        conversation.add(ChatMessage.assistant(r.text().strip()));
        if (r.finishReason() == FinishReason.CONTEXT_FULL) clearConversation();
        return r;
    }

    /** Sets the system message of the kept conversation (it opens the conversation; null removes it). */
    public void setSystemPrompt(String system) {
        if (!conversation.isEmpty() && conversation.getFirst().role().equals("system")) conversation.removeFirst();
        if (system != null) conversation.addFirst(ChatMessage.system(system));
    }

    /** The conversation {@link #chat(String, GenerationRequest, TokenListener)} keeps. */
    public List<ChatMessage> conversation() { return List.copyOf(conversation); }

    /** Starts the kept conversation over, keeping its system message. */
    public void clearConversation() {
        ChatMessage system = !conversation.isEmpty() && conversation.getFirst().role().equals("system") ? conversation.getFirst() : null;
        conversation.clear();
        if (system != null) conversation.add(system);
        rewind(0);
    }

    // ---------------------------------------------------------------- the expert runtime

    /** The expert runtime's counters so far, or null when every expert is resident. */
    public OffloadReport offloadReport() {
        return runtime.offloadReport();
    }

    /** The predictor's figures so far, or null without a predictor. */
    public PredictorReport predictorReport() {
        return runtime.predictorReport();
    }

    private OffloadReport offloadReport(int promptTokens, long ttft, int decodeTokens, long decodeNanos) {
        OffloadStats s = runtime.stats();
        if (s == null) return null;
        s.timing(promptTokens, ttft, decodeTokens, decodeNanos);
        return s.report();
    }

    /** The counters of a distributed run's traffic with its workers and shadow node, or null on a single node. */
    public dev.jmoe.net.ClusterStats clusterStats() {
        return runtime.clusterStats();
    }

    /** The live counters of the expert runtime (advanced: measuring tools), or null when every expert is resident. */
    public OffloadStats offloadStats() {
        return runtime.stats();
    }

    /** Waits until a shadow predictor has warmed up, so what is measured is its steady state; true if it has (or there is none). */
    public boolean awaitPredictorWarm(double seconds) throws InterruptedException {
        return runtime.awaitPredictorWarm(seconds);
    }

    /** The inference state (advanced: measuring tools and evaluation harnesses drive it directly). */
    public InferenceState state() { return state; }

    private void checkOpen() {
        if (closed) throw new IllegalStateException("the session is closed");
    }

    /** Removes the expert runtime (its predictor included) and the routing trace; the engine stays open. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            runtime.close();
        } finally {
            try {
                if (trace != null) trace.close();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException("writing the routing trace failed: " + e.getMessage(), e);
            } finally {
                engine.closed(this);
            }
        }
    }
}
