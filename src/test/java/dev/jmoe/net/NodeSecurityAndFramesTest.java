package dev.jmoe.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.jmoe.experts.store.Link;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.net.proto.AlignMessage;
import dev.jmoe.net.proto.ComputeReply;
import dev.jmoe.net.proto.ComputeRequest;
import dev.jmoe.net.proto.ExpertWorkerGrpc;
import dev.jmoe.net.proto.Prediction;
import dev.jmoe.net.proto.PrefetchRequest;
import dev.jmoe.net.proto.ShadowNodeGrpc;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.TestModels;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Node links refuse peers without the token or a certificate from the cluster CA, and every malformed frame gets a
 * clear INVALID_ARGUMENT (or RESOURCE_EXHAUSTED past the size cap) while the worker keeps serving valid calls, whose
 * results equal the local computation bit for bit.
 */
@Timeout(180)
class NodeSecurityAndFramesTest {
    static Path modelPath;
    static Model model;
    static GgufFile file;
    static WorkerNode plain;
    static ManagedChannel channel;
    static ExpertWorkerGrpc.ExpertWorkerBlockingStub stub;

    @BeforeAll
    static void start() throws Exception {
        modelPath = TestModels.qwen2moe();
        file = GgufFile.open(modelPath);
        model = Model.load(file);
        plain = WorkerNode.start(new WorkerNode.Settings(modelPath, "127.0.0.1", 0, null, "host", Link.UNLIMITED, 1, NodeSecurity.NONE));
        channel = NettyChannelBuilder.forAddress("127.0.0.1", plain.port()).usePlaintext().maxInboundMessageSize(64 << 20).build();
        stub = ExpertWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
    }

    @AfterAll
    static void stop() throws Exception {
        if (channel != null) channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        if (plain != null) plain.close();
        if (file != null) file.close();
    }

    static ClusterConfig config(int port, NodeSecurity security) {
        return new ClusterConfig(List.of(new ClusterConfig.Endpoint("127.0.0.1", port)), null, null, security, null, 30, 3);
    }

    static ByteString floats(float[] a) {
        ByteBuffer b = ByteBuffer.allocate(a.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(a);
        return ByteString.copyFrom(b.array());
    }

    static float[] hidden(int rows) {
        int e = model.hyperparams().nEmbd();
        float[] x = new float[rows * e];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i * 0.37) * 0.5f;
        return x;
    }

    static ComputeRequest.Builder valid(int rows) {
        return ComputeRequest.newBuilder().setPosition(3).setLayer(1).setExpert(5).setRows(rows).setHidden(floats(hidden(rows)));
    }

