package dev.jmoe.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.ExpertRuntimeConfig;
import dev.jmoe.engine.Session;
import dev.jmoe.testutil.TestModels;
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

    /** A greedy run's tokens and every step's logits. */
    record Reference(int[] tokens, List<float[]> logits) {}

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
        EngineConfig cfg = EngineConfig.builder(model).threads(1).contextSize(64).warmup(false).experts(experts).build();
        try (Engine engine = Engine.open(cfg); Session s = engine.newSession()) {
            List<float[]> logits = new ArrayList<>();
            float[] l = s.evaluate(prompt());
            int[] tokens = new int[DECODE];
            for (int i = 0; i < DECODE; i++) {
                logits.add(l.clone());
                tokens[i] = argmax(l);
                l = s.next(tokens[i]);
                if (afterStep != null) afterStep.accept(i);
            }
            logits.add(l.clone());
            return new Reference(tokens, logits);
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
        assertSame(reference, greedy(cluster(workers, null, null, 3).build(), null));
        // no prediction at all: every expert loaded on demand on its worker
        assertSame(reference, greedy(cluster(workers, null, 1, 3).predictor("none").build(), null));
    }

    @Test
    void killingAWorkerMidGenerationChangesNothing() throws Exception {
        Nodes.Node victim = nodes.worker(model);
        List<Nodes.Node> ws = new ArrayList<>(workers.subList(0, 2));
        ws.add(victim);
        long t0 = System.nanoTime();
        Reference got = greedy(cluster(ws, null, 1, 2).build(), step -> {
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
        assertTrue(System.nanoTime() - t0 < 120e9, "the run must not hang on the dead worker");
    }

    @Test
    void losingTheShadowNodeChangesNothing() throws Exception {
        Nodes.Node shadow = nodes.shadow(model, "--shadow", "q8_0");
        Reference got = greedy(cluster(workers, shadow.address(), null, 3).build(), step -> {
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
    }
}
