package dev.jmoe.experts.trace;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Routing traces recorded elsewhere: text and JSON Lines, ids only or with the selected experts' weights (docs/trace-format.md). */
class ForeignTraceTest {
    @TempDir Path dir;

    private RoutingTraceFile.Loaded read(String name, String body) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, body);
        return RoutingTraceFile.read(f);
    }

    @Test
    void textIdsOnlyWithAPromptBatchAndDecodeSteps() throws Exception {
        var l = read("t.txt", """
                # n_layer=2 n_expert=8 k=2   (recorded by a llama.cpp eval callback)
                0 0 3 5
                0 1 5 1
                1 0 2 7
                1 1 7 0
                0 2 4 3
                1 2 6 2
                """);
        RoutingTrace t = l.trace();
        assertEquals("text", l.format());
        assertEquals(RoutingTrace.Detail.IDS, t.detail());
        assertEquals(2, t.nLayer());
        assertEquals(8, t.nExpert());
        assertEquals(2, t.k());
        assertEquals(4, t.steps().size(), "a prompt batch of 2 tokens per layer, then one decode step per layer");
        assertEquals(2, t.steps().get(0).n());
        assertArrayEquals(new int[]{3, 5, 5, 1}, t.steps().get(0).selected());
        assertEquals(1, t.steps().get(3).n());
        assertNull(t.steps().get(3).probs());
        assertArrayEquals(new int[]{0, 0, 2, 2}, l.positions());
        assertTrue(l.notes().isEmpty(), l.notes().toString());
    }

    @Test
    void textWithWeightsInfersTheShapeAndSaysSo() throws Exception {
        var l = read("w.txt", "0 5 3:0.6 1:0.4\n1 5 2:0.7 0:0.3\n0 6 1:0.5 3:0.5\n");
        RoutingTrace t = l.trace();
        assertEquals(RoutingTrace.Detail.WEIGHTS, t.detail());
        assertEquals(4, t.nExpert(), "largest id seen + 1");
        assertEquals(2, t.nLayer());
        assertTrue(l.notes().stream().anyMatch(n -> n.contains("n_expert 4 inferred")), l.notes().toString());
        float[] scores = t.steps().get(0).scores(0, 4);
        assertArrayEquals(new float[]{0f, 0.4f, 0f, 0.6f}, scores);
    }

    @Test
    void jsonLinesWithHeaderBatchesAndWeights() throws Exception {
        var l = read("j.jsonl", """
                {"n_layer": 3, "n_expert": 16, "k": 2}
                {"layer": 0, "pos": 0, "n": 2, "experts": [1, 2, 3, 4], "weights": [0.6, 0.4, 0.5, 0.5]}
                {"layer": 1, "token": 2, "experts": [9, 15], "weights": [0.9, 0.1]}
                {"layer": 2, "experts": [0, 1], "weights": [0.5, 0.5]}
                """);
        RoutingTrace t = l.trace();
        assertEquals("jsonl", l.format());
        assertEquals(16, t.nExpert());
        assertEquals(3, t.steps().size());
        assertEquals(2, t.steps().get(0).n());
        assertEquals(RoutingTrace.Detail.WEIGHTS, t.detail());
        assertEquals(2, l.positions()[1]);
        assertEquals(-1, l.positions()[2]);
    }

    @Test
    void aJmoeTraceWithoutProbabilitiesIsIdsOnly() throws Exception {
        var l = read("n.jsonl", """
                {"format":"jmoe-routing-trace","version":1,"model":"x.gguf","n_layer":1,"n_expert":4,"k":1,"renormalize":false}
                {"layer":0,"pos":0,"n":1,"selected":[2]}
                """);
        assertEquals("jmoe", l.format());
        assertEquals(RoutingTrace.Detail.IDS, l.trace().detail());
    }

    @Test
    void badLinesAreOneClearErrorNamingFileAndLine() throws Exception {
        String[][] bad = {
                {"a.txt", "0 0 1 2\n0 1 1\n", "line 2"},          // another k than the first line
                {"b.txt", "0 0 1 x\n", "line 1"},                 // not an id
                {"c.txt", "0 0 1:0.5 2\n", "weight for every expert"},
                {"d.jsonl", "{\"layer\": 0, \"experts\": [1, -3]}\n", "line 1"},
                {"e.jsonl", "{\"n_layer\": 2, \"n_expert\": 4}\n{\"layer\": 0, \"experts\": [7]}\n", "outside the header's n_expert"},
                {"f.jsonl", "{\"layer\": 0, \"experts\": [1], \"weights\": [0.5, 0.5]}\n", "one value per expert id"},
                {"g.txt", "# n_expert=99999999\n0 0 1\n", "line 1"},
                {"h.jsonl", "{\"layer\": 0, \"experts\": [1]\n", "not JSON"},
                {"i.txt", "\n# nothing\n", "empty"},
        };
        for (String[] b : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> read(b[0], b[1]), b[0]);
            assertTrue(e.getMessage().contains(b[0]) && e.getMessage().contains(b[2]), b[0] + ": " + e.getMessage());
        }
    }
}
