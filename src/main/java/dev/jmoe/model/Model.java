package dev.jmoe.model;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.MatMulSet;
import dev.jmoe.tensor.MatVecSet;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.PackedMatrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.Parallel;
import java.util.ArrayList;
import java.util.List;

/**
 * A loaded model and its forward pass. One pass interprets the {@link ArchSpec} table for every
 * architecture: pre-norm attention with optional q/k/v biases and q/k norms, RoPE (NORM or NEOX), GQA,
 * then either a dense SwiGLU FFN or an MoE block (softmax router, top-k, optional renormalisation,
 * optional sigmoid-gated shared expert). Routed experts are only reached through an {@link ExpertSource}.
 */
public final class Model {
    /** Bound to false only in tests, to compare the four-heads-at-a-time attention with the one-head path. */
    static final ScopedValue<Boolean> GROUPED_ATTENTION = ScopedValue.newInstance();

    private final GgufFile file;
    private final ArchSpec spec;
    private final Hyperparams hp;
    private final Matrix tokenEmbd;
    private final float[] outputNorm;
    private final Matrix output;
    private final float[] ropeFreqs;
    private final LayerWeights[] layers;
    private final ExpertSource residentExperts;
    private final boolean packsWeights;
    private final boolean int8Activations;

    Model(GgufFile file, ArchSpec spec, Hyperparams hp, Matrix tokenEmbd, float[] outputNorm, Matrix output,
          float[] ropeFreqs, LayerWeights[] layers) {
        this(file, spec, hp, tokenEmbd, outputNorm, output, ropeFreqs, layers, false, false, null);
    }

    private Model(GgufFile file, ArchSpec spec, Hyperparams hp, Matrix tokenEmbd, float[] outputNorm, Matrix output,
                  float[] ropeFreqs, LayerWeights[] layers, boolean packExperts, boolean int8Activations, ExpertSource residentExperts) {
        this.file = file;
        this.spec = spec;
        this.hp = hp;
        this.tokenEmbd = tokenEmbd;
        this.outputNorm = outputNorm;
        this.output = output;
        this.ropeFreqs = ropeFreqs;
        this.layers = layers;
        this.residentExperts = residentExperts != null ? residentExperts : new ResidentExpertSource(stackedExperts(), packExperts);
        this.packsWeights = packExperts;
        this.int8Activations = int8Activations;
    }

    /**
     * This model computing with activations rounded to 8 bits inside its quantized products, as llama.cpp does
     * ({@link Kernels#withActivationQuantization}), or with float activations (the default, exact against the float
     * reference). The setting belongs to the model: each forward pass binds it for its own thread, so two models in
     * one process (two engines, a main model and its shadow) never see each other's. Shares every weight.
     */
    public Model withActivationQuantization(boolean on) {
        if (on == int8Activations) return this;
        return new Model(file, spec, hp, tokenEmbd, outputNorm, output, ropeFreqs, layers, packsWeights, on, residentExperts);
    }

    /** Whether this model rounds activations to 8 bits in quantized products ({@link #withActivationQuantization}). */
    public boolean activationQuantization() { return int8Activations; }

    /** Whether this model computes Q4_0, Q4_K and Q6_K products on packed copies ({@link #withPackedWeights}). */
    public boolean packsWeights() { return packsWeights; }

    /**
     * This model with its Q4_0, Q4_K and Q6_K matrices regrouped for the integer kernels ({@link PackedMatrix}): the attention,
     * dense and shared-expert matrices and the output now, each routed expert when it is first used from the
     * resident source (an offloading run never packs them). Single vectors (decode) and small batches read the
     * packed copies; prompt batches of four or more still take the float tile path on the file's rows, which is
     * faster there, so the packed copies are memory on top of the mapping (about 1.1× the Q4_0 bytes, 1.33× the Q4_K
     * bytes, 1.06× when packed under 8-bit rounding ({@link dev.jmoe.tensor.Packing#pack}), and 1.5× the Q6_K bytes, on
     * the Java heap; a matrix the heap has no room for stays unpacked; --no-pack avoids it). Matrices of other types, or without whole groups of 16 rows, stay as they are.
     */
    public Model withPackedWeights() {
        try {
            return packed();
        } catch (IllegalStateException | InternalError e) {
            throw mappingFailure(file, e);
        }
    }

    private Model packed() {
        LayerWeights[] packed = new LayerWeights[layers.length];
        for (int l = 0; l < layers.length; l++) {
            LayerWeights w = layers[l];
            packed[l] = new LayerWeights(w.attnNorm(), pack(w.wq()), pack(w.wk()), pack(w.wv()), pack(w.wo()),
                    w.bq(), w.bk(), w.bv(), w.qNorm(), w.kNorm(), w.ffnNorm(),
                    pack(w.ffnGate()), pack(w.ffnUp()), pack(w.ffnDown()), w.router(), w.experts(),
                    w.sharedGateInp(), pack(w.sharedGate()), pack(w.sharedUp()), pack(w.sharedDown()));
        }
        return new Model(file, spec, hp, tokenEmbd, outputNorm, pack(output), ropeFreqs, packed, true, int8Activations, null);
    }

    /**
     * This model with every non-expert weight matrix (attention, dense and shared-expert FFN, routers, token
     * embedding, output) replaced by {@code f(m)}; routed experts and vectors stay as they are, a tied output stays
     * tied. For moving those weights out of the file mapping (dev.jmoe.memory.NonExpertWeights).
     */
    public Model withNonExpertMatrices(java.util.function.UnaryOperator<Matrix> f) {
        LayerWeights[] moved = new LayerWeights[layers.length];
        for (int l = 0; l < layers.length; l++) {
            LayerWeights w = layers[l];
            moved[l] = new LayerWeights(w.attnNorm(), map(f, w.wq()), map(f, w.wk()), map(f, w.wv()), map(f, w.wo()),
                    w.bq(), w.bk(), w.bv(), w.qNorm(), w.kNorm(), w.ffnNorm(),
                    map(f, w.ffnGate()), map(f, w.ffnUp()), map(f, w.ffnDown()), map(f, w.router()), w.experts(),
                    w.sharedGateInp(), map(f, w.sharedGate()), map(f, w.sharedUp()), map(f, w.sharedDown()));
        }
        Matrix embd = map(f, tokenEmbd);
        Matrix out = output == tokenEmbd ? embd : map(f, output);
        return new Model(file, spec, hp, embd, outputNorm, out, ropeFreqs, moved, packsWeights, int8Activations, residentExperts);
    }

