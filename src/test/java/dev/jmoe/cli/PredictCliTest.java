package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** predict-eval and the prediction flags of generate, end to end on a small random model. */
class PredictCliTest {
    @TempDir static Path dir;
    static Path model, text;

    record Run(int code, String out, String err) {}

    static Run jmoe(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    @BeforeAll
    static void makeModel() throws Exception {
        model = dir.resolve("m.gguf");
        Run made = jmoe("make-model", "--preset", "tiny-qwen2moe", "--type", "F16", "--layers", "3", "-o", model.toString());
        assertEquals(0, made.code(), made.err());
        text = dir.resolve("t.txt");
        Files.writeString(text, "The router scores every expert, and the best ones are chosen. Loading starts a few layers early. ".repeat(6));
    }

    @Test
    void predictEvalWritesEveryPredictorLookaheadAndLayer() throws Exception {
        Path json = dir.resolve("p.json");
        Run r = jmoe("predict-eval", "-m", model.toString(), "-f", text.toString(), "--max-tokens", "40", "--shadow", "f16,q4_0",
                "--lookahead", "3", "-q", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        // by default every shadow is evaluated at width k and with the runs' adaptive-width margin
        String[] names = {"shadow-f16", "shadow-f16+m0.02", "shadow-q4_0", "shadow-q4_0+m0.02", "gate", "history"};
        for (String p : names) assertTrue(r.out().contains(p), r.out());
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals("teacher", root.get("mode").asText());
        assertEquals(40, root.get("tokens").asInt());
        assertEquals("[0.0,0.02]", root.get("shadow_margins").toString());
        JsonNode preds = root.get("predictors");
        assertEquals(names.length, preds.size());
        for (int i = 0; i < names.length; i++) assertEquals(names[i], preds.get(i).get("predictor").asText());
        // runners-up are added to the same k experts, so the wider shadow never recalls less
        for (int d = 0; d < 3; d++) {
            double atK = preds.get(2).get("lookaheads").get(d).get("recall").asDouble();
            double wide = preds.get(3).get("lookaheads").get(d).get("recall").asDouble();
            assertTrue(wide >= atK, "distance " + (d + 1) + ": " + wide + " < " + atK);
        }
        for (JsonNode p : preds) {
            assertEquals(3, p.get("lookaheads").size());
            for (JsonNode d : p.get("lookaheads")) assertEquals(3, d.get("layers").size());
        }
        // a shadow with the model's own weights predicts every layer at every distance
        JsonNode same = preds.get(0);
        assertEquals("shadow-f16", same.get("predictor").asText());
        for (JsonNode d : same.get("lookaheads")) {
            assertEquals(1.0, d.get("recall").asDouble(), d.toString());
            assertEquals(1.0, d.get("set_match").asDouble(), d.toString());
        }
        assertTrue(same.get("shadow").get("kv_aligned_positions").asInt() > 30);
    }

    @Test
    void greedyModeGeneratesAndScores() throws Exception {
        Path json = dir.resolve("g.json");
        Run r = jmoe("predict-eval", "-m", model.toString(), "--mode", "greedy", "-f", text.toString(), "--prompts", "2", "--prompt-tokens", "8",
                "-n", "10", "--predictor", "shadow,gate", "--shadow", "f16", "-q", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(20, root.get("tokens").asInt());
        JsonNode shadow = root.get("predictors").get(0);
        assertEquals(1.0, shadow.get("lookaheads").get(0).get("recall").asDouble());
        assertEquals(shadow.get("shadow").get("speculated_tokens").asInt(), shadow.get("shadow").get("speculated_tokens_right").asInt(),
                "same weights: the shadow's greedy guesses are the generated tokens");
    }

    @Test
    void odmoeAndPredictorPrefetchGenerateTheResidentText() {
        String[] base = {"generate", "-m", model.toString(), "-p", "Loading starts a few layers early", "-n", "12", "--temp", "0", "-q",
                "--no-display-prompt"};
        Run resident = jmoe(base);
        assertEquals(0, resident.code(), resident.err());
        String[][] variants = {
                {"--policy", "odmoe", "--shadow", "q8_0", "--link", "500MB/s,20us", "--store", "host"},
                {"--policy", "odmoe", "--predictor", "history", "--lookahead", "3", "--expert-memory", "1/8"},
                {"--policy", "exact-smoe", "--expert-memory", "1/3", "--predictor", "shadow", "--lookahead", "2", "--stats"},
                {"--predictor", "gate"}};
        for (String[] v : variants) {
            String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(v)).toArray(String[]::new);
            Run r = jmoe(args);
            assertEquals(0, r.code(), String.join(" ", v) + ": " + r.err());
            assertEquals(resident.out(), r.out(), String.join(" ", v));
        }
    }

    @Test
    void predictEvalRecordsTheShadowsPredictionsTwoTokensAheadAndReplayIsDrivenByThem() throws Exception {
        Path trace = dir.resolve("recorded.trace.jsonl"), json = dir.resolve("rec.json");
        Run r = jmoe("predict-eval", "-m", model.toString(), "-f", text.toString(), "--max-tokens", "48", "--predictor", "shadow", "--shadow", "f16",
                "--shadow-margin", "0", "--lookahead", "6", "-q", "--trace", trace.toString(), "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        // two tokens' worth of layers (3 layers): a same-weights shadow speculating the text's tokens names every expert at every distance
        JsonNode las = new ObjectMapper().readTree(json.toFile()).get("predictors").get(0).get("lookaheads");
        assertEquals(6, las.size());
        for (JsonNode d : las) assertEquals(1.0, d.get("recall").asDouble(), d.toString());
        Run rep = jmoe("replay", "--trace", trace.toString(), "--expert-memory", "1/4", "--eviction", "lru,predictive,belady", "--lookahead", "3,6",
                "--recall", "1");
        assertEquals(0, rep.code(), rep.err());
        assertTrue(rep.out().contains("recorded predictions: shadow-f16"), rep.out());
        // exact predictions: the recorded rows equal the r = 1 predictor model's at the same lookahead
        for (String h : new String[] {"3", "6"}) {
            String model1 = row(rep.out(), "predictive H=" + h + " r=1"), recorded = row(rep.out(), "predictive H=" + h + " recorded");
            assertEquals(model1.substring(model1.indexOf(" r=1") + 4).trim(), recorded.substring(recorded.indexOf(" recorded") + 9).trim(), rep.out());
        }
        Run deeper = jmoe("replay", "--trace", trace.toString(), "--expert-memory", "1/4", "--eviction", "predictive", "--lookahead", "7", "--recall", "1");
        assertEquals(0, deeper.code(), deeper.err());
        assertFalse(deeper.out().contains("H=7 recorded"), "beyond the recorded depth only the predictor model runs: " + deeper.out());
        Run two = jmoe("predict-eval", "-m", model.toString(), "-f", text.toString(), "--max-tokens", "8", "--predictor", "shadow,gate", "-q",
                "--trace", dir.resolve("x.jsonl").toString());
        assertEquals(1, two.code());
        assertTrue(two.err().contains("jmoe: error: --trace records one predictor"), two.err());
    }

    private static String row(String out, String label) {
        return out.lines().filter(l -> l.contains(label)).findFirst().orElseThrow(() -> new AssertionError(label + " not in " + out));
    }

    @Test
    void badPredictionFlagsGiveClearErrors() {
        String[][] cases = {
                {"--predictor", "oracle"}, {"--predictor", "gate", "--lookahead", "9"}, {"--predictor", "shadow", "--align-period", "1;2"},
                {"--predictor", "shadow", "--shadow-model", dir.resolve("missing.gguf").toString()}, {"--predictor", "shadow", "--shadow", "q3_k"}};
        String[] wants = {"--predictor", "--lookahead", "--align-period", "--shadow-model", "--shadow"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("generate", "-m", model.toString(), "-p", "x", "-n", "2", "-q"),
                    java.util.Arrays.stream(cases[i])).toArray(String[]::new);
            Run r = jmoe(args);
            assertEquals(1, r.code(), String.join(" ", cases[i]));
            // a warning about flags without effect may come first; the error is one line naming the flag
            String want = wants[i];
            assertTrue(r.err().lines().anyMatch(l -> l.startsWith("jmoe: error: ") && l.contains(want)), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
        }
        Run r = jmoe("predict-eval", "-m", model.toString(), "--mode", "teacher", "-q");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("-f TEXT"), r.err());
    }
}
