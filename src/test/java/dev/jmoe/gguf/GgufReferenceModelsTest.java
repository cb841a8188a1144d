package dev.jmoe.gguf;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jmoe.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Opens every llama.cpp reference model and checks what it holds against the generator's hyperparameters. */
class GgufReferenceModelsTest {

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static Path modelsDir() {
        String dir = System.getProperty("jmoe.reference.dir");
        assumeTrue(dir != null && Files.isDirectory(Path.of(dir, "models")), "llama.cpp reference models not available");
        return Path.of(dir, "models");
    }

    static List<Path> referenceModels() throws IOException {
        try (Stream<Path> s = Files.list(modelsDir())) {
            List<Path> models = s.filter(p -> p.toString().endsWith(".gguf")).sorted().toList();
            assumeTrue(!models.isEmpty(), "no reference models");
            return models;
        }
    }

    /** One "key": value pair of a flat JSON object (the generator's files hold only scalars). */
    private static final Pattern JSON_PAIR = Pattern.compile("\"(\\w+)\"\\s*:\\s*(\"[^\"]*\"|[^,}\\s]+)");

    /** The generator's hyperparameters as text (strings unquoted), read without a JSON library. */
    private record Hyper(Map<String, String> values) {
        String text(String key) {
            String v = values.get(key);
            assertNotNull(v, "hyperparameter " + key);
            return v;
        }
        long num(String key) { return Long.parseLong(text(key)); }
        double real(String key) { return Double.parseDouble(text(key)); }
        boolean bool(String key) { return Boolean.parseBoolean(text(key)); }

        static Hyper read(Path json) throws IOException {
            Map<String, String> values = new HashMap<>();
            Matcher m = JSON_PAIR.matcher(Files.readString(json));
            while (m.find()) values.put(m.group(1), m.group(2).replaceAll("^\"|\"$", ""));
            return new Hyper(values);
        }
    }

    /** The generator's JSON for a model: same name family, dtype suffix stripped ("tiny_mixtral_f16.json" covers tiny_mixtral_*). */
    private static Hyper hyperparameters(Path model) throws IOException {
        String name = model.getFileName().toString();
        try (Stream<Path> s = Files.list(model.getParent())) {
            for (Path json : s.filter(p -> p.toString().endsWith(".json")).toList()) {
                Hyper h = Hyper.read(json);
                String family = json.getFileName().toString().replace("_" + h.text("dtype") + ".json", "_");
                if (name.startsWith(family)) return h;
            }
        }
        return fail("no hyperparameter JSON for " + name);
    }

    @Test
    void everyReferenceModelMatchesItsHyperparameters() throws IOException {
        for (Path model : referenceModels()) {
            Hyper h = hyperparameters(model);
            try (GgufFile f = GgufFile.open(model)) {
                checkModel(f, h);
            }
        }
    }

    private static void checkModel(GgufFile f, Hyper h) {
        String where = f.path().getFileName().toString();
        String arch = h.text("arch");
        long nEmbd = h.num("n_embd"), nVocab = h.num("n_vocab"), nLayer = h.num("n_layer");
        long nHead = h.num("n_head"), nHeadKv = h.num("n_head_kv"), headDim = h.num("head_dim");
        long nExpert = h.num("n_expert"), nFf = h.num("n_ff_expert");

        assertEquals(3, f.version(), where);
        assertEquals(32, f.alignment(), where);
        assertEquals(0, f.dataOffset() % f.alignment(), where);
        assertEquals(arch, f.getString("general.architecture"), where);
        assertEquals(nLayer, f.getLong(arch + ".block_count"), where);
        assertEquals(nEmbd, f.getInt(arch + ".embedding_length"), where);
        assertEquals(nHead, f.getInt(arch + ".attention.head_count"), where);
        assertEquals(nHeadKv, f.getInt(arch + ".attention.head_count_kv"), where);
        assertEquals(nExpert, f.getInt(arch + ".expert_count"), where);
        assertEquals((int) h.num("n_expert_used"), f.getInt(arch + ".expert_used_count"), where);
        assertEquals(h.real("rope_theta"), f.getDouble(arch + ".rope.freq_base"), 1e-3, where);
        assertEquals((float) h.real("rms_eps"), (float) f.getDouble(arch + ".attention.layer_norm_rms_epsilon"), where);
        assertEquals(h.text("tokenizer"), f.getString("tokenizer.ggml.model"), where);
        assertEquals(h.text("pre"), f.getString("tokenizer.ggml.pre"), where);
        assertEquals(nVocab, f.getStringArray("tokenizer.ggml.tokens").size(), where);
        assertEquals(nVocab, f.getIntArray("tokenizer.ggml.token_type").length, where);
        assertEquals((int) h.num("bos"), f.getInt("tokenizer.ggml.bos_token_id"), where);
        assertEquals((int) h.num("eos"), f.getInt("tokenizer.ggml.eos_token_id"), where);
        assertEquals(h.bool("add_bos"), f.getBool("tokenizer.ggml.add_bos_token", !h.bool("add_bos")), where);

        boolean qkNorm = arch.equals("qwen3moe");
        int perLayer = 10 + (qkNorm ? 2 : 0);
        assertEquals(3 + nLayer * perLayer, f.tensors().size(), where);

        assertShape(f, "token_embd.weight", nEmbd, nVocab);
        assertShape(f, "output.weight", nEmbd, nVocab);
        assertShape(f, "output_norm.weight", nEmbd);
        for (int l = 0; l < nLayer; l++) {
            String b = "blk." + l + ".";
            assertShape(f, b + "attn_norm.weight", nEmbd);
            assertShape(f, b + "ffn_norm.weight", nEmbd);
            assertShape(f, b + "attn_q.weight", nEmbd, nHead * headDim);
            assertShape(f, b + "attn_k.weight", nEmbd, nHeadKv * headDim);
            assertShape(f, b + "attn_v.weight", nEmbd, nHeadKv * headDim);
            assertShape(f, b + "attn_output.weight", nHead * headDim, nEmbd);
            assertShape(f, b + "ffn_gate_inp.weight", nEmbd, nExpert);
            assertShape(f, b + "ffn_gate_exps.weight", nEmbd, nFf, nExpert);
            assertShape(f, b + "ffn_up_exps.weight", nEmbd, nFf, nExpert);
            assertShape(f, b + "ffn_down_exps.weight", nFf, nEmbd, nExpert);
            assertEquals(GgmlType.F32, f.tensor(b + "ffn_gate_inp.weight").type(), where);
            if (qkNorm) {
                assertShape(f, b + "attn_q_norm.weight", headDim);
                assertShape(f, b + "attn_k_norm.weight", headDim);
            }
        }

        // Tensors are packed in order: every slice is inside the file and the last one ends the file.
        long end = 0;
        for (GgufTensorInfo t : f.tensors()) {
            MemorySegment data = f.tensorData(t);
            assertEquals(t.byteSize(), data.byteSize(), t.name());
            assertEquals(t.type().bytesFor(t.elementCount()), t.byteSize(), t.name());
            assertEquals(0, t.offset() % f.alignment(), t.name());
            end = Math.max(end, f.fileOffset(t) + t.byteSize());
        }
        assertTrue(end <= f.fileSize() && f.fileSize() - end < f.alignment(), where + ": data ends at " + end);
    }

