package dev.jmoe.net;

import dev.jmoe.experts.predict.Lookahead;
import dev.jmoe.experts.predict.PrefetchSink;
import dev.jmoe.experts.store.Link;
import dev.jmoe.model.ExpertExecutor;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.Model;
import dev.jmoe.net.proto.ComputeReply;
import dev.jmoe.net.proto.ComputeRequest;
import dev.jmoe.net.proto.DescribeRequest;
import dev.jmoe.net.proto.ExpertWorkerGrpc;
import dev.jmoe.net.proto.PrefetchRequest;
import dev.jmoe.net.proto.WorkerInfo;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import io.grpc.CallCredentials;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The main node's side of distributed OD-MoE: the MoE layer's {@link ExpertExecutor} (every routed expert is computed
 * on a worker) and the predictor's {@link PrefetchSink} (predicted experts are sent to the workers that will compute
 * them, as load commands).
 *
 * <p>Schedule (OD-MoE's): the workers form groups of G (in {@code --workers} order); decode layer l belongs to group
 * l mod groups, and within it the i-th expert predicted for the step goes to the group's i-th worker, which starts
 * loading it at once, so a group loads layer l + groups while the others compute. The real router's experts go to the
 * worker that was told to load them; one nobody predicted goes to a group member without work in this layer and is
 * loaded on demand (exact, only slower). A prompt batch's experts are spread over all workers, each expert's tokens in
 * mini-batches of {@code --mini-batch} rows where that keeps the bits (else in one message), all of a layer's messages
 * in flight at once.
 *
 * <p>Failure: each worker holds a lease renewed by health checks (and by every answer); a worker whose lease expires or
 * whose call fails at the transport is dropped from the schedule, its in-flight calls are cancelled and sent to another
 * worker, which loads the expert on demand. Because every worker computes an expert exactly as this node would, the
 * output does not change. A worker that comes back (answers health checks again) rejoins. Replies are validated (byte
 * count, finiteness) like requests are on the worker.
 */
public final class RemoteExperts implements ExpertExecutor, PrefetchSink, AutoCloseable {
    private final ClusterConfig cfg;
    private final Worker[] workers;
    private final int groupSize, nGroups, nLayer, nExpert, nEmbd;
    private final boolean packed, int8;
    private final Model model;
    private final ExecutorService io = Executors.newVirtualThreadPerTaskExecutor();
    private final Link.Channel up, down; // the main node's emulated network interface (null: real network only)
    private final ClusterStats stats = new ClusterStats();
    private final ConcurrentHashMap<Long, int[]> plans = new ConcurrentHashMap<>(); // step -> expert -> worker (-1 none)
    private final Thread leases;
    private final Consumer<String> notices;
    private volatile boolean closed;
    private volatile boolean directLoads; // the shadow node sends the load commands (--shadow-to-workers)

    private static final class Worker {
        final int index;
        final ClusterConfig.Endpoint endpoint;
        final ManagedChannel channel;
        final ExpertWorkerGrpc.ExpertWorkerBlockingStub stub;
        final HealthGrpc.HealthFutureStub health;
        final Set<Context.CancellableContext> inflight = ConcurrentHashMap.newKeySet();
        volatile boolean alive = true;
        volatile long lastAnswer = System.nanoTime();
        volatile boolean checking;

        Worker(int index, ClusterConfig.Endpoint endpoint, ManagedChannel channel, CallCredentials creds) {
            this.index = index;
            this.endpoint = endpoint;
            this.channel = channel;
            var s = ExpertWorkerGrpc.newBlockingStub(channel);
            var h = HealthGrpc.newFutureStub(channel);
            this.stub = creds != null ? s.withCallCredentials(creds) : s;
            this.health = creds != null ? h.withCallCredentials(creds) : h;
        }
    }

    private RemoteExperts(ClusterConfig cfg, Model model, Worker[] workers, Consumer<String> notices) {
        Hyperparams hp = model.hyperparams();
        this.cfg = cfg;
        this.workers = workers;
        this.notices = notices;
        this.nLayer = hp.nLayer();
        this.nExpert = hp.nExpert();
        this.nEmbd = hp.nEmbd();
        this.groupSize = cfg.groupSizeFor(hp.nExpertUsed());
        this.nGroups = (workers.length + groupSize - 1) / groupSize;
        this.model = model;
        this.packed = model.packsWeights();
        this.int8 = model.activationQuantization();
        this.up = cfg.net() != null ? new Link.Channel(cfg.net()) : null;
        this.down = cfg.net() != null ? new Link.Channel(cfg.net()) : null;
        this.leases = Thread.ofPlatform().daemon().name("jmoe-worker-leases").start(this::leaseLoop);
    }

    /**
     * Connects to every worker, checks each serves this model (same shapes, types and expert bytes), and starts the
     * leases. A worker that cannot be reached or refuses this node fails the call with a message naming it.
     */
    public static RemoteExperts connect(ClusterConfig cfg, Model model, Consumer<String> notices) {
        if (!model.spec().moe() || !model.hyperparams().hasExperts()) {
            throw new IllegalArgumentException("--workers needs a mixture-of-experts model; this " + model.spec().name() + " model has no routed experts");
        }
        String mine = ModelFingerprint.of(model);
        Worker[] ws = new Worker[cfg.workers().size()];
        CallCredentials creds = cfg.security().credentials();
        int maxReply = (int) Math.min(Integer.MAX_VALUE, (long) WorkerNode.MAX_ROWS * model.hyperparams().nEmbd() * Float.BYTES + 4096);
        try {
            for (int i = 0; i < ws.length; i++) {
                ClusterConfig.Endpoint ep = cfg.workers().get(i);
                NettyChannelBuilder b = NettyChannelBuilder.forAddress(ep.host(), ep.port()).maxInboundMessageSize(maxReply)
                        .keepAliveTime(10, TimeUnit.SECONDS).keepAliveTimeout(5, TimeUnit.SECONDS).keepAliveWithoutCalls(true);
                cfg.security().secure(b);
                ws[i] = new Worker(i, ep, b.build(), creds);
            }
            for (Worker w : ws) {
                WorkerInfo info;
                try {
                    info = w.stub.withDeadlineAfter(15, TimeUnit.SECONDS).describe(DescribeRequest.getDefaultInstance());
                } catch (StatusRuntimeException e) {
                    throw new IllegalStateException("worker " + w.endpoint + " " + refusal(e));
                }
                if (info.getProtocol() < WorkerNode.PROTOCOL) {
                    throw new IllegalStateException("worker " + w.endpoint + " speaks protocol revision " + info.getProtocol() + ", this node needs "
                            + WorkerNode.PROTOCOL + " (it would ignore batch-invariance and mini-batch fields): run the same jmoe version on every node");
                }
                if (!mine.equals(info.getModelFingerprint())) {
                    throw new IllegalStateException("worker " + w.endpoint + " serves another model (" + ModelFingerprint.shortForm(info.getModelFingerprint())
                            + ") than this node's (" + ModelFingerprint.shortForm(mine) + ")");
                }
            }
        } catch (RuntimeException e) {
            for (Worker w : ws) if (w != null) w.channel.shutdownNow();
            throw e;
        }
        return new RemoteExperts(cfg, model, ws, notices == null ? s -> { } : notices);
    }

    private static String refusal(StatusRuntimeException e) {
        Status s = e.getStatus();
        return switch (s.getCode()) {
            case UNAUTHENTICATED -> "refused this node: " + s.getDescription() + " (check --token-file)";
            case UNAVAILABLE -> "cannot be reached: " + (s.getDescription() != null ? s.getDescription() : s.getCode())
                    + (s.getCause() != null ? " (" + s.getCause().getMessage() + ")" : "") + " (is it running, and do both sides use the same TLS settings?)";
            case DEADLINE_EXCEEDED -> "did not answer within 15 s";
            default -> "failed: " + s.getCode() + (s.getDescription() != null ? ": " + s.getDescription() : "");
        };
    }

    public ClusterStats stats() { return stats; }
    public int groupSize() { return groupSize; }
    public int groups() { return nGroups; }

    /** Workers holding a lease now. */
    public int liveWorkers() {
        int n = 0;
        for (Worker w : workers) if (w.alive) n++;
        return n;
    }

    /** A one-line description of the schedule. */
    public String describe() {
        return workers.length + " worker(s) in " + nGroups + " group(s) of " + groupSize + ", " + cfg.security().describe()
                + (cfg.net() != null ? ", network emulated in the transport: " + cfg.net() : ", network: real (not emulated)");
    }

    // ------------------------------------------------------------------ schedule

    private int group(int layer) { return layer % nGroups; }

    /**
     * The worker told to load the {@code i}-th predicted expert of {@code layer} when every worker is up: the layer's
     * group (l mod groups), its (i mod members)-th member. A shadow node sending load commands itself uses this too.
     */
    public static int assignedWorker(int layer, int i, int nWorkers, int groupSize) {
        int groups = (nWorkers + groupSize - 1) / groupSize;
        int first = (layer % groups) * groupSize, members = Math.min(nWorkers, first + groupSize) - first;
        return first + i % members;
    }

    /** Workers' addresses in schedule order (what a shadow node sending load commands itself needs). */
    public List<String> workerAddresses() {
        List<String> out = new ArrayList<>(workers.length);
        for (Worker w : workers) out.add(w.endpoint.toString());
        return out;
    }

    /**
     * {@code --shadow-to-workers}: the shadow node has sent the load commands for its prediction of (pos, layer) to the
     * workers itself; record the same plan (the first {@code width} experts of {@code ranking}, {@link #assignedWorker})
     * so the compute calls go where the loads went. From then on this node sends no load commands of its own.
     */
    public void plannedByShadow(int pos, int layer, int[] ranking, int width) {
        directLoads = true;
        if (closed || layer < 0 || layer >= nLayer) return;
        int[] plan = new int[nExpert];
        Arrays.fill(plan, -1);
        for (int i = 0; i < Math.min(width, ranking.length); i++) plan[ranking[i]] = assignedWorker(layer, i, workers.length, groupSize);
        plans.put(Lookahead.step(pos, layer, nLayer), plan);
    }

    /** Whether the shadow node sends the load commands (this node then only follows its plan). */
    public void shadowSendsLoads(boolean on) { directLoads = on; }

    /** Live members of layer's group, in order (empty when the whole group is down). */
    private List<Integer> members(int layer) {
        List<Integer> m = new ArrayList<>(groupSize);
        int g = group(layer);
        for (int i = g * groupSize; i < Math.min(workers.length, (g + 1) * groupSize); i++) if (workers[i].alive) m.add(i);
        return m;
    }

    /** Live workers, starting at {@code from} (wrapping), so different layers start at different ones. */
    private List<Integer> live(int from) {
        List<Integer> m = new ArrayList<>(workers.length);
        for (int i = 0; i < workers.length; i++) {
            int w = (from + i) % workers.length;
            if (workers[w].alive) m.add(w);
        }
        return m;
    }

    private List<Integer> candidates(int layer) {
        List<Integer> m = members(layer);
        return m.isEmpty() ? live(group(layer) * groupSize) : m;
    }

    // ------------------------------------------------------------------ PrefetchSink (main pass thread)

    @Override
    public void at(int pos, int layer, int n) {
        long now = Lookahead.step(pos, layer, nLayer);
        plans.keySet().removeIf(step -> step < now);
    }

    @Override
    public void prefetch(int pos, int layer, int[] experts, int count, int distance) {
        if (closed || count <= 0 || directLoads) return; // (with --shadow-to-workers the shadow node has sent them)
        List<Integer> m = candidates(layer);
        if (m.isEmpty()) return;
        long step = Lookahead.step(pos, layer, nLayer);
        int[] plan = new int[nExpert];
        Arrays.fill(plan, -1);
        for (int i = 0; i < count; i++) plan[experts[i]] = m.get(i % m.size());
        int[] before = plans.put(step, plan);
        if (Arrays.equals(before, plan)) return; // the same plan was sent at a larger distance already
        for (int w : m) {
            PrefetchRequest.Builder b = PrefetchRequest.newBuilder().setPosition(pos).setLayer(layer);
            for (int i = 0; i < count; i++) if (plan[experts[i]] == w) b.addExperts(experts[i]);
            if (b.getExpertsCount() == 0) continue;
            PrefetchRequest req = b.build();
            Worker wk = workers[w];
            io.execute(() -> {
                try {
                    emulate(up, req.getSerializedSize());
                    wk.stub.withDeadlineAfter(5, TimeUnit.SECONDS).prefetch(req);
                    stats.prefetchMessages.incrementAndGet();
                    stats.bytesSent.addAndGet(req.getSerializedSize());
                    wk.lastAnswer = System.nanoTime();
                } catch (StatusRuntimeException e) {
                    if (transportFailure(e)) lose(wk, "prefetch failed: " + e.getStatus().getCode());
                }
            });
        }
    }

    // ------------------------------------------------------------------ ExpertExecutor (main pass thread)

    @Override
    public void computeLayer(int layer, int position, int tokens, List<Call> calls) {
        long t0 = System.nanoTime();
        // read on the pass's thread (a scoped value): a step over several sequences computes each row as matVec does
        boolean invariant = Kernels.batchInvariance();
        int n = calls.size();
        int[] chosen = new int[n];
        Arrays.fill(chosen, -1);
        if (tokens == 1) {
            int[] plan = plans.get(Lookahead.step(position, layer, nLayer));
            List<Integer> m = candidates(layer);
            if (m.isEmpty()) throw new IllegalStateException("no worker is left to compute experts (all " + workers.length + " lost their lease)");
            boolean[] taken = new boolean[workers.length];
            for (int i = 0; i < n; i++) {
                int e = calls.get(i).expert();
                stats.decodeExpertUses.incrementAndGet();
                int w = plan != null ? plan[e] : -1;
                if (w >= 0) stats.decodePredicted.incrementAndGet();
                if (w >= 0 && workers[w].alive) {
                    chosen[i] = w;
                    taken[w] = true;
                }
            }
            // experts nobody predicted: a group member not busy with this layer (its slot is free), else round robin
            int next = 0;
            for (int i = 0; i < n; i++) {
                if (chosen[i] >= 0) continue;
                int pick = -1;
                for (int w : m) if (!taken[w] && (plan == null || !plannedFor(plan, w))) { pick = w; break; }
                if (pick < 0) for (int w : m) if (!taken[w]) { pick = w; break; }
                if (pick < 0) pick = m.get(next++ % m.size());
                chosen[i] = pick;
                taken[pick] = true;
            }
        } else {
            List<Integer> all = live(layer % workers.length);
            if (all.isEmpty()) throw new IllegalStateException("no worker is left to compute experts (all " + workers.length + " lost their lease)");
            for (int i = 0; i < n; i++) chosen[i] = all.get(i % all.size());
        }
        List<CompletableFuture<Void>> pending = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Call c = calls.get(i);
            int first = chosen[i];
            // a prompt step: the expert's rows in mini-batches, all in flight, so the worker starts on the first part
            // while the others are still on the wire (only where the parts' products keep the whole product's bits)
            int part = tokens > 1 && miniBatchExact(layer, c.rows()) ? cfg.miniBatch() : c.rows();
            int parts = Math.max(1, c.rows() / part);
            if (parts > 1) stats.miniBatched.incrementAndGet();
            for (int p = 0, at = 0; p < parts; p++) {
                int from = at, rows = p == parts - 1 ? c.rows() - at : part;
                at += rows;
                int following = c.rows() - at;
                pending.add(CompletableFuture.runAsync(() -> computeWithFailover(layer, position, c, from, rows, following, first, invariant), io));
            }
        }
        try {
            for (CompletableFuture<Void> f : pending) f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for workers");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            throw new IllegalStateException(c);
        }
        stats.layers.incrementAndGet();
        stats.layerWaitNanos.addAndGet(System.nanoTime() - t0);
    }

    private static boolean plannedFor(int[] plan, int w) {
        for (int p : plan) if (p == w) return true;
        return false;
    }

    /**
     * Whether an expert's {@code rows} of a prompt step may travel in mini-batches of {@code --mini-batch} rows: each of
     * its products (gate and up over the rows, down over their outputs) gives every row the same bits in parts as whole,
     * with this pass's activation rounding and batch invariance (read on the pass's thread).
     */
    private boolean miniBatchExact(int layer, int rows) {
        int part = cfg.miniBatch();
        if (part < 2 || rows < 2 * part) return false;
        var experts = model.layer(layer).experts();
        if (experts == null) return false;
        for (Matrix m : new Matrix[] {experts.gate(), experts.up(), experts.down()}) {
            if (!Kernels.splitKeepsBits(m, packed, rows, part)) return false;
        }
        return true;
    }

    /** Rows [from, from + rows) of call {@code c} on a worker ({@code following}: rows of it still to come after these). */
    private void computeWithFailover(int layer, int position, Call c, int from, int rows, int following, int first, boolean invariant) {
        ComputeRequest req = ComputeRequest.newBuilder().setPosition(position).setLayer(layer).setExpert(c.expert()).setRows(rows)
                .setHidden(Frames.encode(c.input(), from * nEmbd, rows * nEmbd)).setPackedWeights(packed).setInt8Activations(int8)
                .setBatchInvariant(invariant).setRowsFollowing(following).build();
        boolean[] tried = new boolean[workers.length];
        int w = first;
        while (true) {
            tried[w] = true;
            Worker wk = workers[w];
            try {
                callOnce(wk, req, c, from);
                return;
            } catch (StatusRuntimeException e) {
                if (closed) throw new IllegalStateException("the cluster connection was closed");
                Status.Code code = e.getStatus().getCode();
                if (code == Status.Code.INVALID_ARGUMENT) {
                    throw new IllegalStateException("worker " + wk.endpoint + " rejected expert " + layer + "/" + c.expert() + ": " + e.getStatus().getDescription());
                }
                lose(wk, "call failed: " + code + (e.getStatus().getDescription() != null ? " (" + e.getStatus().getDescription() + ")" : ""));
            } catch (Frames.BadFrame e) {
                lose(wk, "sent a malformed reply: " + e.getMessage());
            }
            w = failoverTarget(layer, tried);
            if (w < 0) throw new IllegalStateException("no worker is left to compute expert " + layer + "/" + c.expert() + " (every worker failed or lost its lease)");
            stats.failovers.incrementAndGet();
        }
    }

    /** The next live worker not tried for this call: the layer's group first, then any. −1 if none. */
    private int failoverTarget(int layer, boolean[] tried) {
        for (int w : members(layer)) if (!tried[w]) return w;
        for (int w : live(group(layer) * groupSize)) if (!tried[w]) return w;
        return -1;
    }

    private void callOnce(Worker wk, ComputeRequest req, Call c, int from) {
        if (!wk.alive) throw Status.UNAVAILABLE.withDescription("lease expired").asRuntimeException();
        Context.CancellableContext ctx = Context.current().withCancellation();
        wk.inflight.add(ctx);
        try {
            if (!wk.alive) throw Status.UNAVAILABLE.withDescription("lease expired").asRuntimeException();
            ComputeReply reply = ctx.call(() -> {
                emulate(up, req.getSerializedSize());
                return wk.stub.withDeadlineAfter((long) (cfg.callTimeout() * 1000), TimeUnit.MILLISECONDS).compute(req);
            });
            emulate(down, reply.getSerializedSize());
            float[] out = Frames.decode(reply.getOutput(), req.getRows() * nEmbd, "worker " + wk.endpoint + "'s output for expert " + req.getLayer() + "/" + req.getExpert());
            System.arraycopy(out, 0, c.output(), from * nEmbd, out.length);
            wk.lastAnswer = System.nanoTime();
            stats.computeCalls.incrementAndGet();
            stats.bytesSent.addAndGet(req.getSerializedSize());
            stats.bytesReceived.addAndGet(reply.getSerializedSize());
            if (reply.getWasReady()) stats.readyOnArrival.incrementAndGet();
            stats.loadWaitNanos.addAndGet(reply.getLoadNanos());
            stats.workerComputeNanos.addAndGet(reply.getComputeNanos());
        } catch (StatusRuntimeException | Frames.BadFrame e) {
            throw e;
        } catch (Exception e) {
            throw Status.UNKNOWN.withDescription(e.toString()).asRuntimeException();
        } finally {
            wk.inflight.remove(ctx);
            ctx.cancel(null);
        }
    }

    private static void emulate(Link.Channel ch, long bytes) {
        if (ch != null) ch.transfer(bytes, () -> { });
    }

    private static boolean transportFailure(StatusRuntimeException e) {
        Status.Code c = e.getStatus().getCode();
        return c == Status.Code.UNAVAILABLE || c == Status.Code.DEADLINE_EXCEEDED || c == Status.Code.UNAUTHENTICATED;
    }

    // ------------------------------------------------------------------ leases

    private synchronized void lose(Worker w, String why) {
        if (!w.alive) return;
        w.alive = false;
        stats.workersLost.incrementAndGet();
        notices.accept("worker " + w.endpoint + " dropped from the schedule: " + why + " (" + liveWorkers() + " of " + workers.length + " left)");
        for (Context.CancellableContext c : w.inflight) c.cancel(Status.CANCELLED.withDescription("lease lost").asRuntimeException());
    }

    private void leaseLoop() {
        long period = Math.max(50_000_000L, (long) (cfg.leaseTimeout() * 1e9 / 6));
        long lease = (long) (cfg.leaseTimeout() * 1e9);
        while (!closed) {
            for (Worker w : workers) {
                if (!w.checking) {
                    w.checking = true;
                    var f = w.health.withDeadlineAfter(Math.max(100, lease / 2_000_000), TimeUnit.MILLISECONDS).check(HealthCheckRequest.getDefaultInstance());
                    f.addListener(() -> {
                        try {
                            if (f.get().getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                                w.lastAnswer = System.nanoTime();
                                if (!w.alive && !closed) {
                                    w.alive = true;
                                    notices.accept("worker " + w.endpoint + " answers again and rejoins the schedule");
                                }
                            }
                        } catch (Exception ignored) {
                            // no answer: the lease runs down
                        } finally {
                            w.checking = false;
                        }
                    }, Runnable::run);
                }
                if (w.alive && System.nanoTime() - w.lastAnswer > lease) lose(w, "lease expired (no answer for " + cfg.leaseTimeout() + " s)");
            }
            try {
                Thread.sleep(period / 1_000_000);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        leases.interrupt();
        for (Worker w : workers) w.channel.shutdownNow();
        io.shutdownNow();
        for (Worker w : workers) {
            try {
                w.channel.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