    private static Matrix map(java.util.function.UnaryOperator<Matrix> f, Matrix m) {
        return m == null ? null : f.apply(m);
    }

    private static Matrix pack(Matrix m) {
        if (m == null || m.packed() != null || !Packing.canPack(m)) return m;
        PackedMatrix p = Packing.packIfRoom(m, null);
        return p == null ? m : m.withPacked(p);
    }

    /** Loads the model described by an open GGUF file (the file must stay open while the model is used). */
    public static Model load(GgufFile file) {
        try {
            return ModelLoader.load(file);
        } catch (IllegalStateException | InternalError e) {
            throw mappingFailure(file, e);
        }
    }

    public GgufFile file() { return file; }
    public ArchSpec spec() { return spec; }
    public Hyperparams hyperparams() { return hp; }
    public LayerWeights layer(int l) { return layers[l]; }
    public Matrix tokenEmbedding() { return tokenEmbd; }
    public Matrix output() { return output; }
    public float[] outputNorm() { return outputNorm; }
    float[] ropeFreqFactors() { return ropeFreqs; }

    private Rope rope; // the tables of the longest context asked for so far (a position's entries do not depend on the length)

    /** RoPE tables for positions [0, maxPos) at least, shared by every state of this model. */
    synchronized Rope rope(int maxPos) {
        if (rope == null || rope.maxPositions() < maxPos) rope = new Rope(hp, spec.rope(), ropeFreqs, maxPos);
        return rope;
    }

    /** Each layer's stacked experts (null entries for layers without experts). */
    public List<StackedExperts> stackedExperts() {
        List<StackedExperts> list = new ArrayList<>();
        for (LayerWeights lw : layers) list.add(lw.experts());
        return list;
    }

    /** Experts read straight from the model file's mapping. */
    public ExpertSource residentExperts() { return residentExperts; }

    /** Bytes of all routed experts. */
    public long expertBytes() {
        long sum = 0;
        for (LayerWeights lw : layers) {
            if (lw.experts() != null) sum += lw.experts().expertBytes() * lw.experts().nExpert();
        }
        return sum;
    }

    /** A fresh inference state with its own KV cache of {@code ctxSize} positions, computing with {@code pool}. */
    public InferenceState newState(int ctxSize, Parallel pool) {
        return new InferenceState(this, ctxSize, pool, residentExperts);
    }

    /**
     * A fresh inference state keeping its keys and values in {@code kv} (a {@link KvCache#region} of a KV memory several
     * sequences share), computing with {@code pool}.
     */
    public InferenceState newState(KvCache kv, Parallel pool) {
        return new InferenceState(this, kv, pool, residentExperts);
    }

    /** A KV memory of {@code positions} positions for this model, to be cut into {@link KvCache#region regions}. */
    public KvCache newKvCache(int positions) {
        return new KvCache(hp.nLayer(), positions, hp.kvDim());
    }

    // ---------------------------------------------------------------- forward pass

    /**
     * Runs {@code n} tokens starting at {@code tokens[off]} at positions {@code st.position()}… and advances
     * the position. If {@code logits} is non-null it receives the logits of the last token (length nVocab)
     * or, with {@code allLogits}, of every token ({@code n × nVocab}).
     */
    void forward(InferenceState st, int[] tokens, int off, int n, float[] logits, boolean allLogits) {
        try {
            // The rounding of activations is this model's setting, bound for this pass's thread only.
            Kernels.withActivationQuantization(int8Activations, () -> forwardMapped(st, tokens, off, n, logits, allLogits));
        } catch (IllegalStateException | InternalError e) {
            throw mappingFailure(file, e);
        }
    }

    /**
     * What a failed read of the mapped model file means, as one sentence: the model file changed under the run (its
     * guard closed the mapping, so reads throw IllegalStateException; or, where it could not hold the writer off, a read
     * of a lost page faulted, which HotSpot reports as InternalError where it can). Any other failure is returned as it
     * was. Callers that read the mapping outside {@link #forward} (loading, packing, warm-up) rethrow this too.
     */
    static RuntimeException mappingFailure(GgufFile file, Throwable e) {
        String change = file.fileChange();
        if (change != null) return new ModelException(change, e);
        if (e instanceof InternalError) {
            return new ModelException(file.path() + ": reading the mapped model file failed (" + e.getMessage()
                    + "); the file or the device it is on may be failing", e);
        }
        if (e instanceof RuntimeException r) return r;
        throw (Error) e;
    }

    private void forwardMapped(InferenceState st, int[] tokens, int off, int n, float[] logits, boolean allLogits) {
        int pos = st.position();
        if (pos + n > st.kv().capacity()) {
            throw new IllegalStateException("context is full: " + pos + " + " + n + " tokens exceed --ctx-size " + st.kv().capacity());
        }
        for (int t = 0; t < n; t++) {
            int tok = tokens[off + t];
            if (tok < 0 || tok >= hp.nVocab()) {
                throw new IllegalArgumentException("token id " + tok + " at index " + (off + t) + " is outside the vocabulary [0, " + hp.nVocab() + ")");
            }
        }
        TokenHook tokenHook = st.tokenHook();
        if (tokenHook != null) tokenHook.onTokens(pos, tokens, off, n);
        Scratch s = st.scratch(n);
        int e = hp.nEmbd();
        float[] x = s.x;
        var embd = Kernels.forType(tokenEmbd.type());
        for (int t = 0; t < n; t++) {
            embd.dequantizeRow(tokenEmbd.data(), (long) tokens[off + t] * tokenEmbd.rowBytes(), x, t * e, e);
        }
        checkFinite(x, n, e, pos, "the token embedding of", -1);
        Placement placement = Placement.of(st, pos, n);
        for (int l = 0; l < hp.nLayer(); l++) {
            attention(st, s, l, n, placement);
            checkFinite(x, n, e, pos, "the hidden state after the attention of", l);
            LayerWeights lw = layers[l];
            for (int t = 0; t < n; t++) Ops.rmsNorm(x, t * e, lw.ffnNorm(), hp.rmsEps(), s.xn, t * e, e);
            LayerHook layerHook = st.layerHook();
            if (layerHook != null) layerHook.beforeFfn(l, pos, n, x, s.xn);
            if (lw.isMoe()) moe(st, s, l, n, pos, null);
            else dense(st, s, lw, n);
            for (int i = 0; i < n * e; i++) x[i] += s.tmp[i];
            checkFinite(x, n, e, pos, "the hidden state after the feed-forward of", l);
        }
        if (logits == null) {
            st.advance(n);
            return;
        }
        int first = allLogits ? 0 : n - 1;
        int rows = n - first;
        for (int t = first; t < n; t++) Ops.rmsNorm(x, t * e, outputNorm, hp.rmsEps(), s.xn, (t - first) * e, e);
        matmul(st.pool(), output, s.xn, e, rows, logits, hp.nVocab());
        checkFinite(logits, rows, hp.nVocab(), pos + first, "the logits from", -2);
        st.advance(n);
    }

