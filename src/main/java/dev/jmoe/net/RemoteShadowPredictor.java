package dev.jmoe.net;

import com.google.protobuf.ByteString;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.Lookahead;
import dev.jmoe.experts.store.Link;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KvCache;
import dev.jmoe.net.proto.AlignMessage;
import dev.jmoe.net.proto.Prediction;
import dev.jmoe.net.proto.ShadowNodeGrpc;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Consumer;

/**
 * The main node's end of a shadow node ({@code --shadow-node}): an {@link ExpertPredictor} that sends the main model's
 * tokens and completed KV entries to the shadow node and answers {@link #predict} from the routings the shadow streams
 * back, without ever waiting for the network. Until the shadow has published a layer (or when what it published was
 * built on a token the main model did not run at an aligned position) it answers from its fallback, as the in-process
 * shadow does. If the shadow node is lost (the stream fails), prediction stops: every expert is then loaded on demand
 * by the worker that computes it, which is slower but exactly as correct.
 */
public final class RemoteShadowPredictor implements ExpertPredictor {
    private record Entry(int pos, int token, int prevToken, int[] ranking) {}

    private static final int RING = 4;

    private final InferenceState main;
    private final Alignment align;
    private final ExpertPredictor fallback;
    private final ManagedChannel channel;
    private final StreamObserver<AlignMessage> toShadow;
    private final AtomicReferenceArray<Entry> board;
    private final int nLayer, nExpert, kvDim;
    private final int[] mainTokens;
    private final Link.Channel up;
    private final ClusterStats stats;
    private final Consumer<String> notices;
    private final String shape;
    private int announcedEnd, kvSentTo;
    private boolean first = true;
    private volatile boolean lost;
    private volatile String lostWhy;
    private final java.util.concurrent.CountDownLatch firstPrediction = new java.util.concurrent.CountDownLatch(1);
    private volatile RemoteExperts directTo; // --shadow-to-workers: the schedule the shadow node sends load commands by
    private int directWidth;

    public RemoteShadowPredictor(ClusterConfig.Endpoint node, NodeSecurity security, Link net, InferenceState main, Alignment align,
                                 ExpertPredictor fallback, ClusterStats stats, Consumer<String> notices) {
        this.main = main;
        this.align = align;
        this.fallback = fallback;
        this.stats = stats;
        this.notices = notices == null ? s -> { } : notices;
        Hyperparams hp = main.model().hyperparams();
        this.nLayer = hp.nLayer();
        this.nExpert = hp.nExpert();
        this.kvDim = hp.kvDim();
        this.mainTokens = new int[main.kv().capacity()];
        this.board = new AtomicReferenceArray<>(nLayer * RING);
        this.up = net != null ? new Link.Channel(net) : null;
        this.shape = ModelFingerprint.shape(main.model());
        NettyChannelBuilder b = NettyChannelBuilder.forAddress(node.host(), node.port()).maxInboundMessageSize(1 << 20)
                .keepAliveTime(10, TimeUnit.SECONDS).keepAliveTimeout(5, TimeUnit.SECONDS).keepAliveWithoutCalls(true);
        security.secure(b);
        this.channel = b.build();
        var stub = ShadowNodeGrpc.newStub(channel);
        CallCredentials creds = security.credentials();
        if (creds != null) stub = stub.withCallCredentials(creds);
        this.toShadow = stub.follow(new StreamObserver<>() {
            @Override public void onNext(Prediction p) { receive(p); }

            @Override public void onError(Throwable t) { lose(t.getMessage()); }

            @Override public void onCompleted() { lose("the shadow node ended the stream"); }
        });
    }

    @Override public String name() { return "shadow-node"; }

    /**
     * {@code --shadow-to-workers}: asks the shadow node (in the stream's first message, so call this before the first
     * tokens) to send its load commands straight to {@code remote}'s workers, the first {@code width} experts of each
     * ranking; every prediction received then records the same plan on {@code remote}, which sends none itself.
     */
    public void sendLoadsDirectly(RemoteExperts remote, int width) {
        if (!first) throw new IllegalStateException("the shadow node's stream has started already");
        directWidth = width;
        directTo = remote;
        remote.shadowSendsLoads(true);
    }

    /**
     * Once tokens have been sent, waits until the shadow node has published its first prediction (its per-stream
     * warm-up is done), at most {@code seconds}; true if one came. Before any token there is nothing to predict yet:
     * returns at once. The shadow starts after the first batch is complete (it adopts that batch's KV entries), so call
     * this after the first decoded token. Tests call it so as not to depend on the shadow node's warm-up time.
     */
    public boolean awaitFirstPrediction(double seconds) throws InterruptedException {
        if (firstPrediction.getCount() == 0) return true;
        if (announcedEnd == 0 || lost) return false;
        return firstPrediction.await((long) (seconds * 1000), java.util.concurrent.TimeUnit.MILLISECONDS);
    }

    /** Whether the shadow node was lost (predictions then stop); why, or null. */
    public String lostReason() { return lost ? lostWhy : null; }

