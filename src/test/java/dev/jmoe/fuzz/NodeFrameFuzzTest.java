package dev.jmoe.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.net.Frames;
import dev.jmoe.net.NodeMessageChecks;
import dev.jmoe.net.proto.AlignMessage;
import dev.jmoe.net.proto.ComputeRequest;
import dev.jmoe.net.proto.PrefetchRequest;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Messages from other nodes: any bytes parsed as a worker's Compute or Prefetch request, or as a shadow node's stream
 * of AlignMessages, and handed to the node's own checks ({@link NodeMessageChecks}) for a node serving one of the
 * small models (or, for the shadow, a Mixtral-8x7B-sized shape, where products of counts get large). A message is
 * refused with a {@link Frames.BadFrame} (the node's INVALID_ARGUMENT) or, if it is not protobuf at all, an
 * {@link InvalidProtocolBufferException} (gRPC's own refusal); an accepted one must fit what the node then writes.
 * Input: byte 0 = message kind (0 Compute, 1 Prefetch, 2 shadow stream), byte 1 = model; then the message, or for a
 * stream the messages, each after a two-byte little-endian length.
 */
class NodeFrameFuzzTest implements SeedCorpus.Seeded {
    private static List<Model> models;

    /** The MoE models of {@link FuzzModels} (a worker refuses a dense one). */
    static synchronized List<Model> models() {
        if (models == null) {
            List<Model> m = new ArrayList<>();
            for (var e : FuzzModels.all().entrySet()) {
                if (e.getKey().endsWith("-dense")) continue;
                try {
                    m.add(Model.load(GgufFile.read(MemorySegment.ofArray(e.getValue()), e.getKey())));
                } catch (java.io.IOException x) {
                    throw new java.io.UncheckedIOException(x);
                }
            }
            models = m;
        }
        return models;
    }

    /** Mixtral 8x7B's shape: 32 layers of 8 KV heads of 128, 32000 tokens. */
    static final NodeMessageChecks.Shadow LARGE = new NodeMessageChecks.Shadow("llama/32/4096/8x2/kv1024/v32000", 32, 1024, 32000);

    @FuzzTest(maxDuration = "5m")
    void nodeFrame(byte[] data) {
        if (data.length < 2) return;
        int kind = (data[0] & 0xff) % 3;
        int which = data[1] & 0xff;
        FuzzInput in = new FuzzInput(java.util.Arrays.copyOfRange(data, 2, data.length));
        List<Model> ms = models();
        Fuzz.expectOnly(() -> {
            switch (kind) {
                case 0 -> new NodeMessageChecks.Worker(ms.get(which % ms.size())).compute(ComputeRequest.parseFrom(in.rest()));
                case 1 -> new NodeMessageChecks.Worker(ms.get(which % ms.size())).prefetch(PrefetchRequest.parseFrom(in.rest()));
                default -> {
                    int i = which % (ms.size() + 1);
                    NodeMessageChecks.Shadow shadow = i == ms.size() ? LARGE : new NodeMessageChecks.Shadow(ms.get(i));
                    while (in.hasMore()) shadow.next(AlignMessage.parseFrom(in.bytes(in.u16())));
                }
            }
        }, Frames.BadFrame.class, InvalidProtocolBufferException.class);
    }

    // ---------------------------------------------------------------- seeds

    @Override
    public Map<String, Map<String, byte[]>> seeds() {
        Model m = models().get(0);
        var hp = m.hyperparams();
        ExpertLayout layout = ExpertLayout.of(m);
        int layer = 0;
        while (!layout.hasExperts(layer)) layer++;
        int embd = hp.nEmbd();
        Map<String, byte[]> s = new LinkedHashMap<>();
        ComputeRequest compute = ComputeRequest.newBuilder().setPosition(5).setLayer(layer).setExpert(hp.nExpert() - 1).setRows(2)
                .setHidden(hidden(2 * embd, 0)).setPackedWeights(true).build();
        s.put("compute", message(0, compute.toByteArray()));
        s.put("compute-int8-one-row", message(0, compute.toBuilder().setRows(1).setHidden(hidden(embd, 1)).setPackedWeights(false)
                .setInt8Activations(true).build().toByteArray()));
        float[] nan = new float[2 * embd];
        nan[embd + 3] = Float.NaN;
        s.put("compute-nan", message(0, compute.toBuilder().setHidden(Frames.encode(nan, 0, nan.length)).build().toByteArray()));
        s.put("compute-short-hidden", message(0, compute.toBuilder().setRows(3).build().toByteArray()));
        s.put("compute-bad-indices", message(0, compute.toBuilder().setLayer(-1).setExpert(1 << 30).setRows(0).build().toByteArray()));
        s.put("prefetch", message(1, PrefetchRequest.newBuilder().setPosition(7).setLayer(layer).addExperts(0).addExperts(hp.nExpert() - 1).build().toByteArray()));
        s.put("prefetch-bad-expert", message(1, PrefetchRequest.newBuilder().setPosition(7).setLayer(layer).addExperts(hp.nExpert()).build().toByteArray()));
        s.put("not-protobuf", message(0, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f, 0x2a}));
        // a shadow stream as a main node sends it: the first message with the shape and settings, then KV entries, then tokens
        NodeMessageChecks.Shadow shadow = new NodeMessageChecks.Shadow(m);
        int kvPerPosition = hp.nLayer() * 2 * hp.kvDim();
        AlignMessage first = AlignMessage.newBuilder().setModelFingerprint(shadow.shape()).setContext(64).setAlignTokenPeriod(1)
                .setAlignKvPeriod(4).setPosition(0).addTokens(1).addTokens(2).addTokens(3).build();
        AlignMessage kv = AlignMessage.newBuilder().setKvFrom(0).setKvCount(3).setKv(hidden(3 * kvPerPosition, 2)).build();
        AlignMessage tokens = AlignMessage.newBuilder().setPosition(3).addTokens(4).build();
        s.put("shadow-stream", stream(0, first, kv, tokens));
        s.put("shadow-other-shape", stream(0, first.toBuilder().setModelFingerprint("llama/1/8/2x1/kv8/v10").build()));
        s.put("shadow-overrun", stream(0, first, tokens.toBuilder().setPosition(63).addTokens(5).build(),
                kv.toBuilder().setKvFrom(62).build()));
        s.put("shadow-large-shape", stream(models().size(), first.toBuilder().setModelFingerprint(LARGE.shape()).setContext(1 << 17).build(),
                AlignMessage.newBuilder().setKvFrom(0).setKvCount(1 << 10).build()));
        return Map.of("nodeFrame", s);
    }

    /** {@code n} float32 values as a node encodes them. */
    private static ByteString hidden(int n, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return Frames.encode(a, 0, n);
    }

    private static byte[] message(int kind, byte[] body) {
        byte[] out = new byte[body.length + 2];
        out[0] = (byte) kind;
        System.arraycopy(body, 0, out, 2, body.length);
        return out;
    }

    private static byte[] stream(int model, AlignMessage... messages) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(2);
        out.write(model);
        for (AlignMessage m : messages) {
            byte[] b = m.toByteArray();
            out.write(b.length & 0xff);
            out.write(b.length >>> 8);
            out.writeBytes(b);
        }
        return out.toByteArray();
    }
}