    static void assertInvalid(ComputeRequest r, String mentions) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub.compute(r));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.toString());
        assertTrue(e.getStatus().getDescription().contains(mentions), e.getStatus().getDescription());
    }

    @Test
    void malformedComputeFramesAreRejectedAndTheWorkerKeepsServing() {
        int e = model.hyperparams().nEmbd();
        long before = plain.rejected();
        assertInvalid(valid(1).setLayer(99).build(), "layer 99");
        assertInvalid(valid(1).setLayer(-1).build(), "layer -1");
        assertInvalid(valid(1).setExpert(16).build(), "expert 16");
        assertInvalid(valid(1).setRows(0).setHidden(ByteString.EMPTY).build(), "rows 0");
        assertInvalid(valid(1).setRows(WorkerNode.MAX_ROWS + 1).build(), "rows");
        assertInvalid(valid(1).setRowsFollowing(-1).build(), "rows_following -1");
        assertInvalid(valid(1).setRowsFollowing(WorkerNode.MAX_ROWS + 1).build(), "rows_following");
        assertInvalid(valid(1).setRows(2).build(), "hidden");                          // bytes for 1 row, says 2
        assertInvalid(valid(1).setHidden(ByteString.copyFrom(new byte[e * 4 - 1])).build(), "bytes");
        float[] nan = hidden(1);
        nan[7] = Float.NaN;
        assertInvalid(valid(1).setHidden(floats(nan)).build(), "non-finite");
        assertInvalid(valid(1).setPosition(-5).build(), "position");
        assertEquals(before + 11, plain.rejected());
        StatusRuntimeException p = assertThrows(StatusRuntimeException.class,
                () -> stub.prefetch(PrefetchRequest.newBuilder().setLayer(1).setPosition(0).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, p.getStatus().getCode());
        p = assertThrows(StatusRuntimeException.class, () -> stub.prefetch(PrefetchRequest.newBuilder().setLayer(1).addExperts(400).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, p.getStatus().getCode());
        // larger than any legal batch: refused by the transport before anything is allocated for it
        ComputeRequest huge = valid(1).setHidden(ByteString.copyFrom(new byte[(WorkerNode.MAX_ROWS + 16) * e * 4])).build();
        StatusRuntimeException h = assertThrows(StatusRuntimeException.class, () -> stub.compute(huge));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, h.getStatus().getCode(), h.toString());

        // still serving, and exactly the local computation
        for (int rows : new int[]{1, 3, 9}) {
            ComputeReply reply = ExpertWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS).compute(valid(rows).build());
            float[] got = Frames.decode(reply.getOutput(), rows * e, "output");
            float[] want = new float[rows * e];
            try (Parallel pool = new Parallel(2)) {
                Kernels.withActivationQuantization(false, () -> Model.computeExpert(pool, model.stackedExperts().get(1).expert(5), hidden(rows), rows, want));
            }
            assertArrayEquals(want, got, "worker output for " + rows + " rows (1 worker thread vs 2 local threads)");
        }
        // a step over several sequences: every row as a single-vector product (batch invariance), not the batch tiles
        ComputeReply inv = ExpertWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS).compute(valid(9).setBatchInvariant(true).build());
        float[] want = new float[9 * e];
        try (Parallel pool = new Parallel(2)) {
            Kernels.withBatchInvariance(true, () -> Model.computeExpert(pool, model.stackedExperts().get(1).expert(5), hidden(9), 9, want));
        }
        assertArrayEquals(want, Frames.decode(inv.getOutput(), 9 * e, "output"), "batch-invariant rows");
        // mini-batches: the first part keeps the expert loaded for the rest of its rows
        var blocking = ExpertWorkerGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
        blocking.compute(valid(2).setPosition(40).setExpert(6).setRowsFollowing(3).build());
        assertTrue(blocking.compute(valid(3).setPosition(40).setExpert(6).build()).getWasReady(), "the rest found the expert loaded");
    }

    @Test
    void aPeerWithoutTheTokenIsRefused(@TempDir Path dir) throws Exception {
        Path token = dir.resolve("token");
        Files.writeString(token, "s3cret-cluster-token\n");
        Path wrong = dir.resolve("wrong");
        Files.writeString(wrong, "guess\n");
        NodeSecurity sec = NodeSecurity.of(null, null, null, token);
        try (WorkerNode w = WorkerNode.start(new WorkerNode.Settings(modelPath, "127.0.0.1", 0, null, "host", Link.UNLIMITED, 1, sec))) {
            IllegalStateException none = assertThrows(IllegalStateException.class, () -> RemoteExperts.connect(config(w.port(), NodeSecurity.NONE), model, null));
            assertTrue(none.getMessage().contains("refused this node") && none.getMessage().contains("missing"), none.getMessage());
            IllegalStateException bad = assertThrows(IllegalStateException.class,
                    () -> RemoteExperts.connect(config(w.port(), NodeSecurity.of(null, null, null, wrong)), model, null));
            assertTrue(bad.getMessage().contains("wrong x-jmoe-token"), bad.getMessage());
            try (RemoteExperts ok = RemoteExperts.connect(config(w.port(), sec), model, null)) {
                assertEquals(1, ok.liveWorkers());
            }
        }
    }

    @Test
    void aPeerWithoutACertificateFromTheClusterCaIsRefused(@TempDir Path dir) throws Exception {
        Path certs = dir.resolve("cluster"), rogue = dir.resolve("rogue");
        make(certs, "worker", "main");
        make(rogue, "main");
        NodeSecurity workerSec = NodeSecurity.of(certs.resolve("worker.pem"), certs.resolve("worker.key"), certs.resolve("ca.pem"), null);
        try (WorkerNode w = WorkerNode.start(new WorkerNode.Settings(modelPath, "127.0.0.1", 0, null, "host", Link.UNLIMITED, 1, workerSec))) {
            IllegalStateException plaintext = assertThrows(IllegalStateException.class, () -> RemoteExperts.connect(config(w.port(), NodeSecurity.NONE), model, null));
            assertTrue(plaintext.getMessage().contains("cannot be reached"), plaintext.getMessage());
            // a certificate signed by another CA, though it trusts the worker's CA
            NodeSecurity impostor = NodeSecurity.of(rogue.resolve("main.pem"), rogue.resolve("main.key"), certs.resolve("ca.pem"), null);
            assertThrows(IllegalStateException.class, () -> RemoteExperts.connect(config(w.port(), impostor), model, null));
            NodeSecurity mainSec = NodeSecurity.of(certs.resolve("main.pem"), certs.resolve("main.key"), certs.resolve("ca.pem"), null);
            try (RemoteExperts ok = RemoteExperts.connect(config(w.port(), mainSec), model, null)) {
                assertEquals(1, ok.liveWorkers());
            }
        }
    }

    /** The documented way: bin/make-cluster-certs. */
    static void make(Path dir, String... names) throws Exception {
        Path script = Path.of(System.getProperty("jmoe.project.dir", "."), "bin", "make-cluster-certs");
        List<String> cmd = new java.util.ArrayList<>(List.of("bash", script.toString(), dir.toString()));
        cmd.addAll(List.of(names));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, out);
    }

    @Test
    void aShadowNodeRejectsAMainModelOfAnotherShapeAndBadAlignMessages() throws Exception {
        try (ShadowNode shadow = ShadowNode.start(model, "test shadow", "127.0.0.1", 0, NodeSecurity.NONE)) {
            ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", shadow.port()).usePlaintext().build();
            try {
                assertEquals(Status.Code.INVALID_ARGUMENT, follow(ch, AlignMessage.newBuilder().setModelFingerprint("llama L2 E8").setContext(16).build()));
                String shape = ModelFingerprint.shape(model);
                assertEquals(Status.Code.INVALID_ARGUMENT, follow(ch, AlignMessage.newBuilder().setModelFingerprint(shape).setContext(-4).build()));
                assertEquals(Status.Code.INVALID_ARGUMENT, follow(ch, AlignMessage.newBuilder().setModelFingerprint(shape).setContext(16)
                        .setAlignTokenPeriod(1).setAlignKvPeriod(1).setPosition(0).addTokens(1_000_000).build()));
                assertEquals(Status.Code.INVALID_ARGUMENT, follow(ch, AlignMessage.newBuilder().setModelFingerprint(shape).setContext(16)
                        .setAlignTokenPeriod(1).setAlignKvPeriod(1).setKvFrom(0).setKvCount(2).setKv(ByteString.copyFrom(new byte[12])).build()));
            } finally {
                ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        }
    }

    /** Sends one message on a Follow stream and returns the status the shadow ends it with. */
    static Status.Code follow(ManagedChannel ch, AlignMessage m) throws Exception {
        CompletableFuture<Status.Code> end = new CompletableFuture<>();
        StreamObserver<AlignMessage> out = ShadowNodeGrpc.newStub(ch).follow(new StreamObserver<>() {
            @Override public void onNext(Prediction p) { }

            @Override public void onError(Throwable t) { end.complete(Status.fromThrowable(t).getCode()); }

            @Override public void onCompleted() { end.complete(Status.Code.OK); }
        });
        out.onNext(m);
        return end.get(30, TimeUnit.SECONDS);
    }
}