    private void lose(String why) {
        if (lost) return;
        lostWhy = why;
        lost = true;
        notices.accept("shadow node lost (" + why + "): no more predictions, experts are loaded on demand (output unchanged)");
    }

    private void receive(Prediction p) {
        // validated like any frame: a bad prediction is dropped (it could only cost time, never correctness)
        if (p.getLayer() < 0 || p.getLayer() >= nLayer || p.getPosition() < 0 || p.getRankingCount() == 0 || p.getRankingCount() > nExpert) return;
        int[] ranking = new int[p.getRankingCount()];
        for (int i = 0; i < ranking.length; i++) {
            int e = p.getRanking(i);
            if (e < 0 || e >= nExpert) return;
            ranking[i] = e;
        }
        stats.shadowBytesReceived.addAndGet(p.getSerializedSize());
        firstPrediction.countDown();
        RemoteExperts direct = directTo;
        if (direct != null) direct.plannedByShadow(p.getPosition(), p.getLayer(), ranking, directWidth);
        board.set(Math.floorMod(p.getPosition(), RING) * nLayer + p.getLayer(), new Entry(p.getPosition(), p.getToken(), p.getPrevToken(), ranking));
    }

    @Override
    public void onTokens(int pos, int[] tokens, int off, int n) {
        fallback.onTokens(pos, tokens, off, n);
        System.arraycopy(tokens, off, mainTokens, pos, n);
        if (pos < kvSentTo) kvSentTo = pos; // a rewind: those positions will be recomputed
        announcedEnd = pos + n;
        if (lost) return;
        AlignMessage.Builder m = AlignMessage.newBuilder().setPosition(pos);
        if (first) {
            m.setModelFingerprint(shape).setContext(main.kv().capacity()).setAlignTokenPeriod(align.tokenPeriod()).setAlignKvPeriod(align.kvPeriod());
            RemoteExperts direct = directTo;
            if (direct != null) m.addAllLoadWorkers(direct.workerAddresses()).setLoadGroupSize(direct.groupSize()).setLoadWidth(directWidth);
            first = false;
        }
        // positions before pos are complete: send their KV entries (the shadow aligns to them on its period)
        int count = pos - kvSentTo;
        if (count > 0 && align.kvPeriod() > 0) {
            ByteBuffer buf = ByteBuffer.allocate(count * nLayer * 2 * kvDim * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            KvCache kv = main.kv();
            var fb = buf.asFloatBuffer();
            for (int p = kvSentTo; p < pos; p++) {
                for (int l = 0; l < nLayer; l++) {
                    fb.put(kv.keys(l), p * kvDim, kvDim);
                    fb.put(kv.values(l), p * kvDim, kvDim);
                }
            }
            m.setKvFrom(kvSentTo).setKvCount(count).setKv(ByteString.copyFrom(buf.array()));
        }
        kvSentTo = pos;
        for (int i = 0; i < n; i++) m.addTokens(tokens[off + i]);
        AlignMessage msg = m.build();
        try {
            if (up != null) up.transfer(msg.getSerializedSize(), () -> { });
            toShadow.onNext(msg);
            stats.shadowBytesSent.addAndGet(msg.getSerializedSize());
        } catch (RuntimeException e) {
            lose(e.getMessage());
        }
    }

    @Override
    public void onLayer(int layer, int pos, float[] residual, float[] normed) {
        if (!lost) fallback.onLayer(layer, pos, residual, normed);
    }

    @Override
    public void observe(int layer, int pos, int[] experts, int k, float[] probs, int probsOff) {
        if (!lost) fallback.observe(layer, pos, experts, k, probs, probsOff);
    }

    @Override
    public int predict(int pos, int layer, int distance, int[] out) {
        if (lost) return 0; // prediction-free: every expert on demand
        int tp = Lookahead.targetPos(pos, layer, distance, nLayer), tl = Lookahead.targetLayer(layer, distance, nLayer);
        Entry e = board.get(Math.floorMod(tp, RING) * nLayer + tl);
        if (e != null && e.pos() == tp && consistent(e, tp)) {
            int n = Math.min(out.length, e.ranking().length);
            System.arraycopy(e.ranking(), 0, out, 0, n);
            return n;
        }
        return fallback.predict(pos, layer, distance, out);
    }

    private boolean consistent(Entry e, int tp) {
        int t = tp < announcedEnd ? mainTokens[tp] : -1;
        if (t >= 0 && align.alignsToken(tp) && e.token() != t) return false;
        int prev = tp - 1 >= 0 && tp - 1 < announcedEnd ? mainTokens[tp - 1] : -1;
        return !(prev >= 0 && align.alignsToken(tp - 1) && e.prevToken() != prev);
    }

    @Override
    public void close() {
        try {
            if (!lost) toShadow.onCompleted();
        } catch (RuntimeException ignored) {
            // the stream is gone already
        }
        lost = true;
        channel.shutdownNow();
        fallback.close();
    }
}
