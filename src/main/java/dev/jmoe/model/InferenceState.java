package dev.jmoe.model;

import dev.jmoe.tensor.Parallel;

/**
 * One sequence being processed: its KV cache, position, working buffers, the pool it computes with and
 * the expert source its MoE layers read from. Not thread-safe; one per generating sequence.
 */
public final class InferenceState {
    private final Model model;
    private final KvCache kv;
    private final Parallel pool;
    private final Rope rope;
    private ExpertSource experts;
    private ExpertExecutor expertExecutor;
    private RoutingHook routingHook;
    private LayerHook layerHook;
    private TokenHook tokenHook;
    private PartialOutputHook partialOutputHook;
    private Model.Scratch scratch;
    private int position;

    InferenceState(Model model, int ctxSize, Parallel pool, ExpertSource experts) {
        this(model, newCache(model, ctxSize), pool, experts);
    }

    /** A state whose KV cache is {@code kv} (a region of a KV memory several sequences share, say). */
    InferenceState(Model model, KvCache kv, Parallel pool, ExpertSource experts) {
        Hyperparams hp = model.hyperparams();
        if (kv.kvDim() != hp.kvDim()) throw new IllegalArgumentException("a KV cache of " + kv.kvDim() + " floats per position does not fit this model's " + hp.kvDim());
        this.model = model;
        this.kv = kv;
        this.pool = pool;
        this.experts = experts;
        this.rope = model.rope(kv.capacity());
    }

    private static KvCache newCache(Model model, int ctxSize) {
        if (ctxSize <= 0) throw new IllegalArgumentException("context size must be positive, got " + ctxSize);
        Hyperparams hp = model.hyperparams();
        return new KvCache(hp.nLayer(), ctxSize, hp.kvDim());
    }

    public Model model() { return model; }
    public KvCache kv() { return kv; }
    public Parallel pool() { return pool; }
    Rope rope() { return rope; }
    public int position() { return position; }
    public ExpertSource experts() { return experts; }
    public void setExperts(ExpertSource experts) { this.experts = experts; }
    /** Where routed experts are computed when not here (a distributed run); null: locally, from {@link #experts()}. */
    public ExpertExecutor expertExecutor() { return expertExecutor; }
    public void setExpertExecutor(ExpertExecutor executor) { this.expertExecutor = executor; }
    public RoutingHook routingHook() { return routingHook; }
    public void setRoutingHook(RoutingHook hook) { this.routingHook = hook; }
    public LayerHook layerHook() { return layerHook; }
    public void setLayerHook(LayerHook hook) { this.layerHook = hook; }
    public TokenHook tokenHook() { return tokenHook; }
    public void setTokenHook(TokenHook hook) { this.tokenHook = hook; }
    public PartialOutputHook partialOutputHook() { return partialOutputHook; }
    public void setPartialOutputHook(PartialOutputHook hook) { this.partialOutputHook = hook; }

    /** Forgets everything after position {@code p} (the cache entries past it will be overwritten). */
    public void rewind(int p) {
        if (p < 0 || p > position) throw new IllegalArgumentException("cannot rewind to " + p + " from " + position);
        position = p;
    }

    void advance(int n) { position += n; }

    /**
     * Takes positions [position, to) from {@code other}'s KV cache instead of computing them, and moves to
     * {@code to}: a shadow model that fell behind catches up with the model it shadows this way. The two
     * models must have the same layer count and KV width.
     */
    public void adoptFrom(InferenceState other, int to) {
        KvCache src = other.kv();
        if (src.kvDim() != kv.kvDim() || other.model().hyperparams().nLayer() != model.hyperparams().nLayer()) {
            throw new IllegalArgumentException("cannot take KV entries from a model of another shape (" + other.model().hyperparams().nLayer()
                    + " layers x " + src.kvDim() + " vs " + model.hyperparams().nLayer() + " x " + kv.kvDim() + ")");
        }
        if (to < position || to > kv.capacity() || to > src.capacity()) {
            throw new IllegalArgumentException("cannot adopt positions up to " + to + " from position " + position + " (context " + kv.capacity() + ")");
        }
        for (int p = position; p < to; p++) kv.copyPositionFrom(src, p);
        position = to;
    }

    Model.Scratch scratch(int n) {
        if (scratch == null || scratch.capacity < n) scratch = new Model.Scratch(model.hyperparams(), Math.max(n, 1));
        return scratch;
    }

    /**
     * Feeds tokens[off..off+n) and returns the last token's logits (a new array), processing the tokens
     * in batches of at most {@code batchSize}.
     */
    public float[] eval(int[] tokens, int off, int n, int batchSize) {
        return eval(tokens, off, n, batchSize, null);
    }

    /** Like {@link #eval(int[], int, int, int)}, telling {@code progress} how many tokens are done after each batch. */
    public float[] eval(int[] tokens, int off, int n, int batchSize, java.util.function.IntConsumer progress) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be at least 1, got " + batchSize);
        float[] logits = new float[model.hyperparams().nVocab()];
        for (int done = 0; done < n; ) {
            int b = Math.min(batchSize, n - done);
            boolean last = done + b == n;
            model.forward(this, tokens, off + done, b, last ? logits : null, false);
            done += b;
            if (progress != null) progress.accept(done);
        }
        return logits;
    }

    /** Feeds tokens and returns the logits of every one of them ({@code n × nVocab}, token-major). */
    public float[] evalAll(int[] tokens, int off, int n, int batchSize) {
        int v = model.hyperparams().nVocab();
        float[] all = new float[n * v];
        for (int done = 0; done < n; ) {
            int b = Math.min(batchSize, n - done);
            float[] part = new float[b * v];
            model.forward(this, tokens, off + done, b, part, true);
            System.arraycopy(part, 0, all, done * v, b * v);
            done += b;
        }
        return all;
    }

    /** One decode step: feeds a single token, returns its logits. */
    public float[] next(int token) {
        return eval(new int[]{token}, 0, 1, 1);
    }
}
