package dev.jmoe.tensor;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Decodes the quantized tensors that llama.cpp wrote for the reference models and checks them against
 * the F16 file of the same weights: every value must land within a quantization step of its F16
 * original (a wrong block layout misplaces values by many steps). Re-quantizing the F16 values must
 * reproduce nearly all of llama.cpp's bytes (not all: llama.cpp quantized the unrounded F32 originals).
 */
class ReferenceDecodeTest {

    private static Path models() {
        String dir = System.getProperty("jmoe.reference.dir");
        assumeTrue(dir != null, "jmoe.reference.dir not set");
        Path p = Path.of(dir, "models");
        assumeTrue(Files.isDirectory(p), "no reference models at " + p);
        return p;
    }

    private static float[] decode(MiniGguf.Tensor t) {
        int n = (int) t.count();
        float[] out = new float[n];
        Kernels.forType(t.type()).dequantizeRow(t.data(), 0, out, 0, n);
        return out;
    }

    /** The size of one quantization step for value i of a tensor of this type. */
    private static float step(MiniGguf.Tensor t, int i) {
        MemorySegment s = t.data();
        long block = (long) (i / t.type().blockSize()) * t.type().blockBytes();
        return switch (t.type()) {
            case Q8_0, Q4_0 -> Math.abs(Num.f16(s, block));
            case Q6_K -> Math.abs(Num.f16(s, block + 208) * s.get(Num.BYTE, block + 192 + (i % 256) / 16));
            default -> throw new AssertionError(t.type());
        };
    }

    @Test
    void quantizedReferenceTensorsDecodeWithinOneStepOfF16() throws IOException {
        Path dir = models();
        try (Arena arena = Arena.ofConfined()) {
            MiniGguf f16 = new MiniGguf(dir.resolve("tiny_mixtral_f16.gguf"), arena);
            int checked = 0;
            for (String file : new String[] {"tiny_mixtral_q8_0.gguf", "tiny_mixtral_q4_0.gguf"}) {
                MiniGguf q = new MiniGguf(dir.resolve(file), arena);
                for (MiniGguf.Tensor t : q.tensors.values()) {
                    if (t.type() == GgmlType.F32) continue;
                    MiniGguf.Tensor ref = f16.tensors.get(t.name());
                    assertNotNull(ref, t.name());
                    float[] want = decode(ref), got = decode(t);
                    // Q4_0 clamps the largest value opposite the scale's sign by a full step.
                    float allowed = t.type() == GgmlType.Q8_0 ? 0.51f : 1.01f;
                    for (int i = 0; i < want.length; i++) {
                        float tol = allowed * step(t, i) + Math.abs(want[i]) * 1e-3f + 1e-6f;
                        if (Math.abs(want[i] - got[i]) > tol) {
                            fail(file + " " + t.name() + " (" + t.type() + ") value " + i + ": decoded " + got[i]
                                    + " but F16 has " + want[i]);
                        }
                    }
                    checked++;
                }
            }
            assertTrue(checked > 50, "expected to check many tensors, checked " + checked);
        }
    }

    @Test
    void requantizingF16ReproducesLlamaCppBytes() throws IOException {
        Path dir = models();
        try (Arena arena = Arena.ofConfined()) {
            MiniGguf f16 = new MiniGguf(dir.resolve("tiny_mixtral_f16.gguf"), arena);
            for (String file : new String[] {"tiny_mixtral_q8_0.gguf", "tiny_mixtral_q4_0.gguf"}) {
                MiniGguf q = new MiniGguf(dir.resolve(file), arena);
                for (String name : new String[] {"blk.0.attn_q.weight", "blk.1.ffn_down_exps.weight", "token_embd.weight"}) {
                    MiniGguf.Tensor t = q.tensors.get(name);
                    assertTrue(t.type() == GgmlType.Q8_0 || t.type() == GgmlType.Q4_0, name + " is " + t.type());
                    float[] src = decode(f16.tensors.get(name));
                    MemorySegment mine = arena.allocate(t.data().byteSize());
                    Kernels.forType(t.type()).quantizeRow(src, 0, src.length, mine, 0);
                    long same = 0;
                    for (long i = 0; i < mine.byteSize(); i++) {
                        if (mine.get(Num.BYTE, i) == t.data().get(Num.BYTE, i)) same++;
                    }
                    double frac = (double) same / mine.byteSize();
                    assertTrue(frac > 0.97, file + " " + name + ": only " + frac + " of the bytes agree");
                }
            }
        }
    }
}
