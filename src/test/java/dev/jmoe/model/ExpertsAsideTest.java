package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The MoE layer's seams for SMoE's scheduling: experts a source computes aside (its slow side) run on the source's
 * thread while the pass computes the rest, with the same result; and a single-token step reports its partial output
 * once the experts that were ready are computed.
 */
class ExpertsAsideTest {
    @TempDir Path dir;

    /** The resident experts, one at a time (never all ready), with the lowest-numbered used expert of each decode layer computed aside. */
    static final class AsideSource implements ExpertSource {
        final ExpertSource inner;
        final ExecutorService side = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-slow-side"));
        final List<String> asideThreads = new ArrayList<>();
        int[] aside = NO_EXPERTS;
        boolean decode;

        AsideSource(ExpertSource inner) { this.inner = inner; }

        @Override public void willUse(int layer, int[] experts) {
            aside = decode ? new int[]{experts[0]} : NO_EXPERTS;
        }

        @Override public int[] aside(int layer) { return aside; }

        @Override public Future<?> runAside(Runnable work) { return side.submit(work); }

        @Override public int readyCount(int layer) { return 1; }

        @Override public ExpertWeights acquire(int layer, int expert) {
            for (int a : aside) {
                if (a == expert) {
                    synchronized (asideThreads) {
                        asideThreads.add(Thread.currentThread().getName());
                    }
                }
            }
            return inner.acquire(layer, expert);
        }

        @Override public void close() { side.shutdownNow(); }
    }

    @Test
    void expertsComputedAsideGiveTheSameBitsAndThePartialOutputIsReported() throws Exception {
        Path file = dir.resolve("m.gguf");
        RandomModel.write(new RandomModel.Shape("llama", 2, 256, 4, 2, 64, 8, 2, 256, 0, 300, 64, 1e6f, 1e-5f, false, 31), FileType.Q4_0, file);
        int[] prompt = {5, 17, 250, 3, 99, 42};
        try (GgufFile f = GgufFile.open(file); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f).withPackedWeights();
            InferenceState ref = m.newState(32, pool);
            float[] a = ref.eval(prompt, 0, prompt.length, 4);
            float[] a2 = ref.next(7), a3 = ref.next(11);

            InferenceState st = m.newState(32, pool);
            try (AsideSource src = new AsideSource(m.residentExperts())) {
                st.setExperts(src);
                List<Integer> reported = new ArrayList<>();
                st.setPartialOutputHook((layer, pos, residual, partial, computed) -> {
                    reported.add(computed);
                    float sum = 0;
                    for (float v : partial) sum += Math.abs(v);
                    assertTrue(sum > 0, "the ready expert's weighted output");
                });
                float[] b = st.eval(prompt, 0, prompt.length, 4);
                assertTrue(reported.isEmpty(), "prompt batches report nothing");
                src.decode = true;
                float[] b2 = st.next(7), b3 = st.next(11);
                assertArrayEquals(a, b);
                assertArrayEquals(a2, b2);
                assertArrayEquals(a3, b3);
                assertEquals(List.of(1, 1, 1, 1), reported, "one report per decode layer, after the one ready expert");
                assertEquals(4, src.asideThreads.size());
                assertFalse(src.asideThreads.stream().anyMatch(t -> !t.equals("test-slow-side")), src.asideThreads.toString());
            }
        }
    }
}
