package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** In-memory lower-precision copies of a model (shadow models). */
class RequantizerTest {
    @TempDir Path dir;

    private Path write(String name, RandomModel.Shape shape, FileType type) throws Exception {
        Path p = dir.resolve(name);
        RandomModel.write(shape, type, p);
        return p;
    }

    private static RandomModel.Shape qwen(long seed) {
        return new RandomModel.Shape("qwen2moe", 2, 64, 2, 1, 32, 8, 2, 64, 64, 300, 64, 1e6f, 1e-6f, false, seed);
    }

    @Test
    void copiesReencodeEveryMatrixButRoutersAndNorms() throws Exception {
        try (GgufFile f = GgufFile.open(write("m.gguf", qwen(3), FileType.F16)); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f);
            Model same = Requantizer.copyAs(m, GgmlType.F16, pool);
            Model q8 = Requantizer.copyAs(m, GgmlType.Q8_0, pool);
            int[] toks = {1, 5, 9, 200, 7};
            float[] a = m.newState(8, pool).eval(toks, 0, toks.length, 5);
            float[] b = same.newState(8, pool).eval(toks, 0, toks.length, 5);
            float[] c = q8.newState(8, pool).eval(toks, 0, toks.length, 5);
            assertEquals(0f, maxDiff(a, b), 1e-6f, "an F16 copy of an F16 model computes the same logits");
            float d = maxDiff(a, c);
            assertTrue(d > 0 && d < 0.05f, "Q8_0 copy: close but not equal, max diff " + d);
            LayerWeights l0 = q8.layer(0);
            assertEquals(GgmlType.Q8_0, l0.wq().type());
            assertEquals(GgmlType.Q8_0, l0.experts().gate().type());
            assertEquals(GgmlType.Q8_0, l0.sharedDown().type());
            assertEquals(GgmlType.Q8_0, q8.tokenEmbedding().type());
            assertSame(m.layer(0).router(), l0.router(), "the router stays as loaded");
            assertSame(m.layer(0).ffnNorm(), l0.ffnNorm());
            assertTrue(Requantizer.matrixBytes(q8) < Requantizer.matrixBytes(m) * 0.6, "Q8_0 is ~8.5 bits against F16's 16");
            Requantizer.requireSameShape(m, q8, "copy");
        }
    }

    @Test
    void anotherModelIsNotAShadow() throws Exception {
        try (GgufFile a = GgufFile.open(write("a.gguf", qwen(1), FileType.F16));
             GgufFile b = GgufFile.open(write("b.gguf", new RandomModel.Shape("qwen2moe", 3, 64, 2, 1, 32, 8, 2, 64, 64, 300, 64, 1e6f, 1e-6f, false, 2),
                     FileType.Q8_0))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Requantizer.requireSameShape(Model.load(a), Model.load(b), "b.gguf"));
            assertTrue(e.getMessage().contains("b.gguf") && e.getMessage().contains("layers"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Requantizer.copyAs(Model.load(a), GgmlType.Q2_K, null));
        }
    }

    private static float maxDiff(float[] a, float[] b) {
        float m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
