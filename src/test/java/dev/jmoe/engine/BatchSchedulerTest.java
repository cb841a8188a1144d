package dev.jmoe.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.experts.OffloadStats;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Continuous batching over one engine: what each generation produces, slots, the shared KV memory, the queue. */
class BatchSchedulerTest {
    static final String[] PROMPTS = {
            "The history of the town", "It was a cold morning and", "In the first place, the committee",
            "She said that", "The results of the experiment show that the new method is", "Once",
            "According to the report, the number of students who", "He walked into the room and saw"};

    static int[][] prompts(Engine e) {
        int[][] p = new int[PROMPTS.length][];
        for (int i = 0; i < p.length; i++) p[i] = e.tokenize(PROMPTS[i]);
        return p;
    }

    static GenerationRequest greedy(int n) {
        return GenerationRequest.builder().maxTokens(n).temperature(0).ignoreEos(true).build();
    }

    /** Every prompt alone (one submission at a time), then all together: the same tokens and text, exactly. */
    static void sameAloneAndTogether(Engine engine, BatchConfig cfg) throws Exception {
        int[][] prompts = prompts(engine);
        List<GenerationResult> alone = new ArrayList<>();
        try (BatchScheduler s = engine.newScheduler(cfg)) {
            for (int i = 0; i < prompts.length; i++) alone.add(s.submit(prompts[i], greedy(12 + i), null).await());
        }
        try (BatchScheduler s = engine.newScheduler(cfg)) {
            List<Generation> together = new ArrayList<>();
            List<StringBuilder> streamed = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                StringBuilder sb = new StringBuilder();
                streamed.add(sb);
                together.add(s.submit(prompts[i], greedy(12 + i), (t, text) -> sb.append(text)));
            }
            for (int i = 0; i < prompts.length; i++) {
                GenerationResult r = together.get(i).await(120, TimeUnit.SECONDS);
                assertArrayEquals(alone.get(i).tokens(), r.tokens(), "prompt " + i + ": alone vs " + prompts.length + " together");
                assertEquals(alone.get(i).text(), r.text());
                assertEquals(r.text(), streamed.get(i).toString(), "the streamed pieces are the text");
                assertEquals(12 + i, r.tokens().length);
                assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
            }
            assertTrue(s.metrics().stepRows() > s.metrics().steps(), "steps held several rows");
            assertEquals(0, s.busySlots());
            assertEquals(0, s.kvUsed());
        }
    }

    @Test
    void generationsTogetherProduceExactlyWhatEachProducesAlone() throws Exception {
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).build())) {
            // 4 slots for 8 prompts: the later ones join the running batch as slots come free; 5-token prompt chunks
            sameAloneAndTogether(engine, new BatchConfig(4, 128, 0, 16, 5));
        }
    }

    @Test
    void withAnExpertBudgetAndInt8ActivationsToo() throws Exception {
        ExpertRuntimeConfig budget = ExpertRuntimeConfig.builder().expertMemory("1/3").policy("exact-smoe").build();
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).int8Activations(true).experts(budget).build())) {
            sameAloneAndTogether(engine, new BatchConfig(8, 128, 0, 16, 64));
        }
    }

    /** The expert runtime sees the step's whole expert set: batched decoding moves fewer expert bytes per token. */
    @Test
    void batchingMovesFewerExpertBytesPerTokenThanOneAtATime() throws Exception {
        ExpertRuntimeConfig budget = ExpertRuntimeConfig.builder().expertMemory("1/4").policy("lru-ondemand").build();
        double[] perToken = new double[2];
        for (int mode = 0; mode < 2; mode++) {
            try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).experts(budget).build());
                 BatchScheduler s = engine.newScheduler(new BatchConfig(8, 128, 0, 16, 64))) {
                int[][] prompts = prompts(engine);
                List<Generation> gs = new ArrayList<>();
                for (int[] p : prompts) {
                    Generation g = s.submit(p, greedy(24), null);
                    if (mode == 0) g.await(); // one at a time
                    gs.add(g);
                }
                for (Generation g : gs) g.await();
                OffloadStats st = s.offloadStats();
                perToken[mode] = (double) st.get(OffloadStats.DECODE, OffloadStats.Counter.BYTES_MOVED) / s.metrics().generatedTokens();
            }
        }
        assertTrue(perToken[1] < 0.85 * perToken[0], "decode bytes per token: one at a time " + perToken[0] + ", 8 together " + perToken[1]);
    }

    @Test
    void substitutionJudgesTheWholeStep() throws Exception {
        ExpertRuntimeConfig smoe = ExpertRuntimeConfig.builder().expertMemory("1/4").policy("smoe").alpha(0.5).build();
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).experts(smoe).build());
             BatchScheduler s = engine.newScheduler(new BatchConfig(8, 128, 0, 16, 64))) {
            List<Generation> gs = new ArrayList<>();
            for (int[] p : prompts(engine)) gs.add(s.submit(p, greedy(16), null));
            for (Generation g : gs) assertEquals(16, g.await().tokens().length);
            assertTrue(s.offloadStats().get(OffloadStats.DECODE, OffloadStats.Counter.SUBSTITUTIONS) > 0, "decode steps of 8 rows substituted");
        }
    }

    @Test
    void cancellingFreesTheSlotAndItsPositions() throws Exception {
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).build());
             BatchScheduler s = engine.newScheduler(new BatchConfig(1, 256, 0, 4, 64))) {
            CountDownLatch started = new CountDownLatch(3), cancelled = new CountDownLatch(1);
            // The listener runs on the scheduler's thread: holding it at the third token until the test has cancelled
            // keeps a fast machine from finishing the whole generation first (seen once in a full run).
            Generation long1 = s.submit(engine.tokenize("Once upon a time"), greedy(-1), (t, text) -> {
                started.countDown();
                if (started.getCount() == 0) {
                    try {
                        cancelled.await(60, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            Generation queued = s.submit(engine.tokenize("Later"), greedy(4), null);
            assertTrue(started.await(60, TimeUnit.SECONDS));
            assertEquals(1, s.busySlots());
            assertEquals(1, s.queued());
            long1.cancel();
            cancelled.countDown();
            GenerationResult r = long1.await(60, TimeUnit.SECONDS);
            assertEquals(FinishReason.CANCELLED, r.finishReason());
            assertEquals(4, queued.await(60, TimeUnit.SECONDS).tokens().length, "the freed slot went to the queued generation");
            // "Never" must still be queued when it is cancelled: a generation holding the only slot keeps it there (left
            // to itself, the idle scheduler could finish all four tokens before cancel() on a loaded machine; seen in CI)
            CountDownLatch holding = new CountDownLatch(1), release = new CountDownLatch(1);
            Generation holder = s.submit(engine.tokenize("Hold"), greedy(4), (t, text) -> {
                holding.countDown();
                try {
                    release.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertTrue(holding.await(60, TimeUnit.SECONDS));
            Generation never = s.submit(engine.tokenize("Never"), greedy(4), null);
            never.cancel();
            release.countDown();
            assertEquals(FinishReason.CANCELLED, never.await(60, TimeUnit.SECONDS).finishReason());
            assertEquals(0, never.await().tokens().length);
            holder.await(60, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (s.busySlots() != 0 && System.nanoTime() < deadline) Thread.sleep(10);
            assertEquals(0, s.busySlots());
            assertEquals(0, s.kvUsed());
            assertTrue(s.metrics().finished(FinishReason.CANCELLED) >= 2);
        }
    }

    @Test
    void aFullQueueRefusesAndBadPromptsFailAtOnce() throws Exception {
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).build());
             BatchScheduler s = engine.newScheduler(new BatchConfig(1, 64, 0, 1, 64))) {
            List<Generation> gs = new ArrayList<>();
            SchedulerBusyException busy = null;
            for (int i = 0; i < 6 && busy == null; i++) {
                try {
                    gs.add(s.submit(engine.tokenize("Hello"), greedy(40), null));
                } catch (SchedulerBusyException e) {
                    busy = e;
                }
            }
            assertTrue(busy != null && gs.size() >= 2 && gs.size() <= 3, "one running, one queued, then refused: " + gs.size());
            assertEquals(1, s.metrics().refused());
            for (Generation g : gs) g.cancel();
            IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[65], greedy(1), null));
            assertTrue(tooLong.getMessage().contains("65 tokens") && tooLong.getMessage().contains("64"), tooLong.getMessage());
            assertThrows(IllegalArgumentException.class, () -> s.submit(new int[0], greedy(1), null));
            assertThrows(IllegalArgumentException.class, () -> s.submit(new int[] {1, 999_999}, greedy(1), null));
        }
    }

    /** A KV memory smaller than slots × context: generations wait for positions, the memory compacts, results stay exact. */
    @Test
    void aSmallSharedKvMemoryStillServesEveryone() throws Exception {
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).build())) {
            sameAloneAndTogether(engine, new BatchConfig(6, 48, 70, 16, 8));
        }
    }

    /**
     * Predictors over steps of several sequences (each decode row predicted at its own position, the step's expert set
     * prefetched) and OD-MoE's just-in-time working set: both exact, so every generation is the resident run's.
     */
    @Test
    void predictorsAndJustInTimeLoadingStayExactInBatches() throws Exception {
        List<List<int[]>> outputs = new ArrayList<>();
        for (ExpertRuntimeConfig cfg : List.of(ExpertRuntimeConfig.RESIDENT,
                ExpertRuntimeConfig.builder().expertMemory("1/3").policy("exact-smoe").predictor("gate").lookahead(2).build(),
                ExpertRuntimeConfig.builder().expertMemory("1/3").policy("exact-smoe").predictor("history").build(),
                ExpertRuntimeConfig.builder().policy("odmoe").predictor("gate").build())) {
            try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).experts(cfg).build());
                 BatchScheduler s = engine.newScheduler(new BatchConfig(4, 128, 0, 16, 16))) {
                List<Generation> gs = new ArrayList<>();
                for (int[] p : prompts(engine)) gs.add(s.submit(p, greedy(10), null));
                List<int[]> tokens = new ArrayList<>();
                for (Generation g : gs) tokens.add(g.await(120, TimeUnit.SECONDS).tokens());
                outputs.add(tokens);
                if (!cfg.resident()) {
                    OffloadStats st = s.offloadStats();
                    assertTrue(st.total(OffloadStats.Counter.PREFETCHES_ISSUED) > 0 || cfg.predictorName().equals("none"),
                            cfg.predictorName() + " issued prefetches for batched decode steps");
                }
            }
        }
        for (int c = 1; c < outputs.size(); c++) {
            for (int i = 0; i < outputs.get(0).size(); i++) assertArrayEquals(outputs.get(0).get(i), outputs.get(c).get(i), "config " + c + ", prompt " + i);
        }
    }

    @Test
    void theShadowPredictorIsRefusedWithAReason() throws Exception {
        ExpertRuntimeConfig odmoe = ExpertRuntimeConfig.builder().policy("odmoe").build();
        try (Engine engine = Engine.open(EngineTest.config(EngineTest.trained()).experts(odmoe).build())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> engine.newScheduler(BatchConfig.of(2, 64)));
            assertTrue(e.getMessage().contains("--predictor gate"), e.getMessage());
        }
    }
}
