package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.model.StackedExperts;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.TestModels;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A model's memory figures, its non-expert weights moved out of the mapping, and loading under a plan. */
class ModelMemoryTest {
    @Test
    void footprintAddsUpTheFilesTensorsAndTheExpertLayout() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            Model m = Model.load(f);
            ModelFootprint fp = ModelFootprint.of(m);
            long tensors = f.tensors().stream().mapToLong(GgufTensorInfo::byteSize).sum();
            assertEquals(tensors, fp.weightBytes());
            ExpertLayout layout = ExpertLayout.of(m);
            assertEquals(layout.totalBytes(), fp.expertBytes());
            assertEquals((layout.maxExpertBytes() + 63) / 64 * 64, fp.slotBytes());
            assertEquals(3 * 8, fp.expertCount());
            long packedExperts = 0;
            for (StackedExperts s : m.stackedExperts()) {
                for (int e = 0; e < s.nExpert(); e++) {
                    ExpertWeights w = s.expert(e);
                    for (Matrix x : List.of(w.gate(), w.up(), w.down())) if (Packing.canPack(x)) packedExperts += Packing.largestPackedBytes(x);
                }
            }
            assertTrue(packedExperts > 0, "the Q4_0 test model's experts can be packed");
            assertEquals(packedExperts, fp.packedExperts());
            var hp = m.hyperparams();
            assertEquals(2L * hp.nLayer() * hp.kvDim() * Float.BYTES * 100, fp.kvBytes(100));
        }
    }

    private static List<Matrix> nonExpert(Model m) {
        List<Matrix> out = new ArrayList<>(List.of(m.tokenEmbedding(), m.output()));
        for (int l = 0; l < m.hyperparams().nLayer(); l++) {
            LayerWeights w = m.layer(l);
            for (Matrix x : new Matrix[]{w.wq(), w.wk(), w.wv(), w.wo(), w.router(), w.ffnGate(), w.ffnUp(), w.ffnDown()}) if (x != null) out.add(x);
        }
        return out;
    }

    private static boolean inside(MemorySegment mapping, MemorySegment s) {
        return s.isNative() && s.address() >= mapping.address() && s.address() + s.byteSize() <= mapping.address() + mapping.byteSize();
    }

    @Test
    void copiedNonExpertWeightsLeaveTheMappingAndComputeTheSameLogits() throws Exception {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe()); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f);
            long[] copied = new long[1];
            Model c = NonExpertWeights.copy(m, copied);
            ModelFootprint fp = ModelFootprint.of(m);
            // every non-expert matrix (and nothing else) was copied
            long matrices = nonExpert(m).stream().distinct().mapToLong(Matrix::byteSize).sum();
            for (int l = 0; l < m.hyperparams().nLayer(); l++) {
                LayerWeights w = m.layer(l);
                for (Matrix x : new Matrix[]{w.sharedGate(), w.sharedUp(), w.sharedDown()}) if (x != null) matrices += x.byteSize();
            }
            assertEquals(matrices, copied[0]);
            assertTrue(copied[0] < fp.nonExpertBytes() + 1 && copied[0] > 0);
            MemorySegment mapping = f.mapping();
            for (Matrix x : nonExpert(c)) assertFalse(inside(mapping, x.data()), "a non-expert matrix still reads the mapping");
            for (Matrix x : nonExpert(m)) assertTrue(inside(mapping, x.data()));
            for (StackedExperts s : c.stackedExperts()) if (s != null) assertTrue(inside(mapping, s.gate().data()), "experts stay where the stores read them");
            int[] tokens = {1, 5, 9, 77, 3};
            InferenceState a = m.newState(16, pool), b = c.newState(16, pool);
            for (int t : tokens) assertArrayEquals(a.next(t), b.next(t));
        }
    }

    @Test
    void loadingUnderAnOffloadingPlanCopiesAndSaysWhy() throws Exception {
        String before = System.getProperty(SystemMemory.AVAILABLE_PROPERTY), heapBefore = System.getProperty(ModelMemory.HEAP_PROPERTY);
        try (GgufFile f = GgufFile.open(TestModels.mixtral())) {
            // as bin/jmoe hands them over: 2 GiB to use, a planned heap of 128 MiB (this test JVM's -Xmx4g would not fit)
            System.setProperty(SystemMemory.AVAILABLE_PROPERTY, Long.toString(2048L << 20));
            System.setProperty(ModelMemory.HEAP_PROPERTY, Long.toString(128L << 20));
            ModelMemory.Loaded auto = ModelMemory.load(f, "auto", 64, false, true, OffloadConfig::parseBudget);
            assertTrue(auto.plan().offloads());
            assertEquals(64, auto.ctx());
            assertTrue(auto.status().startsWith("expert memory auto: "), auto.status());
            assertFalse(inside(f.mapping(), auto.model().layer(0).wq().data()));
            assertTrue(auto.model().packsWeights(), "packed copies fit this plan");
            // without --expert-memory, a model that fits stays resident and reads its mapping; nothing to say
            ModelMemory.Loaded resident = ModelMemory.load(f, null, null, false, true, OffloadConfig::parseBudget);
            assertFalse(resident.plan().offloads());
            assertNull(resident.status());
            assertTrue(inside(f.mapping(), resident.model().layer(0).wq().data()));
            // a command that does not offload is never given an offloading plan, whatever the flag
            assertFalse(ModelMemory.load(f, "auto", null, true, false, OffloadConfig::parseBudget).plan().offloads());
            // and is not refused where nothing fits: it runs resident as it always did; a command that could offload is refused
            System.setProperty(SystemMemory.AVAILABLE_PROPERTY, Long.toString(100L << 20));
            ModelMemory.Loaded starved = ModelMemory.load(f, null, 64, false, false, OffloadConfig::parseBudget);
            assertFalse(starved.plan().offloads());
            assertTrue(starved.plan().notes().get(0).contains("needs at least"), starved.plan().notes().toString());
            org.junit.jupiter.api.Assertions.assertThrows(MemoryPlanner.TooSmall.class,
                    () -> ModelMemory.load(f, null, 64, false, true, OffloadConfig::parseBudget));
        } finally {
            if (before == null) System.clearProperty(SystemMemory.AVAILABLE_PROPERTY); else System.setProperty(SystemMemory.AVAILABLE_PROPERTY, before);
            if (heapBefore == null) System.clearProperty(ModelMemory.HEAP_PROPERTY); else System.setProperty(ModelMemory.HEAP_PROPERTY, heapBefore);
        }
    }
}
