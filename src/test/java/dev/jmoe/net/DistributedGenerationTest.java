package dev.jmoe.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.engine.BatchConfig;
import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.Engine;
import dev.jmoe.engine.Generation;
import dev.jmoe.engine.GenerationRequest;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Batch;
import dev.jmoe.model.ExpertExecutor;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.KvCache;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import dev.jmoe.testutil.TestModels;
import java.util.Arrays;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Distributed OD-MoE with worker JVMs on 127.0.0.1: greedy generation equals the single-node resident run token for
 * token and logit for logit (bit for bit), also when a worker is killed with -9 mid-generation and when the shadow
 * node is lost.
 */
@Timeout(300)
class DistributedGenerationTest {
    static final int PROMPT = 12, DECODE = 10;
    static Nodes nodes;
    static Path model;
    static List<Nodes.Node> workers = new ArrayList<>();
    static Reference reference;

    /** A greedy run's tokens, every step's logits, the engine's notices and the cluster's counters (null on one node). */
    record Reference(int[] tokens, List<float[]> logits, List<String> notices, ClusterStats.Snapshot cluster) {}

    @BeforeAll
    static void start() throws Exception {
        model = TestModels.mixtral(); // Q4_0: the main node packs its experts, so the workers must too
        nodes = new Nodes();
        for (int i = 0; i < 4; i++) workers.add(nodes.worker(model));
        reference = greedy(ExpertRuntimeConfig.RESIDENT, null);
    }

    @AfterAll
    static void stop() {
        if (nodes != null) nodes.close();
    }

    static int[] prompt() {
        int[] p = new int[PROMPT];
        for (int i = 0; i < PROMPT; i++) p[i] = 1 + (i * 37) % 250;
        return p;
    }

    /** Greedy decoding with the logits of the prompt and of every step; {@code afterStep} runs after each decoded token. */
    static Reference greedy(ExpertRuntimeConfig experts, IntConsumer afterStep) throws Exception {
        return greedy(experts, afterStep, prompt());
    }

    static Reference greedy(ExpertRuntimeConfig experts, IntConsumer afterStep, int[] prompt) throws Exception {
        return greedy(experts, afterStep, prompt, false);
    }

    /** {@code awaitShadow}: after the first decoded token, wait until the shadow node has published (its per-stream warm-up is done). */
    static Reference greedy(ExpertRuntimeConfig experts, IntConsumer afterStep, int[] prompt, boolean awaitShadow) throws Exception {
        EngineConfig cfg = EngineConfig.builder(model).threads(1).contextSize(96).warmup(false).experts(experts).build();
        List<String> notices = java.util.Collections.synchronizedList(new ArrayList<>());
        dev.jmoe.engine.EngineListener listener = new dev.jmoe.engine.EngineListener() {
            @Override public void notice(String message) { notices.add(message); }
        };
        try (Engine engine = Engine.open(cfg, listener); Session s = engine.newSession()) {
            List<float[]> logits = new ArrayList<>();
            float[] l = s.evaluate(prompt);

            int[] tokens = new int[DECODE];
            for (int i = 0; i < DECODE; i++) {
                logits.add(l.clone());
                tokens[i] = argmax(l);
                l = s.next(tokens[i]);
                // the shadow starts once the prompt batch is done (it adopts the batch's KV entries): wait for its first routing
                if (awaitShadow && i == 0) assertTrue(s.awaitPredictorWarm(60), "the shadow node published within 60 s: " + notices);
                if (afterStep != null) afterStep.accept(i);
            }
            logits.add(l.clone());
            return new Reference(tokens, logits, List.copyOf(notices), s.clusterStats() == null ? null : s.clusterStats().snapshot());
        }
    }

