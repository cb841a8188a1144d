package dev.jmoe.net;

import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.NoPredictor;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KvCache;
import dev.jmoe.model.Model;
import dev.jmoe.net.proto.AlignMessage;
import dev.jmoe.net.proto.ExpertWorkerGrpc;
import dev.jmoe.net.proto.PrefetchRequest;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import dev.jmoe.net.proto.Prediction;
import dev.jmoe.net.proto.ShadowNodeGrpc;
import dev.jmoe.tensor.Parallel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The shadow node ({@code jmoe shadow}): runs a lower-precision copy of the model ahead of a main node and streams its
 * routers' choices back as predictions. Per {@code Follow} stream (one main node's generation) it keeps a mirror of
 * the main model's KV cache, filled with the entries the main node sends as positions complete, and a
 * {@link ShadowPredictor} that follows the mirror exactly as an in-process shadow follows the main state: it takes
 * the main node's tokens and KV entries on the alignment periods the main node sends, runs ahead, speculates the next
 * token, and every routing it publishes goes out at once. Messages are validated (shape, positions, token ids, byte
 * counts) before use; a bad one ends the stream with INVALID_ARGUMENT.
 */
public final class ShadowNode implements AutoCloseable {
    /** Largest context a main node may ask a shadow for (its KV mirror and own cache are sized by it). */
    public static final int MAX_CONTEXT = 1 << 17;

    private final Model shadow;
    private final String name;
    private final Server server;
    private final HealthStatusManager health = new HealthStatusManager();
    private final AtomicLong streams = new AtomicLong(), predictionsSent = new AtomicLong(), loadCommandsSent = new AtomicLong();
    private final NodeSecurity security;

