package dev.jmoe.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.jmoe.net.proto.AlignMessage;
import org.junit.jupiter.api.Test;

/** The shadow node's checks of a message's KV entries on a model of real size, where counts times sizes pass 2^31. */
class ShadowMessageChecksTest {
    /** Mixtral 8x7B: 32 layers, 8 KV heads of 128 (kv_dim 1024), so one position's KV is 65536 floats. */
    static final int LAYERS = 32, KV_DIM = 1024, VOCAB = 32000, CONTEXT = ShadowNode.MAX_CONTEXT;

    @Test
    void aKvCountWhoseFloatCountWrapsIsRefusedNotAcceptedWithNoBytes() {
        // 65536 positions x 65536 floats = 2^32 floats: as an int that is 0, so an empty kv field used to match and the
        // node then copied 2^32 floats out of an empty array (an ArrayIndexOutOfBounds answered as INTERNAL)
        AlignMessage m = AlignMessage.newBuilder().setKvFrom(0).setKvCount(1 << 16).build();
        Frames.BadFrame e = assertThrows(Frames.BadFrame.class, () -> ShadowNode.checkUpdate(m, LAYERS, KV_DIM, VOCAB, CONTEXT));
        assertTrue(e.getMessage().contains("kv_count 65536"), e.getMessage());
        // 32768 positions = 2^31 floats, negative as an int: refused by name too, not as "negative size"
        AlignMessage half = AlignMessage.newBuilder().setKvFrom(0).setKvCount(1 << 15).build();
        Frames.BadFrame h = assertThrows(Frames.BadFrame.class, () -> ShadowNode.checkUpdate(half, LAYERS, KV_DIM, VOCAB, CONTEXT));
        assertTrue(h.getMessage().contains("kv_count 32768"), h.getMessage());
    }

    @Test
    void kvEntriesOfARealSizeStillPass() {
        float[] kv = new float[2 * LAYERS * 2 * KV_DIM];
        kv[5] = 1.5f;
        AlignMessage m = AlignMessage.newBuilder().setKvFrom(10).setKvCount(2).setKv(Frames.encode(kv, 0, kv.length)).addTokens(7).setPosition(12).build();
        ShadowNode.Update u = ShadowNode.checkUpdate(m, LAYERS, KV_DIM, VOCAB, CONTEXT);
        assertEquals(10, u.kvFrom());
        assertEquals(kv.length, u.kv().length);
        assertEquals(1.5f, u.kv()[5]);
        assertEquals(12, u.position());
        // one byte short is refused with the sizes
        AlignMessage shortKv = m.toBuilder().setKv(ByteString.copyFrom(new byte[kv.length * 4 - 1])).build();
        assertThrows(Frames.BadFrame.class, () -> ShadowNode.checkUpdate(shortKv, LAYERS, KV_DIM, VOCAB, CONTEXT));
    }
}
