package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.testutil.Reference;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI end to end: real commands on real files, and clear errors on bad input. */
class CliTest {
    @TempDir Path dir;

    record Run(int code, String out, String err) {}

    static Run jmoe(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void makeModelThenInspectShowsExpertAndNonExpertBytes() {
        Path model = dir.resolve("m.gguf");
        Run made = jmoe("make-model", "--preset", "tiny-qwen2moe", "--type", "Q8_0", "--layers", "2", "-o", model.toString());
        assertEquals(0, made.code(), made.err());
        Run r = jmoe("inspect", model.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("architecture: qwen2moe"), r.out());
        assertTrue(r.out().contains("16 per layer, 4 active per token"), r.out());
        assertTrue(r.out().contains("shared expert"), r.out());
        assertTrue(r.out().contains("blk.1.ffn_down_exps.weight"), r.out());
        assertTrue(r.out().matches("(?s).*expert bytes: [0-9.]+ MiB \\([0-9.]+%\\)\\s+non-expert bytes.*"), r.out());
    }

    @Test
    void makeModelRefusesToOverwriteWithoutForce() throws Exception {
        Path model = dir.resolve("keep.gguf");
        Files.writeString(model, "precious");
        Run r = jmoe("make-model", "--layers", "1", "-o", model.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--force"), r.err());
        assertEquals("precious", Files.readString(model));
    }

    /** -t 0 means every available core for the model commands, as for the engine and speed; below 0 is refused, naming 0. */
    @Test
    void zeroThreadsMeansEveryCoreAndNegativeCountsAreRefused() throws Exception {
        String model = Reference.model("tiny_mixtral_q8_0").toString();
        String cores = String.valueOf(Runtime.getRuntime().availableProcessors());
        Run zero = jmoe("logits", "-m", model, "--tokens", "1,2,3", "-t", "0", "-q");
        Run every = jmoe("logits", "-m", model, "--tokens", "1,2,3", "-t", cores, "-q");
        assertEquals(0, zero.code(), zero.err());
        assertEquals(every.out(), zero.out());
        assertTrue(zero.out().lines().anyMatch(l -> l.startsWith("2 3 ")), zero.out());
        Run negative = jmoe("generate", "-m", model, "-p", "x", "-n", "1", "-t", "-1");
        assertNotEquals(0, negative.code());
        assertTrue(negative.err().contains("-t/--threads must be at least 1 (or 0: every available core), got -1"), negative.err());
    }

    @Test
    void logitsCommandPrintsReferenceFormatThatRoundTripsExactly() throws Exception {
        Path model = Reference.model("tiny_mixtral_q8_0");
        int[] tokens = Reference.tokens("tiny_mixtral_q8_0");
        float[][] expected = Reference.logitsAll("tiny_mixtral_q8_0_deq_f32");
        String ids = java.util.Arrays.stream(tokens).limit(5).mapToObj(String::valueOf).reduce((a, b) -> a + "," + b).orElseThrow();
        Run r = jmoe("logits", "-m", model.toString(), "--tokens", ids, "--all", "-t", "2", "-q");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().lines().filter(l -> !l.startsWith("#")).toArray(String[]::new);
        assertEquals(5, lines.length);
        for (int p = 0; p < 5; p++) {
            String[] f = lines[p].split(" ");
            assertEquals(String.valueOf(p), f[0]);
            assertEquals(String.valueOf(tokens[p]), f[1]);
            assertEquals(2 + 512, f.length);
            for (int i = 0; i < 512; i++) {
                assertEquals(expected[p][i], Float.parseFloat(f[2 + i]), 1e-3f, "pos " + p + " logit " + i);
            }
        }
    }

    @Test
    void badModelFileGivesOneLineErrorNotAStackTrace() throws Exception {
        Path bad = dir.resolve("bad.gguf");
        Files.write(bad, new byte[]{'G', 'G', 'U', 'X', 3, 0, 0, 0});
        Run r = jmoe("logits", "-m", bad.toString(), "--tokens", "1,2");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("jmoe: error: "), r.err());
        assertTrue(r.err().contains("magic"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void missingModelFileIsNamed() {
        Run r = jmoe("logits", "-m", dir.resolve("nope.gguf").toString(), "--tokens", "1");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("nope.gguf"), r.err());
    }

    @Test
    void tokenOutsideVocabularyIsReported() {
        Run r = jmoe("logits", "-m", Reference.model("tiny_mixtral_q8_0").toString(), "--tokens", "1,999999", "-q");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("999999") && r.err().contains("vocabulary"), r.err());
    }

    @Test
    void unsupportedArchitectureListsWhatJmoeRuns() throws Exception {
        Path src = Reference.model("tiny_mixtral_q8_0");
        Path renamed = dir.resolve("gpt.gguf");
        try (var f = dev.jmoe.gguf.GgufFile.open(src)) {
            var w = dev.jmoe.gguf.GgufWriter.copyOf(f);
            w.putString("general.architecture", "gptneox");
            w.write(renamed);
        }
        Run r = jmoe("logits", "-m", renamed.toString(), "--tokens", "1");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("unsupported architecture 'gptneox'") && r.err().contains("qwen2moe"), r.err());
    }

    @Test
    void missingTensorsAreAllListed() throws Exception {
        Path src = Reference.model("tiny_mixtral_q8_0");
        Path cut = dir.resolve("cut.gguf");
        try (var f = dev.jmoe.gguf.GgufFile.open(src)) {
            var w = new dev.jmoe.gguf.GgufWriter();
            f.metadata().forEach(w::put);
            for (var t : f.tensors()) {
                if (t.name().equals("blk.1.ffn_up_exps.weight") || t.name().equals("blk.3.attn_k.weight")) continue;
                w.addTensor(t.name(), t.type(), t.dims(), f.tensorData(t));
            }
            w.write(cut);
        }
        Run r = jmoe("inspect", cut.toString(), "--no-tensors");
        assertEquals(1, r.code(), "a file jmoe cannot run is an error (issue #24): " + r.err());
        assertTrue(r.err().startsWith("jmoe: error: jmoe cannot run"), r.err());
        assertTrue(r.out().contains("missing tensor blk.1.ffn_up_exps.weight"), r.out());
        assertTrue(r.out().contains("missing tensor blk.3.attn_k.weight"), r.out());
    }

    @Test
    void perplexityCommandWritesJson() throws Exception {
        Path json = dir.resolve("ppl.json");
        Path text = dir.resolve("t.txt");
        Files.writeString(text, Files.readString(Reference.dir().resolve("sample.txt")).substring(0, 6000));
        Run r = jmoe("perplexity", Reference.model("tiny_qwen3moe_q8_0").toString(), "-f", text.toString(), "-c", "128", "-q", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        var node = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile());
        assertTrue(node.get("ppl").asDouble() > 1);
        assertTrue(node.get("chunks").asInt() >= 1);
        assertTrue(r.out().contains("Final estimate: PPL = "), r.out());
    }

    @Test
    void greedyGenerateMatchesReferenceContinuationAndWritesStatsJson() throws Exception {
        String name = "tiny_mixtral_q8_0";
        Path json = dir.resolve("stats.json");
        Run r = jmoe("generate", "-m", Reference.model(name).toString(), "-p", Reference.prompt(), "-n", "16", "--temp", "0",
                "--no-display-prompt", "--ignore-eos", "-q", "--stats-json", json.toString());
        assertEquals(0, r.code(), r.err());
        // the streamed text is the detokenized greedy reference continuation
        try (var f = dev.jmoe.gguf.GgufFile.open(Reference.model(name))) {
            var tok = dev.jmoe.generate.Tokenizer.fromGguf(f);
            String expected = tok.decode(Reference.greedy(name + "_deq_f32"));
            assertEquals(expected, r.out().stripTrailing().isEmpty() ? "" : r.out().substring(0, r.out().length() - 1));
        }
        var node = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json.toFile());
        assertEquals(Reference.tokens(name).length, node.get("prompt_tokens").asInt());
        assertEquals(15, node.get("decode_tokens").asInt());
        assertEquals(16, node.get("generated_tokens").asInt());
        assertTrue(node.get("decode_tokens_per_s").asDouble() > 0);
        assertTrue(node.get("prompt_tokens_per_s").asDouble() > 0);
    }

