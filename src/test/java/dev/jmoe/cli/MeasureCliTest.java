package dev.jmoe.cli;

import static dev.jmoe.cli.CliTest.jmoe;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.eval.ContinuationTask;
import dev.jmoe.eval.MultipleChoice;
import dev.jmoe.experts.trace.RoutingTraceFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** fidelity, eval, make-eval-task, perplexity's runtime JSON, --trace and replay, end to end on a small generated model. */
class MeasureCliTest {
    @TempDir static Path dir;
    static Path model, text;

    @BeforeAll
    static void makeModel() throws Exception {
        model = dir.resolve("q.gguf");
        CliTest.Run r = jmoe("make-model", "--preset", "tiny-qwen2moe", "--type", "Q8_0", "--layers", "2", "-o", model.toString());
        assertEquals(0, r.code(), r.err());
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 60; i++) sb.append("The router scores expert ").append(i).append(" and the cache keeps what was used often. ");
        text = dir.resolve("text.txt");
        Files.writeString(text, sb.toString());
    }

    static JsonNode json(Path p) throws Exception { return new ObjectMapper().readTree(p.toFile()); }

    @Test
    void fidelityWithoutSubstitutionIsExact() throws Exception {
        Path j = dir.resolve("f0.json");
        CliTest.Run r = jmoe("fidelity", model.toString(), "-f", text.toString(), "-c", "32", "--chunks", "2", "--expert-memory", "1/3",
                "--policy", "exact-smoe", "--prompts", "2", "--prompt-tokens", "16", "-n", "8", "-q", "-t", "1", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode n = json(j);
        assertEquals(0.0, n.get("kl_mean").asDouble());
        assertEquals(1.0, n.get("top1_agreement").asDouble());
        assertEquals(0.0, n.get("ppl_delta").asDouble());
        assertEquals(2 * 15, n.get("scored_tokens").asInt()); // positions 16..30 of each chunk of 32
        assertEquals(2, n.get("greedy_all_identical").asInt());
        assertTrue(r.out().contains("top-1 agreement"), r.out());
    }

    @Test
    void fidelityWithSubstitutionDriftsAndCountsIt() throws Exception {
        Path j = dir.resolve("f1.json");
        CliTest.Run r = jmoe("fidelity", model.toString(), "-f", text.toString(), "-c", "32", "--chunks", "2", "--expert-memory", "1/4",
                "--policy", "smoe", "--alpha", "0.9", "--prompts", "0", "-q", "-t", "1", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode n = json(j);
        assertTrue(n.get("offload").get("decode").get("substitutions").asLong() > 0, n.toString());
        assertTrue(n.get("kl_mean").asDouble() > 0, n.toString());
        assertTrue(n.get("kl_p99").asDouble() >= n.get("kl_mean").asDouble() * 0.5, n.toString());
    }

    @Test
    void evalTaskIsReproducibleAndScored() throws Exception {
        Path a = dir.resolve("a.jsonl"), b = dir.resolve("b.jsonl");
        assertEquals(0, jmoe("make-eval-task", "-f", text.toString(), "-o", a.toString(), "--items", "6", "--context-words", "12", "--choice-words", "3", "--seed", "7").code());
        assertEquals(0, jmoe("make-eval-task", "-f", text.toString(), "-o", b.toString(), "--items", "6", "--context-words", "12", "--choice-words", "3", "--seed", "7").code());
        assertEquals(Files.readString(a), Files.readString(b));
        List<MultipleChoice.Item> items = MultipleChoice.read(a);
        assertEquals(6, items.size());
        String words = Files.readString(text);
        for (MultipleChoice.Item it : items) {
            assertEquals(4, it.choices().size());
            assertTrue(words.contains(it.context() + it.choices().get(it.gold())), "the gold choice continues the context in the text");
        }
        Path j = dir.resolve("e.json");
        CliTest.Run r = jmoe("eval", model.toString(), "--task", a.toString(), "-q", "-t", "1", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode n = json(j);
        assertEquals(6, n.get("items").asInt());
        assertEquals(0.25, n.get("chance").asDouble(), 1e-9);
        double acc = n.get("accuracy").asDouble();
        assertEquals(0, Math.round(acc * 6 * 1e6) % 1_000_000, "accuracy is a count of 6 items");
    }

    @Test
    void continuationTaskDependsOnTheSeed() {
        String words = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(4);
        var x = ContinuationTask.build(words, 5, 4, 2, 4, 1);
        var y = ContinuationTask.build(words, 5, 4, 2, 4, 2);
        assertTrue(!x.equals(y));
    }

    @Test
    void badTaskLinesNameFileAndLine() throws Exception {
        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, "{\"context\":\"x\",\"choices\":[\" a\",\" b\"],\"gold\":0}\n{\"context\":\"x\",\"choices\":[\" a\"],\"gold\":3}\n");
        CliTest.Run r = jmoe("eval", model.toString(), "--task", bad.toString(), "-q");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.jsonl line 2"), r.err());
    }

    @Test
    void perplexityJsonCarriesRuntimeAndPredictor() throws Exception {
        Path j = dir.resolve("p.json");
        CliTest.Run r = jmoe("perplexity", model.toString(), "-f", text.toString(), "-c", "32", "--chunks", "2", "-q", "-t", "1",
                "--expert-memory", "1/3", "--predictor", "gate", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode n = json(j);
        assertEquals(2, n.get("chunks").asInt());
        assertTrue(n.get("ppl").asDouble() > 1);
        assertEquals("gate", n.get("offload").get("predictor").asText());
        assertTrue(n.get("offload").get("prefill").get("expert_uses").asLong() > 0);
        assertEquals("gate", n.get("predictor").get("name").asText());
    }

    @Test
    void traceRecordsEveryLayerStepAndReplays() throws Exception {
        Path t = dir.resolve("g.trace.jsonl");
        CliTest.Run g = jmoe("generate", "-m", model.toString(), "-p", "The router", "-n", "5", "-q", "-t", "1", "--expert-memory", "1/3",
                "--policy", "smoe", "--alpha", "0.9", "--trace", t.toString());
        assertEquals(0, g.code(), g.err());
        RoutingTraceFile.Loaded l = RoutingTraceFile.read(t);
        assertEquals(2, l.trace().nLayer());
        // one prefill step per layer, then 4 decode steps (the 5th token is not fed back)
        assertEquals(2 * 5, l.trace().steps().size());
        assertArrayEquals(new int[]{0, 0}, java.util.Arrays.copyOf(l.positions(), 2));
        for (var s : l.trace().steps()) {
            // the router's own top-k: the highest probabilities, whatever substitution did afterwards
            float minChosen = Float.MAX_VALUE;
            for (int j = 0; j < l.trace().k(); j++) minChosen = Math.min(minChosen, s.probs()[s.selected()[j]]);
            int above = 0;
            for (int e = 0; e < l.trace().nExpert(); e++) if (s.probs()[e] > minChosen) above++;
            assertTrue(above < l.trace().k(), "selected experts are the top-k");
        }
        Path j = dir.resolve("r.json");
        CliTest.Run r = jmoe("replay", "--trace", t.toString(), "--expert-memory", "1/4,1/2", "--eviction", "lru,belady", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode n = json(j).get("replays");
        assertEquals(4, n.size());
        for (int b = 0; b < 2; b++) assertTrue(n.get(2 * b + 1).get("decode_hit_rate").asDouble() >= n.get(2 * b).get("decode_hit_rate").asDouble(), "Belady bounds LRU");
    }

    @Test
    void replayTakesATraceRecordedElsewhereWithoutItsModelAndDrivesThePredictivePolicy() throws Exception {
        // ids only, as a llama.cpp callback would write them: 2 layers x 8 experts, top-2, 60 decode tokens
        StringBuilder sb = new StringBuilder("# n_layer=2 n_expert=8 k=2\n");
        java.util.Random rnd = new java.util.Random(4);
        for (int pos = 0; pos < 60; pos++) {
            for (int l = 0; l < 2; l++) {
                int a = rnd.nextInt(8), b = (a + 1 + rnd.nextInt(7)) % 8;
                sb.append(l).append(' ').append(pos).append(' ').append(a).append(' ').append(b).append('\n');
            }
        }
        Path t = dir.resolve("foreign.txt");
        Files.writeString(t, sb.toString());
        Path j = dir.resolve("foreign.json");
        CliTest.Run r = jmoe("replay", "--trace", t.toString(), "--expert-memory", "1/4", "--eviction", "lru,score,predictive,belady", "--lookahead", "2",
                "--recall", "1,0.5", "--json", j.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("score needs the router's probabilities; the trace has expert ids only: replayed as lru"), r.out());
        assertTrue(r.out().contains("predictive H=2 r=0.5 "), r.out());
        JsonNode n = json(j);
        assertEquals("text", n.get("trace_format").asText());
        assertEquals(5, n.get("replays").size());
        assertEquals(4, n.get("replays").get(0).get("slots").asInt(), "a quarter of 16 experts, counted in experts without a model");
        double lru = n.get("replays").get(0).get("decode_hit_rate").asDouble(), belady = n.get("replays").get(4).get("decode_hit_rate").asDouble();
        double perfect = n.get("replays").get(2).get("decode_hit_rate").asDouble();
        assertTrue(belady >= perfect && perfect >= lru, "belady " + belady + " >= predictive " + perfect + " >= lru " + lru);
        // a budget in bytes needs the model
        r = jmoe("replay", "--trace", t.toString(), "--expert-memory", "1MiB");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("fraction"), r.err());
    }

    @Test
    void badTraceNamesFileAndLine() throws Exception {
        Path bad = dir.resolve("bad.trace");
        Files.writeString(bad, "{\"format\":\"jmoe-routing-trace\",\"version\":1,\"n_layer\":2,\"n_expert\":4,\"k\":2}\n{\"layer\":5,\"n\":1,\"selected\":[0,1],\"probs\":[1,0,0,0]}\n");
        CliTest.Run r = jmoe("replay", "--trace", bad.toString(), "-m", model.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.trace line 2"), r.err());
    }

    @Test
    void benchGridWritesJsonMarkdownAndPlots() throws Exception {
        Path outDir = dir.resolve("bench");
        CliTest.Run r = jmoe("bench", "-m", model.toString(), "-f", text.toString(), "--policy", "resident,lru-ondemand,smoe", "--expert-memory", "1/4,1/2",
                "--link", "unlimited", "--prompts", "1", "--prompt-tokens", "8", "-n", "4", "--warmup", "0", "--repetitions", "2", "-q", "-t", "1", "--out", outDir.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode cells = json(outDir.resolve("bench.json")).get("models").get(0).get("experiments").get(0).get("cells");
        assertEquals(1 + 2 * 2, cells.size()); // resident once, each policy at each budget
        for (JsonNode c : cells) {
            assertEquals(2, c.get("ms_per_token_runs").size());
            assertTrue(c.get("ms_per_token_min").asDouble() <= c.get("ms_per_token").asDouble());
            if (!c.get("policy").asText().equals("resident")) {
                double sum = c.get("exact_hit_rate").asDouble() + c.get("substitution_rate").asDouble() + c.get("prefetch_hit_rate").asDouble()
                        + c.get("miss_loaded_rate").asDouble() + c.get("miss_computed_rate").asDouble();
                assertEquals(1.0, sum, 1e-9, "every decode expert use has one outcome");
            }
        }
        assertEquals(4, cells.get(1).get("greedy_identical_tokens").asInt(), "lru-ondemand is exact");
        String md = Files.readString(outDir.resolve("README.md"));
        assertTrue(md.contains("jmoe bench -m"), "the report names the command that made it");
        assertTrue(md.contains("| lru-ondemand @1/4 |"), md);
        for (String png : new String[]{"q-bench-time.png", "q-bench-hits.png"}) {
            byte[] b = Files.readAllBytes(outDir.resolve(png));
            assertEquals((byte) 0x89, b[0]);
            assertEquals('P', b[1]);
            String svg = Files.readString(outDir.resolve(png.replace(".png", ".svg")));
            assertTrue(svg.contains("<svg"), "an SVG beside every PNG");
        }
        // timings: an interval per configuration and a paired ratio against the reference (the first configuration)
        JsonNode ref = cells.get(0), other = cells.get(1);
        assertTrue(ref.has("ms_per_token_ci95") && !ref.has("ratio_to_reference"));
        JsonNode ci = other.get("ms_per_token_ci95");
        assertTrue(ci.get(0).asDouble() <= other.get("ms_per_token_mean").asDouble() && other.get("ms_per_token_mean").asDouble() <= ci.get(1).asDouble());
        assertTrue(other.has("ratio_to_reference") && other.has("distinguishable_from_reference"));
        // provenance and the CSV
        JsonNode prov = json(outDir.resolve("bench.json")).get("provenance");
        for (String k : new String[]{"command", "date", "processor", "jdk", "commit"}) assertTrue(prov.hasNonNull(k), k + " in " + prov);
        List<String> csv = Files.readAllLines(outDir.resolve("bench.csv"));
        assertEquals(1 + cells.size(), csv.size(), "a header and one row per configuration");
        assertTrue(csv.get(0).startsWith("model,experiment,configuration,"), csv.get(0));
        assertTrue(md.contains(Same.MEANING.replace("same = ", "same* = ")), "same is defined in the report");
    }

    @Test
    void recallIsScoredAtWidthKAndWithTheMarginApart() throws Exception {
        Path cfg = dir.resolve("recall.json");
        Files.writeString(cfg, "{\"experiments\":[{\"name\":\"recall\",\"recall\":{\"predictors\":[\"shadow-q4_0\",\"gate\"],"
                + "\"margins\":[0,0.05],\"max_lookahead\":2,\"tokens\":24}}]}");
        Path out = dir.resolve("recall-out");
        CliTest.Run r = jmoe("bench", "--config", cfg.toString(), "-m", model.toString(), "-f", text.toString(), "-q", "-t", "1", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode ps = json(out.resolve("bench.json")).get("models").get(0).get("experiments").get(0).get("recall").get("predictors");
        assertEquals(3, ps.size(), "the shadow at both margins, gate once");
        for (JsonNode p : ps) {
            double rec = p.get("recall").get(0).asDouble(), prec = p.get("precision").get(0).asDouble();
            // at width k a predictor names exactly as many experts as a layer uses: recall and precision are one number
            if (p.get("margin").asDouble() == 0) assertEquals(rec, prec, 1e-9, p.toString());
            else assertTrue(prec <= rec + 1e-9, "with runners-up it names more than k: " + p);
        }
        assertTrue(Files.readString(out.resolve("README.md")).contains("| shadow-q4_0 +margin 0.05 | k + runners-up within 0.05 |"));
    }

    @Test
    void intervalsAndPairedRatios() {
        double[] g = Intervals.geometric(new double[]{10, 10, 10});
        assertEquals(10, g[0], 1e-9);
        assertEquals(10, g[1], 1e-9);
        double[] a = {10, 20, 30, 40}, b = {5, 10, 15, 20};
        double[] r = Intervals.pairedRatio(a, b);
        assertEquals(2, r[0], 1e-9, "every round twice as slow: ratio 2 with no spread");
        assertTrue(Intervals.distinguishable(r));
        double[] noisy = Intervals.pairedRatio(new double[]{10, 12, 9, 11}, new double[]{11, 10, 10, 10});
        assertTrue(noisy[1] < 1 && noisy[2] > 1 && !Intervals.distinguishable(noisy), java.util.Arrays.toString(noisy));
    }

    @Test
    void benchConfigErrorsNameTheKey() throws Exception {
        Path cfg = dir.resolve("cfg.json");
        Files.writeString(cfg, "{\"experiments\":[{\"name\":\"x\",\"policies\":[\"smoe\",{\"policy\":\"nope\"}]}]}");
        CliTest.Run r = jmoe("bench", "--config", cfg.toString(), "-m", model.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("experiments[0] policies[1]") && r.err().contains("unknown policy 'nope'"), r.err());
        Files.writeString(cfg, "{\"experiments\":[{\"name\":\"x\",\"policies\":[\"smoe\"],\"budget\":[\"1/3\"]}]}");
        r = jmoe("bench", "--config", cfg.toString(), "-m", model.toString());
        assertTrue(r.err().contains("unknown key \"budget\""), r.err());
    }
}
