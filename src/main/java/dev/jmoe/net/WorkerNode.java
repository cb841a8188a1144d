package dev.jmoe.net;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import dev.jmoe.experts.cache.ExpertMemory;
import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.jit.JustInTimeExpertSource;
import dev.jmoe.experts.predict.Lookahead;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.Model;
import dev.jmoe.net.proto.ComputeReply;
import dev.jmoe.net.proto.ComputeRequest;
import dev.jmoe.net.proto.DescribeRequest;
import dev.jmoe.net.proto.ExpertWorkerGrpc;
import dev.jmoe.net.proto.PrefetchReply;
import dev.jmoe.net.proto.PrefetchRequest;
import dev.jmoe.net.proto.WorkerInfo;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.PackedMatrix;
import dev.jmoe.tensor.Parallel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A worker node ({@code jmoe worker}): serves routed-expert computation for a main node. It reads expert weights only
 * from its own store (its own copy of the GGUF file: a worker's slow memory), keeps at most its budget of experts in
 * fast memory (default two experts' worth) through OD-MoE's just-in-time working set, starts a load when a prediction
 * arrives ({@code Prefetch}) or when a {@code Compute} needs an expert it does not hold, computes the rows it is sent
 * with {@link Model#computeExpert} (the main node's own kernels: vector shapes are pinned, so any node computes the
 * same bits) and evicts the expert once used unless a later prediction wants it. It holds no non-expert weights and
 * no KV cache: any call can be repeated on any worker with the same result, which is what failover relies on.
 *
 * <p>Every request is validated before use (layer, expert, row count, byte count, finiteness); a bad one gets
 * INVALID_ARGUMENT, never an allocation sized by the peer: the message size is capped at the largest legal batch.
 */
public final class WorkerNode implements AutoCloseable {
    /** Largest number of rows one Compute may carry (a prompt batch's tokens routed to one expert). */
    public static final int MAX_ROWS = 4096;

    /**
     * Protocol revision: 2 added {@code batch_invariant} and {@code rows_following} to {@code ComputeRequest}. A main
     * node refuses a worker below its own revision, which would ignore those fields and compute other bits.
     */
    public static final int PROTOCOL = 2;

    /** Settings of a worker (the {@code jmoe worker} flags). */
    public record Settings(Path model, String host, int port, String expertMemory, String store, Link link, int threads, NodeSecurity security) {
        public Settings {
            if (model == null) throw new IllegalArgumentException("a worker needs -m MODEL");
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port " + port + " is outside 0..65535");
            if (threads < 1) throw new IllegalArgumentException("threads must be at least 1");
            if (store == null) store = "direct";
            if (link == null) link = Link.UNLIMITED;
            if (security == null) security = NodeSecurity.NONE;
        }
    }

    private final Settings settings;
    private final GgufFile file;
    private final Model model;
    private final Hyperparams hp;
    private final ExpertStore store;
    private final JustInTimeExpertSource source;
    private final Parallel pool;
    private final Server server;
    private final HealthStatusManager health = new HealthStatusManager();
    private final String fingerprint;
    private final ReentrantLock computeLock = new ReentrantLock(true);
    // experts kept pinned between the mini-batches of one prompt step (under computeLock), oldest first
    private final java.util.LinkedHashMap<Integer, ExpertWeights> held = new java.util.LinkedHashMap<>();
    private long heldStep = -1;
    private final AtomicLong computes = new AtomicLong(), prefetches = new AtomicLong(), rejected = new AtomicLong();

    private WorkerNode(Settings s) throws IOException {
        this.settings = s;
        GgufFile f = null;
        ExpertStore st = null;
        JustInTimeExpertSource src = null;
        Parallel p = null;
        try {
            f = GgufFile.open(s.model());
            Model m = Model.load(f);
            if (!m.spec().moe() || !m.hyperparams().hasExperts()) throw new IllegalArgumentException(s.model() + " has no routed experts to serve");
            st = ExpertStore.open(s.store(), m);
            ExpertLayout layout = st.layout();
            long slot = (layout.maxExpertBytes() + 63) / 64 * 64;
            long budget = s.expertMemory() != null ? OffloadConfig.parseBudget(s.expertMemory(), layout.totalBytes()) : 2 * slot;
            if (budget < slot) throw new IllegalArgumentException("--expert-memory " + s.expertMemory() + " cannot hold one expert of " + slot + " bytes");
            OffloadStats stats = new OffloadStats();
            src = new JustInTimeExpertSource(st, new ExpertMemory(budget, layout.maxExpertBytes()), s.link(), stats, 1);
            p = new Parallel(s.threads());
            // compile the expert kernels before the first call: interpreted Vector API code is ~100x slower
            dev.jmoe.model.KernelWarmup.run(m, p, 3_000_000_000L, (done, types) -> { });
            this.file = f;
            this.model = m;
            this.hp = m.hyperparams();
            this.store = st;
            this.source = src;
            this.pool = p;
            this.fingerprint = ModelFingerprint.of(m);
            long maxMessage = (long) MAX_ROWS * hp.nEmbd() * Float.BYTES + 4096;
            NettyServerBuilder b = NettyServerBuilder.forAddress(new InetSocketAddress(s.host(), s.port()))
                    .maxInboundMessageSize((int) Math.min(Integer.MAX_VALUE, maxMessage))
                    .permitKeepAliveTime(1, TimeUnit.SECONDS).permitKeepAliveWithoutCalls(true)
                    .addService(new Service()).addService(health.getHealthService());
            s.security().secure(b);
            this.server = b.build().start();
            health.setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING);
        } catch (IOException | RuntimeException | Error e) {
            if (src != null) src.close();
            if (st != null) st.close();
            if (p != null) p.close();
            if (f != null) f.close();
            throw e;
        }
    }

    /** Opens the model and its store and starts serving. */
    public static WorkerNode start(Settings s) throws IOException {
        return new WorkerNode(s);
    }

    /** The port really bound (useful with port 0). */
    public int port() { return server.getPort(); }

    public String fingerprint() { return fingerprint; }

    public JustInTimeExpertSource source() { return source; }

    public long computes() { return computes.get(); }

    public long rejected() { return rejected.get(); }

    /** Blocks until the server stops. */
    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    @Override
    public void close() {
        health.enterTerminalState();
        server.shutdown();
        try {
            if (!server.awaitTermination(5, TimeUnit.SECONDS)) server.shutdownNow();
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
        computeLock.lock();
        try {
            releaseHeld();
        } finally {
            computeLock.unlock();
        }
        source.close();
        store.close();
        pool.close();
        file.close();
    }

    /** One line for the worker's status output. */
    public String describe() {
        return String.format(java.util.Locale.ROOT, "worker on %s:%d: %s, %d expert slot(s) of %s, store %s, link %s, %s", settings.host(), port(),
                ModelFingerprint.shortForm(fingerprint), source.memory().slots(), OffloadStats.bytes(source.memory().slotBytes()), store.name(),
                settings.link(), settings.security().describe());
    }

    private final class Service extends ExpertWorkerGrpc.ExpertWorkerImplBase {
        @Override
        public void describe(DescribeRequest request, StreamObserver<WorkerInfo> reply) {
            reply.onNext(WorkerInfo.newBuilder().setModelFingerprint(fingerprint).setNLayer(hp.nLayer()).setNExpert(hp.nExpert())
                    .setNEmbd(hp.nEmbd()).setNFfExpert(hp.nFfExpert()).setSlotBytes(source.memory().slotBytes())
                    .setSlots(source.memory().slots()).setLink(settings.link().toString()).setStore(store.name()).setProtocol(PROTOCOL).build());
            reply.onCompleted();
        }

        @Override
        public void prefetch(PrefetchRequest r, StreamObserver<PrefetchReply> reply) {
            try {
                int[] experts = checkPrefetch(r, hp, store.layout());
                int n = experts.length;
                source.prefetch(r.getPosition(), r.getLayer(), experts, n, 1);
                prefetches.incrementAndGet();
                reply.onNext(PrefetchReply.newBuilder().setAccepted(n).build());
                reply.onCompleted();
            } catch (Frames.BadFrame e) {
                refuse(reply, e);
            }
        }

        @Override
        public void compute(ComputeRequest r, StreamObserver<ComputeReply> reply) {
            int layer, expert, rows, following;
            float[] input;
            try {
                CheckedCompute c = checkCompute(r, hp, store.layout());
                layer = c.layer();
                expert = c.expert();
                rows = c.rows();
                following = c.following();
                input = c.input();
            } catch (Frames.BadFrame e) {
                refuse(reply, e);
                return;
            }
            float[] output = new float[rows * hp.nEmbd()];
            long waited, computed;
            boolean ready;
            computeLock.lock();
            try {
                long step = Lookahead.step(r.getPosition(), layer, hp.nLayer());
                if (step != heldStep) releaseHeld(); // parts of an earlier step that never came (they went elsewhere)
                heldStep = step;
                int key = layer * hp.nExpert() + expert;
                ExpertWeights w = held.remove(key);
                long t0 = System.nanoTime();
                if (w != null) {
                    ready = true; // an earlier part of this expert's rows loaded it
                } else {
                    // a slot must stay unpinned for this load: give up the oldest held part first (it reloads if its rest comes)
                    while (!held.isEmpty() && held.size() >= source.memory().slots()) releaseOldestHeld();
                    long missesBefore = source.stats().total(Counter.MISSES_LOADED);
                    source.at(r.getPosition(), layer, rows);
                    source.willUse(layer, new int[]{expert});
                    ready = source.stats().total(Counter.MISSES_LOADED) == missesBefore;
                    t0 = System.nanoTime();
                    w = source.acquire(layer, expert);
                }
                long t1 = System.nanoTime();
                boolean keep = false;
                try {
                    ExpertWeights use = r.getPackedWeights() ? packed(w) : w;
                    // the main node's step over several sequences computes each row as a single-vector product: so must we
                    Kernels.withActivationQuantization(r.getInt8Activations(), () -> Kernels.withBatchInvariance(r.getBatchInvariant(),
                            () -> Model.computeExpert(pool, use, input, rows, output)));
                    keep = following > 0;
                } finally {
                    if (keep) held.put(key, w); // more rows of this expert are on the way: keep it loaded (and pinned)
                    else source.release(w);
                }
                long t2 = System.nanoTime();
                waited = t1 - t0;
                computed = t2 - t1;
                double slow = settings.link().slowCompute();
                if (slow > 1 && settings.link().throttled()) Link.waitUntil(t2 + (long) ((slow - 1) * computed)); // a slower node's compute
            } catch (RuntimeException e) {
                reply.onError(Status.INTERNAL.withDescription("worker failed on expert " + layer + "/" + expert + ": " + e.getMessage()).asRuntimeException());
                return;
            } finally {
                computeLock.unlock();
            }
            computes.incrementAndGet();
            reply.onNext(ComputeReply.newBuilder().setOutput(Frames.encode(output, 0, output.length)).setLoadNanos(waited)
                    .setComputeNanos(computed).setWasReady(ready).build());
            reply.onCompleted();
        }

        private void refuse(StreamObserver<?> reply, Frames.BadFrame e) {
            rejected.incrementAndGet();
            reply.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    /** A Compute request's fields, checked against the served model: what the computation may use. */
    record CheckedCompute(int layer, int expert, int rows, int following, float[] input) {}

    /**
     * Checks a Compute request from a main node (layer, expert, row count, position, hidden-state bytes and their
     * finiteness) before anything is allocated or loaded for it; a bad one is a {@link Frames.BadFrame} naming the
     * field. Package-visible so that the node-message fuzz target runs the worker's own checks.
     */
    static CheckedCompute checkCompute(ComputeRequest r, Hyperparams hp, ExpertLayout layout) {
        int layer = checkLayer(r.getLayer(), hp, layout);
        int expert = Frames.index(r.getExpert(), 0, hp.nExpert(), "expert");
        int rows = Frames.index(r.getRows(), 1, MAX_ROWS + 1, "rows");
        int following = Frames.index(r.getRowsFollowing(), 0, MAX_ROWS + 1, "rows_following");
        Frames.index(r.getPosition(), 0, Integer.MAX_VALUE, "position");
        float[] input = Frames.decode(r.getHidden(), rows * hp.nEmbd(), "hidden (" + rows + " rows of " + hp.nEmbd() + ")");
        return new CheckedCompute(layer, expert, rows, following, input);
    }

    /** Checks a Prefetch request (layer, position, expert count and ids); the experts it names. */
    static int[] checkPrefetch(PrefetchRequest r, Hyperparams hp, ExpertLayout layout) {
        checkLayer(r.getLayer(), hp, layout);
        Frames.index(r.getPosition(), 0, Integer.MAX_VALUE, "position");
        int n = r.getExpertsCount();
        if (n < 1 || n > hp.nExpert()) throw new Frames.BadFrame("prefetch names " + n + " experts, expected 1.." + hp.nExpert());
        int[] experts = new int[n];
        for (int i = 0; i < n; i++) experts[i] = Frames.index(r.getExperts(i), 0, hp.nExpert(), "expert");
        return experts;
    }

    private static int checkLayer(int layer, Hyperparams hp, ExpertLayout layout) {
        Frames.index(layer, 0, hp.nLayer(), "layer");
        if (!layout.hasExperts(layer)) throw new Frames.BadFrame("layer " + layer + " has no experts");
        return layer;
    }

    private void releaseHeld() {
        while (!held.isEmpty()) releaseOldestHeld();
    }

    private void releaseOldestHeld() {
        var it = held.entrySet().iterator();
        ExpertWeights w = it.next().getValue();
        it.remove();
        source.release(w);
    }

    /** The expert with its packable matrices packed as the main model packs them (so the products are the same). */
    private ExpertWeights packed(ExpertWeights w) {
        return new ExpertWeights(w.layer(), w.expert(), pack(w.gate()), pack(w.up()), pack(w.down()));
    }

    private Matrix pack(Matrix m) {
        if (!Packing.canPack(m)) return m;
        PackedMatrix p = Packing.packIfRoom(m, pool);
        return p == null ? m : m.withPacked(p);
    }
}