    private static void assertShape(GgufFile f, String name, long... dims) {
        GgufTensorInfo t = f.tensor(name);
        assertNotNull(t, f.path().getFileName() + " lacks " + name);
        assertArrayEquals(dims, t.dims(), f.path().getFileName() + " " + name);
    }

    /** The same weights stored as F16 and as Q8_0: if data offsets were wrong the values would not line up. */
    @Test
    void f16AndQ8FilesHoldTheSameWeights() throws IOException {
        Path dir = modelsDir();
        Path f16Path = dir.resolve("tiny_mixtral_f16.gguf"), q8Path = dir.resolve("tiny_mixtral_q8_0.gguf");
        assumeTrue(Files.exists(f16Path) && Files.exists(q8Path));
        try (GgufFile f16 = GgufFile.open(f16Path); GgufFile q8 = GgufFile.open(q8Path)) {
            // F32 norms are kept verbatim in both files.
            for (String name : List.of("output_norm.weight", "blk.0.attn_norm.weight", "blk.3.ffn_norm.weight")) {
                assertEquals(-1, f16.tensorData(f16.tensor(name)).mismatch(q8.tensorData(q8.tensor(name))), name);
            }
            List<String> checked = new ArrayList<>();
            for (String name : List.of("token_embd.weight", "blk.2.ffn_down_exps.weight", "output.weight")) {
                GgufTensorInfo a = f16.tensor(name), b = q8.tensor(name);
                assertEquals(GgmlType.F16, a.type(), name);
                assertEquals(GgmlType.Q8_0, b.type(), name);
                MemorySegment half = f16.tensorData(a), q = q8.tensorData(b);
                long blocks = b.byteSize() / GgmlType.Q8_0.blockBytes();
                // Compare the first and the last block: the end of the slice catches off-by-some-bytes too.
                for (long blk : new long[] {0, blocks / 2, blocks - 1}) {
                    long qb = blk * GgmlType.Q8_0.blockBytes();
                    float d = Float.float16ToFloat(q.get(F16, qb));
                    for (int i = 0; i < 32; i++) {
                        float expected = Float.float16ToFloat(half.get(F16, (blk * 32 + i) * 2));
                        float actual = d * q.get(ValueLayout.JAVA_BYTE, qb + 2 + i);
                        // Both were rounded from the same F32 original: half a quantization step plus one F16 ulp apart at most.
                        float tolerance = Math.abs(d) * 0.5f + Math.abs(expected) * 0x1p-10f + 1e-6f;
                        assertEquals(expected, actual, tolerance, name + " block " + blk + " element " + i);
                    }
                }
                checked.add(name);
            }
            assertEquals(3, checked.size());
        }
    }

    @Test
    void vocabularyLoadsAsStrings() throws IOException {
        for (Path model : referenceModels()) {
            try (GgufFile f = GgufFile.open(model)) {
                List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
                // Byte-level BPE: the first 256 tokens are the 256 byte symbols, all distinct single code points.
                assertEquals(256, tokens.subList(0, 256).stream().distinct().count(), model.toString());
                for (String t : tokens.subList(0, 256)) assertEquals(1, t.codePointCount(0, t.length()), t);
                List<String> merges = f.getStringArray("tokenizer.ggml.merges");
                assertFalse(merges.isEmpty());
                for (String m : merges) assertEquals(2, m.split(" ").length, "merge '" + m + "' in " + model);
            }
        }
    }
}