    private ShadowNode(Model shadow, String name, String host, int port, NodeSecurity security) throws IOException {
        this.shadow = shadow;
        this.name = name;
        this.security = security == null ? NodeSecurity.NONE : security;
        Hyperparams hp = shadow.hyperparams();
        long kvPerPosition = 2L * hp.nLayer() * hp.kvDim() * Float.BYTES;
        // one message carries at most a prompt batch's KV entries and tokens; 64 MiB bounds what a peer can make us hold
        int maxMessage = (int) Math.min(64L << 20, Math.max(1L << 20, 4096 * kvPerPosition + (1 << 20)));
        NettyServerBuilder b = NettyServerBuilder.forAddress(new InetSocketAddress(host, port)).maxInboundMessageSize(maxMessage)
                .permitKeepAliveTime(1, TimeUnit.SECONDS).permitKeepAliveWithoutCalls(true)
                .addService(new Service()).addService(health.getHealthService());
        (security == null ? NodeSecurity.NONE : security).secure(b);
        this.server = b.build().start();
        health.setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING);
    }

    /** Serves {@code shadow} (a copy of the main model at another precision, or another file of it) on host:port. */
    public static ShadowNode start(Model shadow, String name, String host, int port, NodeSecurity security) throws IOException {
        return new ShadowNode(shadow, name, host, port, security);
    }

    /**
     * Opens {@code file} and serves it as the shadow: as it is, or re-encoded at {@code type} (q8_0, q4_0 …) when that is
     * not null. The node owns what it opened (the file, the re-encoded copy and its one thread) and closes it with itself.
     */
    public static ShadowNode open(java.nio.file.Path file, dev.jmoe.tensor.GgmlType type, String host, int port, NodeSecurity security)
            throws IOException {
        dev.jmoe.gguf.GgufFile gguf = dev.jmoe.gguf.GgufFile.open(file);
        dev.jmoe.tensor.Parallel pool = new dev.jmoe.tensor.Parallel(1);
        dev.jmoe.experts.predict.ShadowModels copies = null;
        try {
            Model shadow = Model.load(gguf);
            String name = "shadow " + file.getFileName();
            if (type != null) {
                copies = new dev.jmoe.experts.predict.ShadowModels(shadow, pool);
                shadow = copies.copy(type);
                name = "shadow-" + type.name().toLowerCase(java.util.Locale.ROOT) + " of " + file.getFileName();
            }
            // compile the shadow's kernels before the first stream: interpreted, it would predict nothing for many seconds
            dev.jmoe.model.KernelWarmup.run(shadow, pool, 3_000_000_000L, (done, types) -> { });
            ShadowNode node = new ShadowNode(shadow, name, host, port, security);
            dev.jmoe.experts.predict.ShadowModels made = copies;
            node.owned = () -> {
                if (made != null) made.close();
                pool.close();
                gguf.close();
            };
            return node;
        } catch (IOException | RuntimeException e) {
            if (copies != null) copies.close();
            pool.close();
            gguf.close();
            throw e;
        }
    }

    /** What {@link #open} opened for the node, closed after it. */
    private Runnable owned = () -> { };

    public int port() { return server.getPort(); }

    public long predictionsSent() { return predictionsSent.get(); }

    /** Load commands this node sent straight to workers (--shadow-to-workers). */
    public long loadCommandsSent() { return loadCommandsSent.get(); }

    public String describe() {
        return "shadow node on port " + port() + ": " + name + " (" + ModelFingerprint.shape(shadow) + ")";
    }

    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    @Override
    public void close() {
        health.enterTerminalState();
        server.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        owned.run();
    }

    /** The settings a stream's first message sets, checked. */
    record Start(int context, Alignment alignment) {}

    /**
     * Checks a stream's first message against the shadow's shape ({@link ModelFingerprint#shape}): the fingerprint,
     * the context and the alignment periods. Package-visible, as {@link #checkUpdate}, so that the node-message fuzz
     * target runs the shadow's own checks.
     */
    static Start checkStart(AlignMessage m, String shape) {
        if (!shape.equals(m.getModelFingerprint())) {
            throw new Frames.BadFrame("the main model (" + m.getModelFingerprint() + ") does not have this shadow's shape (" + shape + ")");
        }
        int context = Frames.index(m.getContext(), 1, MAX_CONTEXT + 1, "context");
        Alignment align = new Alignment(Frames.index(m.getAlignTokenPeriod(), 0, 1 << 20, "token alignment period"),
                Frames.index(m.getAlignKvPeriod(), 0, 1 << 20, "KV alignment period"));
        return new Start(context, align);
    }

    /** A message's KV entries (positions [kvFrom, kvFrom + kvCount), per position per layer keys then values) and tokens from {@code position}. */
    record Update(int kvFrom, int kvCount, float[] kv, int position, int[] tokens) {}

    /**
     * Checks a message's KV entries and tokens against the shadow's shape and the stream's context before anything
     * is written: every position and token id in range, the KV byte count exact and its values finite.
     */
    static Update checkUpdate(AlignMessage m, int nLayer, int kvDim, int nVocab, int context) {
        int count = Frames.index(m.getKvCount(), 0, context + 1, "kv_count");
        int from = 0;
        float[] kv = new float[0];
        if (count > 0) {
            from = Frames.index(m.getKvFrom(), 0, context - count + 1, "kv_from");
            // in long: on a real model (32 layers of kv_dim 1024) 2^15 positions already pass 2^31 floats, and a wrapped
            // int product could match a short (even empty) kv field
            long floats = (long) count * nLayer * 2 * kvDim;
            if (floats * Float.BYTES > Integer.MAX_VALUE) {
                throw new Frames.BadFrame("kv_count " + count + " asks for " + floats + " float32 of KV entries (" + nLayer + " layers x 2 x " + kvDim
                        + " per position), more than one message can carry");
            }
            kv = Frames.decode(m.getKv(), (int) floats, "kv (" + count + " positions)");
        } else if (!m.getKv().isEmpty()) {
            throw new Frames.BadFrame("kv bytes without kv_count");
        }
        int n = m.getTokensCount();
        if (n == 0) return new Update(from, count, kv, m.getPosition(), new int[0]);
        int pos = Frames.index(m.getPosition(), 0, context, "position");
        if (n > context - pos) throw new Frames.BadFrame(n + " tokens at position " + pos + " overrun the context of " + context);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = Frames.index(m.getTokens(i), 0, nVocab, "token");
        return new Update(from, count, kv, pos, tokens);
    }

    private final class Service extends ShadowNodeGrpc.ShadowNodeImplBase {
        @Override
        public StreamObserver<AlignMessage> follow(StreamObserver<Prediction> out) {
            streams.incrementAndGet();
            return new Follower(out);
        }
    }

    /** One main node's generation: its KV mirror and the shadow that follows it. */
    private final class Follower implements StreamObserver<AlignMessage> {
        private final StreamObserver<Prediction> out;
        private Parallel pool;
        private InferenceState mirror;
        private ShadowPredictor predictor;
        private DirectLoads loads; // null: predictions go to the main node only
        private int context;
        private volatile boolean done;

        Follower(StreamObserver<Prediction> out) {
            this.out = out;
        }

        @Override
        public void onNext(AlignMessage m) {
            if (done) return;
            try {
                if (predictor == null) start(m);
                apply(m);
                Throwable failed = predictor.failure();
                if (failed != null) fail(Status.INTERNAL.withDescription("the shadow stopped: " + failed));
            } catch (Frames.BadFrame | IllegalArgumentException e) {
                fail(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
            } catch (RuntimeException e) {
                fail(Status.INTERNAL.withDescription("shadow failed: " + e));
            }
        }

        private void start(AlignMessage m) {
            Start s = checkStart(m, ModelFingerprint.shape(shadow));
            context = s.context();
            Alignment align = s.alignment();
            if (m.getLoadWorkersCount() > 0) loads = new DirectLoads(m);
            pool = new Parallel(1);
            mirror = shadow.newState(context, pool);
            predictor = new ShadowPredictor(name, mirror, shadow, align, NextTokenRule.ARGMAX, new NoPredictor(), ShadowPredictor.Mode.THREAD)
                    .onPublish(this::send);
        }

        private void apply(AlignMessage m) {
            Hyperparams hp = shadow.hyperparams();
            int kvDim = hp.kvDim(), nLayer = hp.nLayer();
            Update u = checkUpdate(m, nLayer, kvDim, hp.nVocab(), context);
            if (u.kvCount() > 0) {
                float[] kv = u.kv();
                KvCache cache = mirror.kv();
                int o = 0;
                for (int p = u.kvFrom(); p < u.kvFrom() + u.kvCount(); p++) {
                    for (int l = 0; l < nLayer; l++) {
                        System.arraycopy(kv, o, cache.keys(l), p * kvDim, kvDim);
                        o += kvDim;
                        System.arraycopy(kv, o, cache.values(l), p * kvDim, kvDim);
                        o += kvDim;
                    }
                }
            }
            if (u.tokens().length == 0) return;
            predictor.onTokens(u.position(), u.tokens(), 0, u.tokens().length);
        }

        private void send(int layer, int pos, int token, int prevToken, int[] ranking, float[] probs) {
            if (done) return;
            Prediction.Builder b = Prediction.newBuilder().setPosition(pos).setLayer(layer).setToken(token).setPrevToken(prevToken);
            for (int e : ranking) b.addRanking(e);
            if (probs != null) for (float p : probs) b.addProbs(p);
            synchronized (out) {
                if (done) return;
                try {
                    out.onNext(b.build());
                    predictionsSent.incrementAndGet();
                } catch (RuntimeException e) {
                    done = true; // the main node went away
                }
            }
            if (loads != null && !done) loads.send(layer, pos, ranking);
        }

        private void fail(Status s) {
            synchronized (out) {
                if (done) return;
                done = true;
                try {
                    out.onError(s.asRuntimeException());
                } catch (RuntimeException ignored) {
                    // already closed
                }
            }
            stop();
        }

        @Override
        public void onError(Throwable t) {
            done = true;
            stop();
        }

        @Override
        public void onCompleted() {
            synchronized (out) {
                if (!done) {
                    done = true;
                    try {
                        out.onCompleted();
                    } catch (RuntimeException ignored) {
                        // already closed
                    }
                }
            }
            stop();
        }

        private void stop() {
            if (loads != null) loads.close();
            if (predictor != null) predictor.close();
            if (pool != null) pool.close();
        }
    }

    /**
     * {@code --shadow-to-workers}: the load commands of one followed generation, sent from here straight to the workers
     * that will compute the predicted experts (the schedule the main node sent: {@link RemoteExperts#assignedWorker}),
     * without waiting for the main node's pass to reach a prediction hook. Fire and forget: a lost command only costs
     * an on-demand load on the worker.
     */
    private final class DirectLoads {
        private final ManagedChannel[] channels;
        private final ExpertWorkerGrpc.ExpertWorkerFutureStub[] stubs;
        private final int groupSize, width, nLayer, nExpert;

        DirectLoads(AlignMessage m) {
            Hyperparams hp = shadow.hyperparams();
            nLayer = hp.nLayer();
            nExpert = hp.nExpert();
            int n = m.getLoadWorkersCount();
            if (n > 1024) throw new Frames.BadFrame("load_workers lists " + n + " workers; at most 1024");
            groupSize = Frames.index(m.getLoadGroupSize(), 1, n + 1, "load_group_size");
            width = Frames.index(m.getLoadWidth(), 1, nExpert + 1, "load_width");
            ClusterConfig.Endpoint[] eps = new ClusterConfig.Endpoint[n];
            for (int i = 0; i < n; i++) {
                try {
                    eps[i] = ClusterConfig.Endpoint.parse(m.getLoadWorkers(i), "load_workers");
                } catch (IllegalArgumentException e) {
                    throw new Frames.BadFrame(e.getMessage());
                }
            }
            channels = new ManagedChannel[n];
            stubs = new ExpertWorkerGrpc.ExpertWorkerFutureStub[n];
            CallCredentials creds = security.credentials();
            for (int i = 0; i < n; i++) {
                NettyChannelBuilder b = NettyChannelBuilder.forAddress(eps[i].host(), eps[i].port()).maxInboundMessageSize(1 << 16)
                        .keepAliveTime(10, TimeUnit.SECONDS).keepAliveTimeout(5, TimeUnit.SECONDS);
                security.secure(b);
                channels[i] = b.build();
                var stub = ExpertWorkerGrpc.newFutureStub(channels[i]);
                stubs[i] = creds != null ? stub.withCallCredentials(creds) : stub;
            }
        }

        void send(int layer, int pos, int[] ranking) {
            if (layer < 0 || layer >= nLayer) return;
            int count = Math.min(width, ranking.length);
            PrefetchRequest.Builder[] per = new PrefetchRequest.Builder[stubs.length];
            for (int i = 0; i < count; i++) {
                int w = RemoteExperts.assignedWorker(layer, i, stubs.length, groupSize);
                if (per[w] == null) per[w] = PrefetchRequest.newBuilder().setPosition(pos).setLayer(layer);
                per[w].addExperts(ranking[i]);
            }
            for (int w = 0; w < per.length; w++) {
                if (per[w] == null) continue;
                try {
                    stubs[w].withDeadlineAfter(5, TimeUnit.SECONDS).prefetch(per[w].build()); // the reply is not awaited
                    loadCommandsSent.incrementAndGet();
                } catch (RuntimeException e) {
                    // a worker that is gone loads nothing; the main node's compute call finds another
                }
            }
        }

        void close() {
            for (ManagedChannel c : channels) c.shutdownNow();
        }
    }
}