    /** Packed Q4_0 (the default) and the file's layout both continue the prompt as the exact reference does. */
    @Test
    void packedAndFileLayoutQ4_0GenerateTheExactGreedyContinuation() throws Exception {
        String name = "tiny_mixtral_q4_0";
        String model = Reference.model(name).toString();
        String expected;
        try (var f = dev.jmoe.gguf.GgufFile.open(Reference.model(name))) {
            expected = dev.jmoe.generate.Tokenizer.fromGguf(f).decode(Reference.greedy(name + "_deq_f32"));
        }
        for (String layout : new String[] {"--no-pack", "--threads=2"}) {
            Run r = jmoe("generate", "-m", model, "-p", Reference.prompt(), "-n", "16", "--temp", "0", "--no-display-prompt", "--ignore-eos",
                    "-q", layout);
            assertEquals(0, r.code(), r.err());
            assertEquals(expected, r.out().substring(0, r.out().length() - 1), layout);
        }
        Run int8 = jmoe("generate", "-m", model, "-p", Reference.prompt(), "-n", "16", "--temp", "0", "--no-display-prompt", "--ignore-eos",
                "-q", "--int8-activations");
        assertEquals(0, int8.code(), int8.err());
        assertFalse(dev.jmoe.tensor.Kernels.activationQuantization(), "--int8-activations must not outlive its command");
    }

    @Test
    void sameSeedSameTextDifferentSeedDifferentText() {
        String m = Reference.model("tiny_qwen3moe_q8_0").toString();
        Run a = jmoe("generate", "-m", m, "-p", "Once upon", "-n", "24", "--seed", "7", "--temp", "1.5", "--top-k", "0", "--top-p", "1", "--min-p", "0", "-q");
        Run b = jmoe("generate", "-m", m, "-p", "Once upon", "-n", "24", "--seed", "7", "--temp", "1.5", "--top-k", "0", "--top-p", "1", "--min-p", "0", "-q");
        Run c = jmoe("generate", "-m", m, "-p", "Once upon", "-n", "24", "--seed", "8", "--temp", "1.5", "--top-k", "0", "--top-p", "1", "--min-p", "0", "-q");
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out());
        assertFalse(a.out().equals(c.out()), "different seeds gave identical 24-token samples");
        assertTrue(a.out().startsWith("Once upon"));
    }

    @Test
    void promptLongerThanContextIsRefusedClearly() {
        Run r = jmoe("generate", "-m", Reference.model("tiny_qwen3moe_q8_0").toString(), "-p", "word ".repeat(100), "-c", "16", "-q");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--ctx-size 16"), r.err());
    }

    @Test
    void badSamplingValueIsNamed() {
        Run r = jmoe("generate", "-m", Reference.model("tiny_qwen3moe_q8_0").toString(), "-p", "x", "--top-p", "1.5", "-q");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--top-p must be in [0, 1]"), r.err()); // the flag, not the Java field (issue #24)
    }
}
