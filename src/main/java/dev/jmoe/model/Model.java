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
    /** Off only in tests, to compare the four-heads-at-a-time attention with the one-head path. */
    static volatile boolean groupedAttention = true;

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

    Model(GgufFile file, ArchSpec spec, Hyperparams hp, Matrix tokenEmbd, float[] outputNorm, Matrix output,
          float[] ropeFreqs, LayerWeights[] layers) {
        this(file, spec, hp, tokenEmbd, outputNorm, output, ropeFreqs, layers, false);
    }

    private Model(GgufFile file, ArchSpec spec, Hyperparams hp, Matrix tokenEmbd, float[] outputNorm, Matrix output,
                  float[] ropeFreqs, LayerWeights[] layers, boolean packExperts) {
        this.file = file;
        this.spec = spec;
        this.hp = hp;
        this.tokenEmbd = tokenEmbd;
        this.outputNorm = outputNorm;
        this.output = output;
        this.ropeFreqs = ropeFreqs;
        this.layers = layers;
        this.residentExperts = new ResidentExpertSource(stackedExperts(), packExperts);
        this.packsWeights = packExperts;
    }

    /** Whether this model computes Q4_0, Q4_K and Q6_K products on packed copies ({@link #withPackedWeights}). */
    public boolean packsWeights() { return packsWeights; }

    /**
     * This model with its Q4_0, Q4_K and Q6_K matrices regrouped for the integer kernels ({@link PackedMatrix}): the attention,
     * dense and shared-expert matrices and the output now, each routed expert when it is first used from the
     * resident source (an offloading run never packs them). Single vectors (decode) and small batches read the
     * packed copies; prompt batches of four or more still take the float tile path on the file's rows, which is
     * faster there, so the packed copies are memory on top of the mapping (about 1.1× the Q4_0 bytes, 1.33× the Q4_K
     * bytes and 1.5× the Q6_K bytes, on the Java heap; a matrix the heap has no room for stays unpacked; --no-pack
     * avoids it). Matrices of other types, or without whole groups of 16 rows, stay as they are.
     */
    public Model withPackedWeights() {
        LayerWeights[] packed = new LayerWeights[layers.length];
        for (int l = 0; l < layers.length; l++) {
            LayerWeights w = layers[l];
            packed[l] = new LayerWeights(w.attnNorm(), pack(w.wq()), pack(w.wk()), pack(w.wv()), pack(w.wo()),
                    w.bq(), w.bk(), w.bv(), w.qNorm(), w.kNorm(), w.ffnNorm(),
                    pack(w.ffnGate()), pack(w.ffnUp()), pack(w.ffnDown()), w.router(), w.experts(),
                    w.sharedGateInp(), pack(w.sharedGate()), pack(w.sharedUp()), pack(w.sharedDown()));
        }
        return new Model(file, spec, hp, tokenEmbd, outputNorm, pack(output), ropeFreqs, packed, true);
    }

    private static Matrix pack(Matrix m) {
        if (m == null || m.packed() != null || !Packing.canPack(m)) return m;
        PackedMatrix p = Packing.packIfRoom(m, null);
        return p == null ? m : m.withPacked(p);
    }

    /** Loads the model described by an open GGUF file (the file must stay open while the model is used). */
    public static Model load(GgufFile file) {
        return ModelLoader.load(file);
    }

    public GgufFile file() { return file; }
    public ArchSpec spec() { return spec; }
    public Hyperparams hyperparams() { return hp; }
    public LayerWeights layer(int l) { return layers[l]; }
    public Matrix tokenEmbedding() { return tokenEmbd; }
    public Matrix output() { return output; }
    public float[] outputNorm() { return outputNorm; }
    float[] ropeFreqFactors() { return ropeFreqs; }

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

    // ---------------------------------------------------------------- forward pass

    /**
     * Runs {@code n} tokens starting at {@code tokens[off]} at positions {@code st.position()}… and advances
     * the position. If {@code logits} is non-null it receives the logits of the last token (length nVocab)
     * or, with {@code allLogits}, of every token ({@code n × nVocab}).
     */
    void forward(InferenceState st, int[] tokens, int off, int n, float[] logits, boolean allLogits) {
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
        for (int l = 0; l < hp.nLayer(); l++) {
            attention(st, s, l, n, pos);
            LayerWeights lw = layers[l];
            for (int t = 0; t < n; t++) Ops.rmsNorm(x, t * e, lw.ffnNorm(), hp.rmsEps(), s.xn, t * e, e);
            LayerHook layerHook = st.layerHook();
            if (layerHook != null) layerHook.beforeFfn(l, pos, n, x, s.xn);
            if (lw.isMoe()) moe(st, s, l, n, pos);
            else dense(st, s, lw, n);
            for (int i = 0; i < n * e; i++) x[i] += s.tmp[i];
        }
        if (logits == null) {
            st.advance(n);
            return;
        }
        int first = allLogits ? 0 : n - 1;
        int rows = n - first;
        for (int t = first; t < n; t++) Ops.rmsNorm(x, t * e, outputNorm, hp.rmsEps(), s.xn, (t - first) * e, e);
        matmul(st.pool(), output, s.xn, e, rows, logits, hp.nVocab());
        st.advance(n);
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

    private void attention(InferenceState st, Scratch s, int l, int n, int pos) {
        LayerWeights lw = layers[l];
        int e = hp.nEmbd(), qDim = hp.qDim(), kvDim = hp.kvDim(), hd = hp.headDim();
        float[] x = s.x, xn = s.xn;
        for (int t = 0; t < n; t++) Ops.rmsNorm(x, t * e, lw.attnNorm(), hp.rmsEps(), xn, t * e, e);
        Parallel pool = st.pool();
        if (n == 1) {
            MatVecSet.begin().add(lw.wq(), xn, 0, s.q, 0).add(lw.wk(), xn, 0, s.k, 0).add(lw.wv(), xn, 0, s.v, 0).run(pool);
        } else {
            MatMulSet.begin().add(lw.wq(), xn, 0, e, n, s.q, 0, qDim).add(lw.wk(), xn, 0, e, n, s.k, 0, kvDim)
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
        Rope rope = st.rope();
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < hp.nHead(); h++) rope.apply(s.q, t * qDim + h * hd, pos + t);
            for (int h = 0; h < hp.nHeadKv(); h++) rope.apply(s.k, t * kvDim + h * hd, pos + t);
        }
        float[] kc = st.kv().keys(l), vc = st.kv().values(l);
        System.arraycopy(s.k, 0, kc, pos * kvDim, n * kvDim);
        System.arraycopy(s.v, 0, vc, pos * kvDim, n * kvDim);

        int nHead = hp.nHead(), group = nHead / hp.nHeadKv();
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] att = s.att; // every head's slice is written whole below
        // Heads that share a KV head go four at a time, so each key and value row is read once for the four
        // (attention over a long context is bound by reading the cache); other group sizes go one head at a time.
        int quad = groupedAttention && group % 4 == 0 ? 4 : 1;
        int units = n * nHead / quad;
        pool.forRange(units, 1, (start, end) -> {
            float[][] scores = new float[quad][pos + n];
            for (int u = start; u < end; u++) {
                int t = u / (nHead / quad), h = (u % (nHead / quad)) * quad, kvh = h / group;
                int qOff = t * qDim + h * hd, kOff = kvh * hd;
                int count = pos + t + 1; // causal: this token sees positions 0..pos+t
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

    private void moe(InferenceState st, Scratch s, int l, int n, int pos) {
        LayerWeights lw = layers[l];
        int e = hp.nEmbd(), nExp = hp.nExpert(), k = hp.nExpertUsed();
        Parallel pool = st.pool();
        float[] probs = s.routerProbs;
        matmul(pool, lw.router(), s.xn, e, n, probs, nExp);
        Routing routing = s.routing;
        routing.reset(n, nExp, k);
        for (int t = 0; t < n; t++) {
            Ops.softmax(probs, t * nExp, nExp);
            routing.selectTopK(t, probs, t * nExp, spec.renormTopK());
        }
        RoutingHook hook = st.routingHook();
        if (hook != null) hook.onRouting(l, pos, n, probs, routing);

        // Each selected expert's output goes to its own slot and the slots are summed in selection order at
        // the end, so the result does not depend on the order the experts are computed in (residency).
        float[] slots = s.ensureSlots(n * k * e);
        int[] used = routing.usedExperts();
        ExpertSource source = st.experts();
        source.willUse(l, used, pool);
        float[] sharedOut = null;
        // (every expert of a layer has the types of the stacked tensors; a gate and up of two types take the plain path)
        boolean gatedTogether = lw.experts() != null && lw.experts().gate().type() == lw.experts().up().type();
        if (n == 1 && gatedTogether && source.allReady(l, used)) sharedOut = decodeExperts(s, source, lw, l, used, pool);
        else if (gatedTogether && source.allReady(l, used)) promptExperts(s, source, l, n, used, pool);
        else expertByExpert(s, source, l, n, used, pool);
        float[] out = s.tmp;
        for (int t = 0; t < n; t++) {
            int o = t * e;
            for (int j = 0; j < k; j++) {
                float wgt = routing.weight(t, j);
                int so = (t * k + j) * e;
                if (j == 0) for (int i = 0; i < e; i++) out[o + i] = slots[so + i] * wgt;
                else for (int i = 0; i < e; i++) out[o + i] += slots[so + i] * wgt;
            }
        }
        if (sharedOut != null) addShared(s, lw, sharedOut, n);
        else if (lw.sharedGate() != null) sharedExpert(st, s, lw, n);
    }

    /** Each used expert in the order the source gives, on the batch's tokens routed to it, into their slots. */
    private void expertByExpert(Scratch s, ExpertSource source, int l, int n, int[] used, Parallel pool) {
        int e = hp.nEmbd(), k = hp.nExpertUsed(), ffE = hp.nFfExpert();
        Routing routing = s.routing;
        float[] slots = s.slots();
        for (int ex : source.order(l, used)) {
            int m = routing.tokenCount(ex);
            float[] in = s.ensureFf(m * e, 2), g = s.ensureFf(m * ffE, 0), u = s.ensureFf(m * ffE, 1), d = s.ensureFf(m * e, 3);
            for (int i = 0; i < m; i++) System.arraycopy(s.xn, routing.token(ex, i) * e, in, i * e, e);
            ExpertWeights w = source.acquire(l, ex);
            try {
                swiGlu(pool, w.gate(), w.up(), in, e, m, g, u, ffE);
                matmul(pool, w.down(), g, ffE, m, d, e);
            } finally {
                source.release(w);
            }
            for (int i = 0; i < m; i++) {
                int t = routing.token(ex, i), slot = routing.slot(ex, i);
                System.arraycopy(d, i * e, slots, (t * k + slot) * e, e);
            }
        }
    }

    /**
     * A batch's experts, all ready, gate and up of one type: each expert's tokens are gathered into one input block,
     * every expert's gated gate/up product runs in one dispatch and every down product in another (what
     * {@link #expertByExpert} computes, expert by expert, in three dispatches each), then each token's outputs go to
     * its slots.
     */
    private void promptExperts(Scratch s, ExpertSource source, int l, int n, int[] used, Parallel pool) {
        int e = hp.nEmbd(), k = hp.nExpertUsed(), ffE = hp.nFfExpert(), m = used.length;
        Routing routing = s.routing;
        float[] slots = s.slots();
        int total = 0;
        for (int ex : used) total += routing.tokenCount(ex);
        float[] in = s.ensureFf(total * e, 2), g = s.ensureFf(total * ffE, 0), d = s.ensureFf(total * e, 3);
        ExpertWeights[] ws = s.expertWeights(m);
        try {
            for (int i = 0; i < m; i++) ws[i] = source.acquire(l, used[i]);
            MatMulSet gated = MatMulSet.begin();
            for (int i = 0, row = 0; i < m; row += routing.tokenCount(used[i]), i++) {
                int ex = used[i], c = routing.tokenCount(ex);
                for (int j = 0; j < c; j++) System.arraycopy(s.xn, routing.token(ex, j) * e, in, (row + j) * e, e);
                gated.addGated(ws[i].gate(), ws[i].up(), SILU_GATE, in, row * e, e, c, g, row * ffE, ffE);
            }
            gated.run(pool);
            MatMulSet down = MatMulSet.begin();
            for (int i = 0, row = 0; i < m; row += routing.tokenCount(used[i]), i++) {
                down.add(ws[i].down(), g, row * ffE, ffE, routing.tokenCount(used[i]), d, row * e, e);
            }
            down.run(pool);
            for (int i = 0, row = 0; i < m; row += routing.tokenCount(used[i]), i++) {
                int ex = used[i];
                for (int j = 0; j < routing.tokenCount(ex); j++) {
                    int t = routing.token(ex, j), slot = routing.slot(ex, j);
                    System.arraycopy(d, (row + j) * e, slots, (t * k + slot) * e, e);
                }
            }
        } finally {
            for (int i = 0; i < m; i++) {
                if (ws[i] != null) source.release(ws[i]);
                ws[i] = null;
            }
        }
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

        /** A reusable array of at least n experts' weights (entries are cleared after use). */
        ExpertWeights[] expertWeights(int n) {
            if (held.length < n) held = new ExpertWeights[n];
            return held;
        }
    }
}