    /**
     * Stops the pass when {@code a} (n rows of {@code width}, the first at position {@code pos}) holds a NaN or an
     * infinity. Non-finite values come from corrupt weights, a tensor read with the wrong type or a shifted data
     * section; carried on they make the router pick no expert and sampling print garbage. The scan is a few
     * microseconds per layer against milliseconds of products. {@code layer} -1 = embedding, -2 = output.
     */
    private void checkFinite(float[] a, int n, int width, int pos, String what, int layer) {
        int bad = Ops.firstNonFinite(a, 0, n * width);
        if (bad < 0) return;
        String where = layer >= 0 ? "layer " + layer : layer == -1 ? "the input" : "the output layer";
        throw new ModelException(file.path() + ": " + what + " " + where + " at position " + (pos + bad / width)
                + ": value " + bad % width + " is " + a[bad] + ", not finite; the model's weights are corrupt"
                + " or were read as the wrong type");
    }

    /**
     * One step over several sequences: every row of {@code batch} (each sequence's tokens continue it from its position),
     * with the experts and hooks of {@code runtime} (the expert runtime the sequences share: its budget, cache, prefetch and
     * predictors see the step's whole expert set per layer). The KV caches of the batch's sequences take the new
     * positions and each sequence advances by its rows. For each sequence that asks for logits, {@code logits} row i
     * (i its index in the batch, {@code nVocab} floats) receives its last row's logits; other rows are left as they are.
     *
     * <p>A sequence's result does not depend on the batch: the step binds {@link Kernels#withBatchInvariance}, so every
     * product gives each row what it gives that row alone, attention reads only the row's own sequence, and each MoE
     * layer sums every row's expert outputs in the row's own selection order. Grouping the step's rows by expert (each
     * expert's weights read once for all the rows routed to it) changes no arithmetic.
     */
    public void forward(InferenceState runtime, Batch batch, float[] logits) {
        int n = batch.rows();
        if (n == 0) return;
        if (logits != null && logits.length < (long) batch.sequences() * hp.nVocab()) {
            throw new IllegalArgumentException("logits need " + batch.sequences() + " x " + hp.nVocab() + " floats, got " + logits.length);
        }
        for (int i = 0; i < batch.sequences(); i++) {
            if (batch.sequence(i).model().hyperparams() != hp) throw new IllegalArgumentException("sequence " + i + " belongs to another model");
        }
        for (int t = 0; t < n; t++) {
            int tok = batch.token(t);
            if (tok < 0 || tok >= hp.nVocab()) {
                throw new IllegalArgumentException("token id " + tok + " at row " + t + " is outside the vocabulary [0, " + hp.nVocab() + ")");
            }
        }
        Kernels.withActivationQuantization(int8Activations, () -> Kernels.withBatchInvariance(true, () -> batchPass(runtime, batch, logits)));
    }

    private void batchPass(InferenceState runtime, Batch batch, float[] logits) {
        int n = batch.rows(), e = hp.nEmbd();
        TokenHook tokenHook = runtime.tokenHook();
        if (tokenHook != null) tokenHook.onBatchTokens(batch);
        Scratch s = runtime.scratch(n);
        float[] x = s.x;
        var embd = Kernels.forType(tokenEmbd.type());
        for (int t = 0; t < n; t++) embd.dequantizeRow(tokenEmbd.data(), (long) batch.token(t) * tokenEmbd.rowBytes(), x, t * e, e);
        Placement rows = Placement.of(batch);
        for (int l = 0; l < hp.nLayer(); l++) {
            attention(runtime, s, l, n, rows);
            LayerWeights lw = layers[l];
            for (int t = 0; t < n; t++) Ops.rmsNorm(x, t * e, lw.ffnNorm(), hp.rmsEps(), s.xn, t * e, e);
            LayerHook layerHook = runtime.layerHook();
            if (layerHook != null) layerHook.beforeBatchFfn(l, batch, x, s.xn);
            if (lw.isMoe()) moe(runtime, s, l, n, batch.position(0), batch);
            else dense(runtime, s, lw, n);
            for (int i = 0; i < n * e; i++) x[i] += s.tmp[i];
        }
        if (logits != null) {
            int m = 0;
            for (int i = 0; i < batch.sequences(); i++) {
                if (batch.wantsLogits(i)) Ops.rmsNorm(x, (batch.start(i) + batch.count(i) - 1) * e, outputNorm, hp.rmsEps(), s.xn, m++ * e, e);
            }
            if (m > 0) {
                int v = hp.nVocab();
                float[] out = s.ensureFf(m * v, 0);
                matmul(runtime.pool(), output, s.xn, e, m, out, v);
                m = 0;
                for (int i = 0; i < batch.sequences(); i++) {
                    if (batch.wantsLogits(i)) System.arraycopy(out, m++ * v, logits, i * v, v);
                }
            }
        }
        for (int i = 0; i < batch.sequences(); i++) batch.sequence(i).advance(batch.count(i));
    }

    /** Where each row of a pass sits: its sequence's KV cache, RoPE tables and position. */
    private interface Placement {
        KvCache kv(int row);

        Rope rope(int row);

        int position(int row);

        /** The most positions any row attends over. */
        int maxCount();

        /** Rows [0, n) of one sequence from position pos. */
        static Placement of(InferenceState st, int pos, int n) {
            KvCache kv = st.kv();
            Rope rope = st.rope();
            return new Placement() {
                @Override public KvCache kv(int row) { return kv; }
                @Override public Rope rope(int row) { return rope; }
                @Override public int position(int row) { return pos + row; }
                @Override public int maxCount() { return pos + n; }
            };
        }