    static int argmax(float[] l) {
        int b = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[b]) b = i;
        return b;
    }

    static void assertSame(Reference expected, Reference got) {
        assertArrayEquals(expected.tokens(), got.tokens(), "tokens");
        for (int i = 0; i < expected.logits().size(); i++) {
            float[] a = expected.logits().get(i), b = got.logits().get(i);
            for (int j = 0; j < a.length; j++) {
                if (Float.floatToIntBits(a[j]) != Float.floatToIntBits(b[j])) {
                    throw new AssertionError("step " + i + " logit " + j + ": " + a[j] + " (resident) vs " + b[j] + " (distributed)");
                }
            }
        }
    }

    static ExpertRuntimeConfig.Builder cluster(List<Nodes.Node> ws, String shadow, Integer groupSize, double lease) {
        List<ClusterConfig.Endpoint> eps = ClusterConfig.parseList(Nodes.addresses(ws), "--workers");
        ClusterConfig c = new ClusterConfig(eps, shadow == null ? null : ClusterConfig.Endpoint.parse(shadow, "--shadow-node"), groupSize,
                NodeSecurity.NONE, null, 60, lease);
        return ExpertRuntimeConfig.builder().cluster(c);
    }

    @Test
    void distributedGreedyEqualsResidentBitForBit() throws Exception {
        // 4 workers in 2 groups of k = 2, the shadow in this process predicting for the workers
        // (leases of 10 s here and below: these tests are not about failure detection, and a loaded CI machine can
        // starve a live worker's health answers for a few seconds)
        Reference predicted = greedy(cluster(workers, null, null, 10).build(), null);
        assertSame(reference, predicted);
        // every MoE layer of every step went to the workers: 3 layers x (1 prompt batch + DECODE steps)
        assertEquals(3L * (1 + DECODE), predicted.cluster().layers());
        assertTrue(predicted.cluster().decodeExpertUses() == 3L * 2 * DECODE, "k = 2 experts per decode layer");
        assertTrue(predicted.cluster().prefetchMessages() > 0, "the shadow's predictions reach the workers as load commands");
        // no prediction at all: every expert loaded on demand on its worker
        Reference onDemand = greedy(cluster(workers, null, 1, 10).predictor("none").build(), null);
        assertSame(reference, onDemand);
        assertEquals(0, onDemand.cluster().prefetchMessages());
    }

    /**
     * Expert kernels pin their vector shapes (256-bit float/int lanes, 128-bit byte lanes) and SiLU is lane-wise, so a
     * node whose preferred vector width differs (AVX2: 256 bits; 128 bits) computes the same bits as this AVX-512 one.
     */
    @Test
    void workersWithOtherVectorWidthsComputeTheSameBits() throws Exception {
        Nodes.Node avx2 = nodes.worker(List.of("-XX:UseAVX=2"), model);
        Nodes.Node narrow = nodes.worker(List.of("-XX:MaxVectorSize=16"), model);
        try {
            Reference got = greedy(cluster(List.of(avx2, narrow), null, 1, 30).predictor("none").build(), null);
            assertSame(reference, got);
            assertTrue(got.cluster().computeCalls() >= 3L * (1 + DECODE));
        } finally {
            avx2.kill();
            narrow.kill();
        }
    }

    @Test
    void killingAWorkerMidGenerationChangesNothing() throws Exception {
        Nodes.Node victim = nodes.worker(model);
        List<Nodes.Node> ws = new ArrayList<>(workers.subList(0, 2));
        ws.add(victim);
        long t0 = System.nanoTime();
        Reference got = greedy(cluster(ws, null, 1, 5).build(), step -> {
            if (step == 3) {
                try {
                    victim.kill();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            }
        });
        assertSame(reference, got);
        assertTrue(!victim.process.isAlive());
        // (on a loaded machine a live worker may also miss its lease for a moment and rejoin; the output is exact either way)
        assertTrue(got.cluster().workersLost() >= 1, "the killed worker was dropped");
        assertTrue(got.notices().stream().anyMatch(n -> n.contains("worker " + victim.address() + " dropped from the schedule")), got.notices().toString());
        assertTrue(System.nanoTime() - t0 < 120e9, "the run must not hang on the dead worker");
    }

    @Test
    void losingTheShadowNodeChangesNothing() throws Exception {
        Nodes.Node shadow = nodes.shadow(model, "--shadow", "q8_0");
        Reference got = greedy(cluster(workers, shadow.address(), null, 10).build(), step -> {
            if (step == 4) {
                try {
                    shadow.kill();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            }
        });
        assertSame(reference, got);
        assertEquals(false, shadow.process.isAlive());
        assertTrue(got.cluster().shadowBytesSent() > 0, "the main node fed the shadow node");
        assertTrue(got.notices().stream().anyMatch(n -> n.contains("shadow node lost")), got.notices().toString());
    }

    /**
     * Steps over several sequences ({@code Model.forward} with a {@link Batch}, as continuous batching runs them): every
     * prompt in the first step, then {@code decode} greedy steps together. The MoE layers' experts go to
     * {@code executor} (null: computed here). Returns each sequence's logits of every sampling row, concatenated.
     */
    static List<float[]> steps(Model m, int[][] prompts, int decode, ExpertExecutor executor) {
        int v = m.hyperparams().nVocab(), n = prompts.length;
        Parallel pool = new Parallel(1);
        InferenceState runtime = m.newState(1, pool);
        runtime.setExpertExecutor(executor);
        KvCache kv = m.newKvCache(n * 32);
        InferenceState[] seq = new InferenceState[n];
        for (int i = 0; i < n; i++) seq[i] = m.newState(kv.region(i * 32, 32), pool);
        float[][] out = new float[n][(decode + 1) * v];
        int[] next = new int[n];
        float[] logits = new float[n * v];
        Batch batch = new Batch();
        for (int step = 0; step <= decode; step++) {
            batch.clear();
            for (int i = 0; i < n; i++) batch.add(seq[i], step == 0 ? prompts[i] : new int[] {next[i]}, 0, step == 0 ? prompts[i].length : 1, true);
            m.forward(runtime, batch, logits);
            for (int i = 0; i < n; i++) {
                System.arraycopy(logits, i * v, out[i], step * v, v);
                next[i] = argmax(Arrays.copyOfRange(logits, i * v, i * v + v));
            }
        }
        pool.close();
        return Arrays.asList(out);
    }

    /**
     * A step over several sequences computes every row as a single-vector product (batch invariance), and an expert's
     * rows from four sequences are enough for the batch tiles: the workers must be told, or their bits differ. Each
     * sequence's logits in a batch on the workers equal its logits alone on this node, bit for bit; and continuous
     * batching ({@link BatchScheduler}, what {@code jmoe serve --workers} runs) generates what each prompt generates alone.
     */
    @Test
    void batchesOverSeveralSequencesOnWorkersGiveEachSequenceItsResidentResult() throws Exception {
        int[][] prompts = new int[4][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = new int[7 + i];
            for (int j = 0; j < prompts[i].length; j++) prompts[i][j] = 1 + (i * 53 + j * 37) % 250;
        }
        ExpertRuntimeConfig distributed = cluster(workers, null, null, 10).predictor("none").build();
        try (GgufFile f = GgufFile.open(model)) {
            Model m = Model.load(f).withPackedWeights();
            List<float[]> together;
            try (RemoteExperts remote = RemoteExperts.connect(distributed.cluster(), m, null)) {
                together = steps(m, prompts, 3, remote);
                assertTrue(remote.stats().snapshot().computeCalls() > 0);
            }
            for (int i = 0; i < prompts.length; i++) {
                float[] alone = steps(m, new int[][] {prompts[i]}, 3, null).getFirst();
                float[] got = together.get(i);
                for (int j = 0; j < alone.length; j++) {
                    if (Float.floatToIntBits(alone[j]) != Float.floatToIntBits(got[j])) {
                        throw new AssertionError("sequence " + i + " logit " + j + ": " + alone[j] + " alone resident vs " + got[j] + " in a batch on workers");
                    }
                }
            }
        }
        GenerationRequest greedy = GenerationRequest.builder().maxTokens(6).temperature(0).ignoreEos(true).build();
        List<int[]> alone = new ArrayList<>();
        try (Engine engine = Engine.open(EngineConfig.builder(model).threads(1).contextSize(64).warmup(false).experts(ExpertRuntimeConfig.RESIDENT).build());
             BatchScheduler s = engine.newScheduler(new BatchConfig(4, 64, 0, 8, 64))) {
            for (int[] p : prompts) alone.add(s.submit(p, greedy, null).await().tokens());
        }
        try (Engine engine = Engine.open(EngineConfig.builder(model).threads(1).contextSize(64).warmup(false).experts(distributed).build());
             BatchScheduler s = engine.newScheduler(new BatchConfig(4, 64, 0, 8, 64))) {
            List<Generation> together = new ArrayList<>();
            for (int[] p : prompts) together.add(s.submit(p, greedy, null));
            for (int i = 0; i < prompts.length; i++) {
                assertArrayEquals(alone.get(i), together.get(i).await(120, java.util.concurrent.TimeUnit.SECONDS).tokens(), "prompt " + i);
            }
        }
    }

    /**
     * A prompt step sends an expert's rows in mini-batches where the parts' products keep the whole product's bits
     * (Q4_0 packed, float activations: parts of at least the 4-vector panel threshold): with a 48-token prompt many
     * experts get 8 or more rows and travel in parts of 4, and the logits are still the resident run's, bit for bit.
     */
    @Test
    void promptMiniBatchesKeepTheResidentBits() throws Exception {
        int[] prompt = new int[48];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 1 + (i * 29 + 7) % 250;
        Reference resident = greedy(ExpertRuntimeConfig.RESIDENT, null, prompt);
        ExpertRuntimeConfig.Builder b = cluster(workers, null, 1, 10).predictor("none");
        Reference parts = greedy(b.cluster(b.build().cluster().withMiniBatch(4)).build(), null, prompt);
        assertSame(resident, parts);
        assertTrue(parts.cluster().miniBatched() > 0, "some expert's rows went in parts");
        Reference whole = greedy(b.cluster(b.build().cluster().withMiniBatch(0)).build(), null, prompt);
        assertSame(resident, whole);
        assertEquals(0, whole.cluster().miniBatched());
        assertTrue(parts.cluster().computeCalls() > whole.cluster().computeCalls(), "mini-batches are more messages");
    }

    /**
     * {@code --shadow-to-workers}: the shadow node sends its load commands straight to the workers; this node sends none
     * and follows the plan the shadow's predictions imply. Exact, and the loads arrive (calls find their expert ready).
     */
    @Test
    void shadowLoadCommandsStraightToTheWorkersStayExact() throws Exception {
        Nodes.Node shadow = nodes.shadow(model, "--shadow", "q8_0");
        try {
            ExpertRuntimeConfig.Builder b = cluster(workers, shadow.address(), null, 10);
            // first through this node (the shadow node's JIT warms up meanwhile), then straight from the shadow node
            Reference forwarded = greedy(b.build(), null);
            assertSame(reference, forwarded);
            // a pause after each token lets the shadow node (another JVM, maybe still compiling) send its plan for the next
            // token before this node computes it: without it, on a loaded 2-core CI machine every plan came late and no
            // decode call could follow one (decodePredicted=0, three runs in a day), which is timing, not routing
            IntConsumer letTheShadowCatchUp = step -> {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            };
            Reference got = greedy(b.cluster(b.build().cluster().withShadowToWorkers(true)).build(), letTheShadowCatchUp, prompt(), true);
            assertSame(reference, got);
            assertEquals(0, got.cluster().prefetchMessages(), "this node sent no load commands");
            assertTrue(got.cluster().decodePredicted() > 0, "decode calls went to the workers the shadow told to load: " + got.cluster());
            assertTrue(got.cluster().readyOnArrival() > 0, "the shadow's loads reached the workers: " + got.cluster());
        } finally {
            shadow.kill();
        }
    }
}
