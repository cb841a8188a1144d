package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same tokens give bit-identical logits in one JVM before and after the kernels are JIT-compiled
 * (horizontal sums add lanes in a fixed order; reduceLanes would not), which the offloading runtime's
 * exactness promise relies on.
 */
class DeterminismTest {
    @TempDir Path dir;

    @Test
    void coldAndWarmRunsAreBitIdentical() throws Exception {
        Path file = dir.resolve("m.gguf");
        RandomModel.write(new RandomModel.Shape("qwen2moe", 2, 256, 4, 2, 64, 8, 2, 256, 256, 300, 64, 1e6f, 1e-6f, false, 11),
                FileType.Q8_0, file);
        int[] tokens = {5, 17, 250, 3, 99, 42};
        try (GgufFile f = GgufFile.open(file); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f);
            float[] cold = m.newState(16, pool).evalAll(tokens, 0, tokens.length, 1);
            for (int i = 0; i < 300; i++) m.newState(16, pool).evalAll(tokens, 0, tokens.length, 1); // let C2 compile the kernels
            float[] warm = m.newState(16, pool).evalAll(tokens, 0, tokens.length, 1);
            int[] coldBits = new int[cold.length], warmBits = new int[warm.length];
            for (int i = 0; i < cold.length; i++) {
                coldBits[i] = Float.floatToRawIntBits(cold[i]);
                warmBits[i] = Float.floatToRawIntBits(warm[i]);
            }
            assertArrayEquals(coldBits, warmBits);
        }
    }
}