        static Placement of(Batch b) {
            int max = 0;
            for (int t = 0; t < b.rows(); t++) max = Math.max(max, b.position(t) + 1);
            int maxCount = max;
            return new Placement() {
                @Override public KvCache kv(int row) { return b.sequence(b.sequenceOf(row)).kv(); }
                @Override public Rope rope(int row) { return b.sequence(b.sequenceOf(row)).rope(); }
                @Override public int position(int row) { return b.position(row); }
                @Override public int maxCount() { return maxCount; }
            };
        }
    }

    private static final Kernels.Gate SILU_GATE = new Kernels.Gate() {
        @Override public float combine(float gate, float up) { return Ops.silu(gate) * up; }

        @Override public void combine(float[] gate, int gateOff, float[] up, int upOff, int n) { Ops.siluTimes(gate, gateOff, up, upOff, n); }
    };

    /**
     * g[b·ff + i] = silu(gate·x_b)_i · (up·x_b)_i for b in [0, batch): a SwiGLU feed-forward's first half. A single
     * vector (decode) takes one fused dispatch; a batch takes the two batched products (u is scratch).
     */
    private static void swiGlu(Parallel pool, Matrix gate, Matrix up, float[] x, int xStride, int batch, float[] g, float[] u, int ff) {
        if (batch == 1 && gate.type() == up.type()) {
            Kernels.gatedMatVec(pool, gate, up, SILU_GATE, x, 0, g, 0);
            return;
        }
        matmul(pool, gate, x, xStride, batch, g, ff);
        matmul(pool, up, x, xStride, batch, u, ff);
        SILU_GATE.combine(g, 0, u, 0, batch * ff);
    }

    private static void matmul(Parallel pool, Matrix w, float[] x, int xStride, int batch, float[] out, int outStride) {
        if (batch == 1) Kernels.matVec(pool, w, x, 0, out, 0);
        else Kernels.matMul(pool, w, x, xStride, batch, out, outStride);
    }

