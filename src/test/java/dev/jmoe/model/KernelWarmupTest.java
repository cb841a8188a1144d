package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelWarmupTest {
    @TempDir Path dir;

    @Test
    void warmsEachWeightTypeOnceUntilCompiled() throws Exception {
        Path file = dir.resolve("m.gguf");
        RandomModel.write(GeneratedModelsTest.shape("llama-moe"), FileType.Q4_K_M, file);
        try (GgufFile f = GgufFile.open(file); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f);
            Map<GgmlType, Matrix> samples = KernelWarmup.samples(m);
            // the Q4_K_M recipe mixes Q4_K and Q6_K matrices; routers stay F32
            assertTrue(samples.keySet().containsAll(Set.of(GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F32)), samples.keySet().toString());
            samples.forEach((t, mat) -> assertEquals(t, mat.type()));

            float[] before = m.newState(32, pool).eval(new int[] {5, 77, 190}, 0, 3, 3);
            KernelWarmup.Result first = KernelWarmup.run(m, pool, 120_000_000_000L, (done, total) -> { });
            assertTrue(samples.keySet().containsAll(first.types()), first.toString());
            assertEquals(first.types(), first.compiled(), "every type reached compiled speed well within the budget: " + first);
            // warm now: nothing left to do for this model's types
            KernelWarmup.Result second = KernelWarmup.run(m, pool, 120_000_000_000L, (done, total) -> { });
            assertEquals(java.util.List.of(), second.types());
            // warming reads the weights only: the model computes the same logits
            float[] after = m.newState(32, pool).eval(new int[] {5, 77, 190}, 0, 3, 3);
            assertTrue(java.util.Arrays.equals(before, after));
        }
    }

    @Test
    void noBudgetMeansNoWork() throws Exception {
        Path file = dir.resolve("b.gguf");
        RandomModel.write(GeneratedModelsTest.shape("qwen2moe"), FileType.Q5_K_M, file);
        try (GgufFile f = GgufFile.open(file); Parallel pool = new Parallel(1)) {
            KernelWarmup.Result r = KernelWarmup.run(Model.load(f), pool, 0, (done, total) -> { });
            assertEquals(java.util.List.of(), r.compiled());
        }
    }
}