    private void attention(InferenceState st, Scratch s, int l, int n, Placement rows) {
        LayerWeights lw = layers[l];
        int e = hp.nEmbd(), qDim = hp.qDim(), kvDim = hp.kvDim(), hd = hp.headDim();
        float[] x = s.x, xn = s.xn;
        for (int t = 0; t < n; t++) Ops.rmsNorm(x, t * e, lw.attnNorm(), hp.rmsEps(), xn, t * e, e);
        Parallel pool = st.pool();
        if (n == 1) {
            MatVecSet.begin().add(lw.wq(), xn, 0, s.q, 0).add(lw.wk(), xn, 0, s.k, 0).add(lw.wv(), xn, 0, s.v, 0).run(pool);
        } else {
            // the three products in one dispatch (under batch invariance, a step of several sequences, each row as the
            // single-token set computes it; else a prompt's tiles)
            MatMulSet.beginTiled().add(lw.wq(), xn, 0, e, n, s.q, 0, qDim).add(lw.wk(), xn, 0, e, n, s.k, 0, kvDim)
                    .add(lw.wv(), xn, 0, e, n, s.v, 0, kvDim).run(pool);
        }
        if (lw.bq() != null) {
            for (int t = 0; t < n; t++) {
                addInPlace(s.q, t * qDim, lw.bq(), qDim);
                addInPlace(s.k, t * kvDim, lw.bk(), kvDim);
                addInPlace(s.v, t * kvDim, lw.bv(), kvDim);
            }
        }
        switch (spec.qkNorm()) {
            case PER_HEAD -> {
                for (int t = 0; t < n; t++) {
                    for (int h = 0; h < hp.nHead(); h++) Ops.rmsNorm(s.q, t * qDim + h * hd, lw.qNorm(), hp.rmsEps(), s.q, t * qDim + h * hd, hd);
                    for (int h = 0; h < hp.nHeadKv(); h++) Ops.rmsNorm(s.k, t * kvDim + h * hd, lw.kNorm(), hp.rmsEps(), s.k, t * kvDim + h * hd, hd);
                }
            }
            case FULL -> {
                for (int t = 0; t < n; t++) {
                    Ops.rmsNorm(s.q, t * qDim, lw.qNorm(), hp.rmsEps(), s.q, t * qDim, qDim);
                    Ops.rmsNorm(s.k, t * kvDim, lw.kNorm(), hp.rmsEps(), s.k, t * kvDim, kvDim);
                }
            }
            case NONE -> { }
        }
        for (int t = 0; t < n; t++) {
            Rope rope = rows.rope(t);
            int p = rows.position(t);
            for (int h = 0; h < hp.nHead(); h++) rope.apply(s.q, t * qDim + h * hd, p);
            for (int h = 0; h < hp.nHeadKv(); h++) rope.apply(s.k, t * kvDim + h * hd, p);
            KvCache kv = rows.kv(t);
            System.arraycopy(s.k, t * kvDim, kv.keys(l), kv.offset(p), kvDim);
            System.arraycopy(s.v, t * kvDim, kv.values(l), kv.offset(p), kvDim);
        }

        int nHead = hp.nHead(), group = nHead / hp.nHeadKv();
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] att = s.att; // every head's slice is written whole below
        // Heads that share a KV head go four at a time, so each key and value row is read once for the four
        // (attention over a long context is bound by reading the cache); other group sizes go one head at a time.
        int quad = GROUPED_ATTENTION.orElse(true) && group % 4 == 0 ? 4 : 1;
        int units = n * nHead / quad;
        pool.forRange(units, 1, (start, end) -> {
            float[][] scores = attentionScores(rows.maxCount());
            for (int u = start; u < end; u++) {
                int t = u / (nHead / quad), h = (u % (nHead / quad)) * quad, kvh = h / group;
                KvCache kv = rows.kv(t);
                float[] kc = kv.keys(l), vc = kv.values(l);
                int qOff = t * qDim + h * hd, kOff = kv.offset(0) + kvh * hd;
                int count = rows.position(t) + 1; // causal: this token sees its sequence's positions 0..its own
                if (quad == 4) {
                    Ops.scores4(s.q, qOff, hd, kc, kOff, kvDim, count, hd, scale, scores);
                    for (int g = 0; g < 4; g++) Ops.attentionSoftmax(scores[g], 0, count);
                    Ops.weightedRows4(scores, count, vc, kOff, kvDim, hd, att, qOff, hd);
                } else {
                    float[] sc = scores[0];
                    int j = 0;
                    for (; j + 4 <= count; j += 4) Ops.dot4(s.q, qOff, kc, j * kvDim + kOff, kvDim, hd, sc, j);
                    for (; j < count; j++) sc[j] = Ops.dot(s.q, qOff, kc, j * kvDim + kOff, hd);
                    for (j = 0; j < count; j++) sc[j] *= scale;
                    Ops.attentionSoftmax(sc, 0, count);
                    Ops.weightedRows(sc, count, vc, kOff, kvDim, hd, att, qOff);
                }
            }
        });
        matmul(pool, lw.wo(), att, qDim, n, s.tmp, e);
        for (int i = 0; i < n * e; i++) x[i] += s.tmp[i];
    }

    private static void addInPlace(float[] y, int off, float[] b, int n) {
        for (int i = 0; i < n; i++) y[off + i] += b[i];
    }

    private void dense(InferenceState st, Scratch s, LayerWeights lw, int n) {
        int e = hp.nEmbd(), ff = hp.nFf();
        float[] g = s.ensureFf(n * ff, 0), u = s.ensureFf(n * ff, 1);
        swiGlu(st.pool(), lw.ffnGate(), lw.ffnUp(), s.xn, e, n, g, u, ff);
        matmul(st.pool(), lw.ffnDown(), g, ff, n, s.tmp, e);
    }

    /**
     * Values a MoE layer's copies and sums over a batch must reach before the pool's threads share them (a dispatch costs
     * microseconds). Not final: the tests lower it to run the shared form on small models (it changes no bit).
     */
    static volatile long spreadMinValues = 1 << 15;

    /** task over [0, count) on the pool's threads when its work covers {@link #spreadMinValues} values, else on this thread. */
    private static void spread(Parallel pool, int count, long values, Parallel.RangeTask task) {
        if (pool != null && pool.threads() > 1 && values >= spreadMinValues) pool.forRange(count, 1, task);
        else task.run(0, count);
    }

    /** An MoE layer over the pass's n rows; {@code batch} is the step's rows when several sequences share it (else null). */
    private void moe(InferenceState st, Scratch s, int l, int n, int pos, Batch batch) {
        LayerWeights lw = layers[l];
        int e = hp.nEmbd(), nExp = hp.nExpert(), k = hp.nExpertUsed();
        Parallel pool = st.pool();
        float[] probs = s.routerProbs;
        matmul(pool, lw.router(), s.xn, e, n, probs, nExp);
        Routing routing = s.routing;
        routing.reset(n, nExp, k);
        int bad = Ops.firstNonFinite(probs, 0, n * nExp);
        if (bad >= 0) {
            throw new ModelException(file.path() + ": router scores of layer " + l + " at position " + (pos + bad / nExp)
                    + " are not finite (expert " + bad % nExp + ": " + probs[bad] + "); blk." + l
                    + ".ffn_gate_inp.weight or the data reaching it is corrupt");
        }
        for (int t = 0; t < n; t++) {
            Ops.softmax(probs, t * nExp, nExp);
            routing.selectTopK(t, probs, t * nExp, spec.renormTopK());
        }
        RoutingHook hook = st.routingHook();
        if (hook != null) {
            if (batch != null) hook.onBatchRouting(l, batch, probs, routing);
            else hook.onRouting(l, pos, n, probs, routing);
        }

        // Each selected expert's output goes to its own slot and the slots are summed in selection order at
        // the end, so the result does not depend on the order the experts are computed in (residency).
        float[] slots = s.ensureSlots(n * k * e);
        float[] sharedOut = routedExperts(st, s, lw, l, n, pos);
        float[] out = s.tmp;
        Parallel.RangeTask weigh = (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                int o = t * e;
                for (int j = 0; j < k; j++) {
                    float wgt = routing.weight(t, j);
                    int so = (t * k + j) * e;
                    if (j == 0) for (int i = 0; i < e; i++) out[o + i] = slots[so + i] * wgt;
                    else for (int i = 0; i < e; i++) out[o + i] += slots[so + i] * wgt;
                }
            }
        };
        // a prompt's tokens on every thread (each token's sum in its own selection order, whichever thread adds it)
        spread(pool, n, (long) n * k * e, weigh);
        if (sharedOut != null) addShared(s, lw, sharedOut, n);
        else if (lw.sharedGate() != null) sharedExpert(st, s, lw, n);
    }

    /**
     * The routed experts of layer l over the pass's n rows, into each row's slots: the one place the MoE layer reaches its
     * experts. The expert set of all the rows (a batch of several sequences' tokens too) goes to the source at once
     * ({@link ExpertSource#willUse}), then each expert is acquired, computed once over every row routed to it and released
     * ({@link #expertByExpert}); when the experts are all ready, a single token takes one fused pair of dispatches instead
     * ({@link #decodeExperts}, the same products) and several rows another ({@link #batchExperts}: the products
     * {@link Kernels#matMul} computes for each expert). Returns the shared expert's output when the fused dispatches
     * computed it, else null.
     */
    private float[] routedExperts(InferenceState st, Scratch s, LayerWeights lw, int l, int n, int pos) {
        int[] used = s.routing.usedExperts();
        ExpertExecutor executor = st.expertExecutor();
        if (executor != null) {
            executedElsewhere(s, executor, l, n, pos, used);
            return null;
        }
        ExpertSource source = st.experts();
        Parallel pool = st.pool();
        source.willUse(l, used, pool);
        // (every expert of a layer has the types of the stacked tensors; a gate and up of two types take the plain path)
        boolean gatedTogether = lw.experts() != null && lw.experts().gate().type() == lw.experts().up().type();
        if (gatedTogether && source.allReady(l, used)) {
            if (n == 1) {
                float[] sharedOut = decodeExperts(s, source, lw, l, used, pool);
                if (st.partialOutputHook() != null) reportPartial(st.partialOutputHook(), s, l, pos, used, used.length);
                return sharedOut;
            }
            return batchExperts(s, source, lw, l, n, used, pool);
        }
        expertByExpert(st, s, source, l, n, pos, used, pool);
        return null;
    }

    /**
     * Several rows whose experts are all ready, gate and up of one type (a prompt, or a step of several sequences):
     * every expert's gate and up products over the rows routed to it (and the shared expert's over all rows) in one
     * dispatch, then every down product in another, instead of three dispatches per expert ({@link MatMulSet}: each
     * weight read once for all of its expert's rows). The sets are tiled: a prompt's larger groups take float tiles or
     * decoded panels, while under {@link Kernels#withBatchInvariance} (several sequences) each row is computed as the
     * single-token path computes it. Returns the shared expert's output when it joined the dispatches, else null.
     */
    private float[] batchExperts(Scratch s, ExpertSource source, LayerWeights lw, int l, int n, int[] used, Parallel pool) {
        int e = hp.nEmbd(), ffE = hp.nFfExpert(), k = hp.nExpertUsed();
        boolean shared = lw.sharedGate() != null && lw.sharedGate().type() == lw.sharedUp().type();
        int ffS = shared ? lw.sharedGate().rows() : 0;
        Routing routing = s.routing;
        int rows = 0;
        for (int ex : used) rows += routing.tokenCount(ex);
        float[] slots = s.slots(), in = s.ensureFf(rows * e, 2), g = s.ensureFf(rows * ffE + n * ffS, 0), d = s.ensureFf(rows * e + n * e, 3);
        ExpertWeights[] ws = s.expertWeights(used.length);
        try {
            for (int i = 0; i < used.length; i++) ws[i] = source.acquire(l, used[i]);
            int[] starts = s.expertStarts(used.length + 1);
            starts[0] = 0;
            for (int i = 0; i < used.length; i++) starts[i + 1] = starts[i] + routing.tokenCount(used[i]);
            // the rows routed to each expert gathered, and later its outputs spread to their slots, on every thread: on
            // the calling thread alone these copies took ~1.5% of a prompt's CPU samples while the others waited (perf)
            Parallel.RangeTask gather = (i0, i1) -> {
                for (int i = i0; i < i1; i++) {
                    for (int j = 0, m = starts[i + 1] - starts[i]; j < m; j++) System.arraycopy(s.xn, routing.token(used[i], j) * e, in, (starts[i] + j) * e, e);
                }
            };
            spread(pool, used.length, (long) rows * e, gather);
            MatMulSet gated = MatMulSet.beginTiled();
            for (int i = 0; i < used.length; i++) {
                int r = starts[i];
                gated.addGated(ws[i].gate(), ws[i].up(), SILU_GATE, in, r * e, e, starts[i + 1] - r, g, r * ffE, ffE);
            }
            if (shared) gated.addGated(lw.sharedGate(), lw.sharedUp(), SILU_GATE, s.xn, 0, e, n, g, rows * ffE, ffS);
            gated.run(pool);
            MatMulSet down = MatMulSet.beginTiled();
            for (int i = 0; i < used.length; i++) {
                int r = starts[i];
                down.add(ws[i].down(), g, r * ffE, ffE, starts[i + 1] - r, d, r * e, e);
            }
            if (shared) down.add(lw.sharedDown(), g, rows * ffE, ffS, n, d, rows * e, e);
            down.run(pool);
            // each (token, slot) belongs to one expert: the experts' copies never overlap
            Parallel.RangeTask scatter = (i0, i1) -> {
                for (int i = i0; i < i1; i++) {
                    int ex = used[i];
                    for (int j = 0, m = starts[i + 1] - starts[i]; j < m; j++) {
                        System.arraycopy(d, (starts[i] + j) * e, slots, (routing.token(ex, j) * k + routing.slot(ex, j)) * e, e);
                    }
                }
            };
            spread(pool, used.length, (long) rows * e, scatter);
        } finally {
            for (int i = 0; i < used.length; i++) {
                if (ws[i] != null) source.release(ws[i]);
                ws[i] = null;
            }
        }
        if (!shared) return null;
        float[] sharedOut = s.ensureSharedOut(n * e);
        System.arraycopy(d, rows * e, sharedOut, 0, n * e);
        return sharedOut;
    }

    /**
     * Each used expert in the order the source gives, on the batch's tokens routed to it, into their slots. Experts the
     * source computes aside (its slow side) run on its thread meanwhile ({@link #startAside}); a single-token step reports
     * its partial output once the experts that were ready are done ({@link PartialOutputHook}).
     */
    private void expertByExpert(InferenceState st, Scratch s, ExpertSource source, int l, int n, int pos, int[] used, Parallel pool) {
        int e = hp.nEmbd(), k = hp.nExpertUsed(), ffE = hp.nFfExpert();
        Routing routing = s.routing;
        float[] slots = s.slots();
        int[] aside = source.aside(l);
        java.util.concurrent.Future<?> slowSide = aside.length > 0 ? startAside(s, source, l, aside) : null;
        PartialOutputHook hook = n == 1 ? st.partialOutputHook() : null;
        int ready = hook != null ? source.readyCount(l) : -1, done = 0;
        int[] computed = s.computedExperts(used.length);
        if (ready == 0) reportPartial(hook, s, l, pos, computed, 0);
        Throwable failure = null;
        try {
            for (int ex : source.order(l, used)) {
                if (contains(aside, ex)) continue;
                int m = routing.tokenCount(ex);
                float[] in = s.ensureFf(m * e, 2), g = s.ensureFf(m * ffE, 0), u = s.ensureFf(m * ffE, 1), d = s.ensureFf(m * e, 3);
                for (int i = 0; i < m; i++) System.arraycopy(s.xn, routing.token(ex, i) * e, in, i * e, e);
                acquiredExpert(pool, source, l, ex, in, m, g, u, d);
                for (int i = 0; i < m; i++) {
                    int t = routing.token(ex, i), slot = routing.slot(ex, i);
                    System.arraycopy(d, i * e, slots, (t * k + slot) * e, e);
                }
                computed[done] = ex;
                if (++done == ready) reportPartial(hook, s, l, pos, computed, done);
            }
        } catch (RuntimeException | Error t) {
            failure = t;
            throw t;
        } finally {
            if (slowSide != null) joinAside(slowSide, failure);
        }
    }

    /**
     * Expert (l, ex) from {@code source} on {@code m} gathered rows of {@code in} into {@code d}, {@code g} and {@code u}
     * its scratch: acquired for the products and released after them, whatever happens.
     */
    private void acquiredExpert(Parallel pool, ExpertSource source, int l, int ex, float[] in, int m, float[] g, float[] u, float[] d) {
        int e = hp.nEmbd(), ffE = hp.nFfExpert();
        ExpertWeights w = source.acquire(l, ex);
        try {
            swiGlu(pool, w.gate(), w.up(), in, e, m, g, u, ffE);
            matmul(pool, w.down(), g, ffE, m, d, e);
        } finally {
            source.release(w);
        }
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }

    /**
     * Starts the experts the source computes aside on its own thread, one thread's products each (a slow device of its
     * own), into their slots, which the pass does not touch until {@link #joinAside}. The products are the ones the pass
     * computes for any expert, with this model's activation rounding bound on that thread, so the result is the same bits.
     */
    private java.util.concurrent.Future<?> startAside(Scratch s, ExpertSource source, int l, int[] aside) {
        int e = hp.nEmbd(), k = hp.nExpertUsed(), ffE = hp.nFfExpert();
        Routing routing = s.routing;
        float[] slots = s.slots(), xn = s.xn;
        int most = 0;
        for (int ex : aside) most = Math.max(most, routing.tokenCount(ex));
        float[][] buf = s.asideBuffers(most * e, most * ffE);
        boolean int8 = int8Activations, scalar = Kernels.scalarReference(), invariant = Kernels.batchInvariance();
        Runnable work = () -> {
            for (int ex : aside) {
                int m = routing.tokenCount(ex);
                float[] in = buf[0], g = buf[1], u = buf[2], d = buf[3];
                for (int i = 0; i < m; i++) System.arraycopy(xn, routing.token(ex, i) * e, in, i * e, e);
                acquiredExpert(null, source, l, ex, in, m, g, u, d);
                for (int i = 0; i < m; i++) System.arraycopy(d, i * e, slots, (routing.token(ex, i) * k + routing.slot(ex, i)) * e, e);
            }
        };
        // the pass's bindings, on the aside thread too: a step of several sequences keeps every row's arithmetic there
        return source.runAside(() -> Kernels.withScalarReference(scalar, () -> {
            Kernels.withActivationQuantization(int8, () -> Kernels.withBatchInvariance(invariant, work));
            return null;
        }));
    }

    /** Waits for the aside experts; their failure is this pass's, unless the pass already failed (then it is attached). */
    private static void joinAside(java.util.concurrent.Future<?> f, Throwable failure) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    f.get();
                    return;
                } catch (InterruptedException ie) {
                    interrupted = true; // the slots are shared: the aside work must end before the pass moves on
                } catch (java.util.concurrent.ExecutionException ee) {
                    Throwable c = ee.getCause();
                    if (failure != null) {
                        failure.addSuppressed(c);
                        return;
                    }
                    if (c instanceof RuntimeException r) throw r;
                    if (c instanceof Error err) throw err;
                    throw new IllegalStateException("slow-side expert computation failed: " + c, c);
                } catch (java.util.concurrent.CancellationException ce) {
                    if (failure == null) throw new IllegalStateException("the slow side was shut down while computing experts");
                    return;
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** Tells the hook the weighted sum of the first {@code count} experts of {@code computed} (a single-token step). */
    private void reportPartial(PartialOutputHook hook, Scratch s, int l, int pos, int[] computed, int count) {
        int e = hp.nEmbd();
        float[] partial = s.partial();
        java.util.Arrays.fill(partial, 0f);
        float[] slots = s.slots();
        for (int c = 0; c < count; c++) {
            int j = s.routing.slot(computed[c], 0);
            float wgt = s.routing.weight(0, j);
            for (int i = 0; i < e; i++) partial[i] += slots[j * e + i] * wgt;
        }
        hook.afterReadyExperts(l, pos, s.x, partial, count);
    }

    /**
     * The layer's experts through an {@link ExpertExecutor}: each used expert's rows gathered as
     * {@link #expertByExpert} gathers them, all handed over in one call, the outputs scattered into the same slots.
     */
    private void executedElsewhere(Scratch s, ExpertExecutor executor, int l, int n, int pos, int[] used) {
        int e = hp.nEmbd(), k = hp.nExpertUsed();
        Routing routing = s.routing;
        float[] slots = s.slots();
        List<ExpertExecutor.Call> calls = new ArrayList<>(used.length);
        for (int ex : used) {
            int m = routing.tokenCount(ex);
            float[] in = new float[m * e];
            for (int i = 0; i < m; i++) System.arraycopy(s.xn, routing.token(ex, i) * e, in, i * e, e);
            calls.add(new ExpertExecutor.Call(ex, m, in, new float[m * e]));
        }
        executor.computeLayer(l, pos, n, calls);
        for (ExpertExecutor.Call c : calls) {
            for (int i = 0; i < c.rows(); i++) {
                int t = routing.token(c.expert(), i), slot = routing.slot(c.expert(), i);
                System.arraycopy(c.output(), i * e, slots, (t * k + slot) * e, e);
            }
        }
    }

    /**
     * One expert on {@code rows} rows of normed hidden state ({@code input}, row-major, rows × nEmbd) into
     * {@code output} (same shape): the very products and SiLU the MoE layer computes for it (a decode token's fused
     * dispatch gives the same bits per row). Worker nodes call this so a remote expert equals a local one; the
     * caller binds the model's activation rounding ({@link Kernels#withActivationQuantization}).
     */
    public static void computeExpert(Parallel pool, ExpertWeights w, float[] input, int rows, float[] output) {
        int e = w.gate().cols(), ffE = w.gate().rows();
        if (rows < 1 || input.length < rows * e || output.length < rows * e) {
            throw new IllegalArgumentException("expert " + w.layer() + "/" + w.expert() + ": " + rows + " rows of " + e
                    + " need input and output of " + rows * e + " floats, got " + input.length + " and " + output.length);
        }
        float[] g = new float[rows * ffE], u = new float[rows * ffE];
        swiGlu(pool, w.gate(), w.up(), input, e, rows, g, u, ffE);
        matmul(pool, w.down(), g, ffE, rows, output, e);
    }

    /**
     * One token's experts, all ready, gate and up of one type: every expert's gate and up products in one dispatch, then every down product
     * in another, straight into the token's slots. The products are the ones the per-expert path computes; the first
     * dispatch also lays its outputs out for the down products as they are computed. A shared expert (qwen2moe)
     * whose gate and up have one type joins both dispatches: its down output is returned for {@link #addShared}
     * (null when there is none, or it is left to {@link #sharedExpert}).
     */
    private float[] decodeExperts(Scratch s, ExpertSource source, LayerWeights lw, int l, int[] used, Parallel pool) {
        int e = hp.nEmbd(), ffE = hp.nFfExpert(), m = used.length;
        boolean shared = lw.sharedGate() != null && lw.sharedGate().type() == lw.sharedUp().type();
        int ffS = shared ? lw.sharedGate().rows() : 0;
        Routing routing = s.routing;
        float[] slots = s.slots(), g = s.ensureFf(m * ffE + ffS, 0);
        float[] sharedOut = shared ? s.ensureFf(e, 3) : null;
        ExpertWeights[] ws = s.expertWeights(m);
        try {
            for (int i = 0; i < m; i++) ws[i] = source.acquire(l, used[i]);
            MatVecSet gated = MatVecSet.begin();
            for (int i = 0; i < m; i++) gated.addGated(ws[i].gate(), ws[i].up(), SILU_GATE, s.xn, 0, g, i * ffE).thenInputOf(ws[i].down());
            if (shared) gated.addGated(lw.sharedGate(), lw.sharedUp(), SILU_GATE, s.xn, 0, g, m * ffE).thenInputOf(lw.sharedDown());
            gated.run(pool);
            MatVecSet down = MatVecSet.begin();
            for (int i = 0; i < m; i++) down.add(ws[i].down(), g, i * ffE, slots, routing.slot(used[i], 0) * e);
            if (shared) down.add(lw.sharedDown(), g, m * ffE, sharedOut, 0);
            down.run(pool);
            return sharedOut;
        } finally {
            for (int i = 0; i < m; i++) {
                if (ws[i] != null) source.release(ws[i]);
                ws[i] = null;
            }
        }
    }

    private void sharedExpert(InferenceState st, Scratch s, LayerWeights lw, int n) {
        int e = hp.nEmbd(), ff = lw.sharedGate().rows();
        float[] g = s.ensureFf(n * ff, 0), u = s.ensureFf(n * ff, 1), d = s.ensureFf(n * e, 3);
        swiGlu(st.pool(), lw.sharedGate(), lw.sharedUp(), s.xn, e, n, g, u, ff);
        matmul(st.pool(), lw.sharedDown(), g, ff, n, d, e);
        addShared(s, lw, d, n);
    }

    /** The shared expert's outputs d (one per token), each scaled by sigmoid(gate_inp_shexp · x), added to the layer's. */
    private void addShared(Scratch s, LayerWeights lw, float[] d, int n) {
        int e = hp.nEmbd();
        for (int t = 0; t < n; t++) {
            float gate = Ops.sigmoid(Ops.dot(lw.sharedGateInp(), 0, s.xn, t * e, e));
            for (int i = 0; i < e; i++) s.tmp[t * e + i] += d[t * e + i] * gate;
        }
    }

    /** Working buffers for a batch of up to {@code capacity} tokens, reused across calls. */
    static final class Scratch {
        final int capacity;
        final float[] x, xn, q, k, v, att, tmp, routerProbs;
        final Routing routing;
        private final float[][] ff = new float[4][];
        private float[] slots = new float[0];
        private ExpertWeights[] held = new ExpertWeights[0];
        private final float[][] aside = {new float[0], new float[0], new float[0], new float[0]};
        private int[] computed = new int[0];
        private final float[] partial;

        Scratch(Hyperparams hp, int capacity) {
            this.capacity = capacity;
            int e = hp.nEmbd();
            x = new float[capacity * e];
            xn = new float[capacity * e];
            q = new float[capacity * hp.qDim()];
            k = new float[capacity * hp.kvDim()];
            v = new float[capacity * hp.kvDim()];
            att = new float[capacity * hp.qDim()];
            tmp = new float[capacity * e];
            routerProbs = new float[capacity * Math.max(1, hp.nExpert())];
            routing = new Routing(capacity, Math.max(1, hp.nExpert()), Math.max(1, hp.nExpertUsed()));
            for (int i = 0; i < ff.length; i++) ff[i] = new float[0];
            partial = new float[e];
        }

        /** Input, gate, up and down buffers of the experts computed aside (the pass's own are in use meanwhile). */
        float[][] asideBuffers(int embd, int ff) {
            if (aside[0].length < embd) {
                aside[0] = new float[embd];
                aside[3] = new float[embd];
            }
            if (aside[1].length < ff) {
                aside[1] = new float[ff];
                aside[2] = new float[ff];
            }
            return aside;
        }

        private int[] expertStarts = new int[0];

        /** A reusable array of at least n ints: where each used expert's rows start in a batch's gathered rows. */
        int[] expertStarts(int n) {
            if (expertStarts.length < n) expertStarts = new int[n];
            return expertStarts;
        }

        /** A reusable array of at least n expert ids (which experts a step has computed). */
        int[] computedExperts(int n) {
            if (computed.length < n) computed = new int[n];
            return computed;
        }

        /** One token's partial MoE output (see PartialOutputHook). */
        float[] partial() {
            return partial;
        }

        float[] ensureFf(int size, int which) {
            if (ff[which].length < size) ff[which] = new float[size];
            return ff[which];
        }

        float[] ensureSlots(int size) {
            if (slots.length < size) slots = new float[size];
            return slots;
        }

        /** The slots last sized by {@link #ensureSlots}. */
        float[] slots() {
            return slots;
        }

        private float[] sharedOut = new float[0];

        /** The shared expert's output of a batch fused with the routed experts (kept apart from the other buffers). */
        float[] ensureSharedOut(int size) {
            if (sharedOut.length < size) sharedOut = new float[size];
            return sharedOut;
        }

        /** A reusable array of at least n experts' weights (entries are cleared after use). */
        ExpertWeights[] expertWeights(int n) {
            if (held.length < n) held = new ExpertWeights[n];
            return held;
        }
    }

    /** Each thread's score rows for {@link #attention}'s chunks, grown to the longest context seen. */
    private static final ThreadLocal<float[][]> ATTENTION_SCORES = ThreadLocal.withInitial(() -> new float[4][0]);

    /**
     * Four score rows of at least {@code length} floats for this thread. A fresh set per chunk was a few GB of garbage
     * per speed run (JFR): rows sized for the whole context, per chunk, per layer, per token.
     */
    private static float[][] attentionScores(int length) {
        float[][] rows = ATTENTION_SCORES.get();
        if (rows[0].length < length) {
            rows = new float[4][length];
            ATTENTION_SCORES.set(rows);
        }
        return rows;
    }
}
