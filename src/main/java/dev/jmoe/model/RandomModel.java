package dev.jmoe.model;

import dev.jmoe.generate.BpeVocabBuilder;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.gguf.GgufWriter;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.TypeKernel;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Writes a random-weight GGUF model of any supported architecture, shape and tensor type, with a working
 * byte-level BPE vocabulary: the models tests and benchmarks run on. Weights are drawn tensor by tensor
 * from a seed derived from the tensor's name, so a file's content depends only on its parameters.
 */
public final class RandomModel {

    /** Shape and numbers of the model to generate; {@code nFf} is the expert ff for MoE archs, the dense ff otherwise. */
    public record Shape(String arch, int nLayer, int nEmbd, int nHead, int nHeadKv, int headDim, int nExpert,
                        int nExpertUsed, int nFf, int nFfShared, int nVocab, int ctx, float ropeTheta, float rmsEps,
                        boolean tiedEmbeddings, long seed) {
        public Shape {
            ArchSpec spec = ArchSpec.forName(arch);
            if (nLayer < 1 || nEmbd < 1 || nHead < 1 || nHeadKv < 1 || headDim < 2 || nFf < 1 || ctx < 1) {
                throw new IllegalArgumentException("layers, n_embd, heads, head_dim, ff and ctx must be positive");
            }
            if (nHead % nHeadKv != 0) throw new IllegalArgumentException("n_head " + nHead + " must be a multiple of n_head_kv " + nHeadKv);
            if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even, got " + headDim);
            if (spec.moe() && !arch.equals("llama") && nExpert < 1) throw new IllegalArgumentException(arch + " needs at least one expert");
            if (nExpert > 0 && (nExpertUsed < 1 || nExpertUsed > nExpert)) {
                throw new IllegalArgumentException("experts used " + nExpertUsed + " must be between 1 and " + nExpert);
            }
            if (!spec.moe() && nExpert > 0) throw new IllegalArgumentException(arch + " is a dense architecture; use --experts 0");
            if (spec.sharedExpert() && nFfShared < 1) throw new IllegalArgumentException(arch + " needs a shared-expert ff size");
            if (nVocab < 258) throw new IllegalArgumentException("vocabulary must have at least 258 tokens, got " + nVocab);
        }

        public long parameterCount() {
            ArchSpec spec = ArchSpec.forName(arch);
            long q = (long) nHead * headDim, kv = (long) nHeadKv * headDim;
            long perLayer = 2L * nEmbd + nEmbd * q * 2 + nEmbd * kv * 2;
            if (nExpert > 0) {
                perLayer += (long) nEmbd * nExpert + 3L * nEmbd * nFf * nExpert;
                if (spec.sharedExpert()) perLayer += nEmbd + 3L * nEmbd * nFfShared;
            } else {
                perLayer += 3L * nEmbd * nFf;
            }
            return perLayer * nLayer + (long) nVocab * nEmbd * (tiedEmbeddings ? 1 : 2) + nEmbd;
        }
    }

    /** Standard deviations of the random weights (the same spread llama.cpp's reference generator used). */
    private static final float STD = 0.05f, EMBD_STD = 1.0f, OUT_STD = 0.15f, ROUTER_STD = 0.15f, NORM_NOISE = 0.1f;

    private static final String VOCAB_SAMPLE = """
            The quick brown fox jumps over the lazy dog. A model that routes each token to a few of its experts
            reads only a small part of its weights for every token, so most of them can wait in slower memory
            until they are needed. When the memory is small, the engine keeps the experts it expects to use and
            loads the others on demand. The router scores every expert; the best ones are chosen, and their
            outputs are mixed with weights that sum to one. Prediction looks a few layers ahead, so that loading
            can start before an expert is needed. In the morning the people of the town went to the market, and
            in the evening they came home again. She said that it was the best day of the year, and he agreed.
            There were 12 boxes, 345 books and 6789 letters in the house; nobody knew who had written them.
            Numbers like 2024, 3.14 and 1,000,000 appear in text as often as names like London, Paris or Rome.
            """;

    private RandomModel() {}

    /** Generates the model and writes it to {@code path} (atomically: an existing file is replaced only on success). */
    public static void write(Shape s, FileType fileType, Path path) throws IOException {
        write(s, fileType, path, null);
    }

    /** Like {@link #write(Shape, FileType, Path)}, calling {@code progress(tensorsDone, tensorCount)} as tensors are written. */
    public static void write(Shape s, FileType fileType, Path path, java.util.function.BiConsumer<Integer, Integer> progress) throws IOException {
        ArchSpec spec = ArchSpec.forName(s.arch());
        boolean moe = s.nExpert() > 0;
        String a = s.arch();
        GgufWriter w = new GgufWriter();
        w.put("general.architecture", GgufValue.ofString(a));
        w.put("general.name", GgufValue.ofString("jmoe random " + a));
        w.put("general.file_type", GgufValue.ofU32(fileType.id()));
        w.put("general.alignment", GgufValue.ofU32(32));
        w.put(a + ".context_length", GgufValue.ofU32(s.ctx()));
        w.put(a + ".embedding_length", GgufValue.ofU32(s.nEmbd()));
        w.put(a + ".block_count", GgufValue.ofU32(s.nLayer()));
        w.put(a + ".feed_forward_length", GgufValue.ofU32(s.nFf()));
        w.put(a + ".attention.head_count", GgufValue.ofU32(s.nHead()));
        w.put(a + ".attention.head_count_kv", GgufValue.ofU32(s.nHeadKv()));
        w.put(a + ".attention.key_length", GgufValue.ofU32(s.headDim()));
        w.put(a + ".attention.value_length", GgufValue.ofU32(s.headDim()));
        w.put(a + ".attention.layer_norm_rms_epsilon", GgufValue.ofF32(s.rmsEps()));
        w.put(a + ".rope.freq_base", GgufValue.ofF32(s.ropeTheta()));
        w.put(a + ".rope.dimension_count", GgufValue.ofU32(s.headDim()));
        if (moe) {
            w.put(a + ".expert_count", GgufValue.ofU32(s.nExpert()));
            w.put(a + ".expert_used_count", GgufValue.ofU32(s.nExpertUsed()));
            w.put(a + ".expert_feed_forward_length", GgufValue.ofU32(s.nFf()));
            if (spec.sharedExpert()) w.put(a + ".expert_shared_feed_forward_length", GgufValue.ofU32(s.nFfShared()));
        }
        BpeVocabBuilder.Vocab vocab = BpeVocabBuilder.build(VOCAB_SAMPLE, s.nVocab());
        w.put("tokenizer.ggml.model", GgufValue.ofString("gpt2"));
        w.put("tokenizer.ggml.pre", GgufValue.ofString("gpt-2"));
        w.put("tokenizer.ggml.tokens", GgufValue.ofStringArray(vocab.tokens()));
        w.put("tokenizer.ggml.token_type", GgufValue.ofI32Array(vocab.tokenTypes()));
        w.put("tokenizer.ggml.merges", GgufValue.ofStringArray(vocab.merges()));
        w.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(vocab.bos()));
        w.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(vocab.eos()));
        w.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(true));

        int e = s.nEmbd(), q = s.nHead() * s.headDim(), kv = s.nHeadKv() * s.headDim();
        int n = s.nLayer(), x = s.nExpert();
        matrix(w, s, fileType, "token_embd", -1, s.nVocab(), e, 1, EMBD_STD);
        vector(w, s, "output_norm.weight", e, true);
        if (!s.tiedEmbeddings()) matrix(w, s, fileType, "output", -1, s.nVocab(), e, 1, OUT_STD);
        for (int l = 0; l < n; l++) {
            String p = "blk." + l + ".";
            vector(w, s, p + "attn_norm.weight", e, true);
            matrix(w, s, fileType, "attn_q", l, q, e, 1, STD);
            matrix(w, s, fileType, "attn_k", l, kv, e, 1, STD);
            matrix(w, s, fileType, "attn_v", l, kv, e, 1, STD);
            matrix(w, s, fileType, "attn_output", l, e, q, 1, STD);
            if (spec.qkvBias()) {
                vector(w, s, p + "attn_q.bias", q, false);
                vector(w, s, p + "attn_k.bias", kv, false);
                vector(w, s, p + "attn_v.bias", kv, false);
            }
            switch (spec.qkNorm()) {
                case PER_HEAD -> {
                    vector(w, s, p + "attn_q_norm.weight", s.headDim(), true);
                    vector(w, s, p + "attn_k_norm.weight", s.headDim(), true);
                }
                case FULL -> {
                    vector(w, s, p + "attn_q_norm.weight", q, true);
                    vector(w, s, p + "attn_k_norm.weight", kv, true);
                }
                case NONE -> { }
            }
            vector(w, s, p + "ffn_norm.weight", e, true);
            if (moe) {
                tensor(w, s, p + "ffn_gate_inp.weight", GgmlType.F32, x, e, 1, ROUTER_STD);
                matrix(w, s, fileType, "ffn_gate_exps", l, s.nFf(), e, x, STD);
                matrix(w, s, fileType, "ffn_up_exps", l, s.nFf(), e, x, STD);
                matrix(w, s, fileType, "ffn_down_exps", l, e, s.nFf(), x, STD);
                if (spec.sharedExpert()) {
                    tensor(w, s, p + "ffn_gate_inp_shexp.weight", GgmlType.F32, 1, e, 0, ROUTER_STD);
                    matrix(w, s, fileType, "ffn_gate_shexp", l, s.nFfShared(), e, 1, STD);
                    matrix(w, s, fileType, "ffn_up_shexp", l, s.nFfShared(), e, 1, STD);
                    matrix(w, s, fileType, "ffn_down_shexp", l, e, s.nFfShared(), 1, STD);
                }
            } else {
                matrix(w, s, fileType, "ffn_gate", l, s.nFf(), e, 1, STD);
                matrix(w, s, fileType, "ffn_up", l, s.nFf(), e, 1, STD);
                matrix(w, s, fileType, "ffn_down", l, e, s.nFf(), 1, STD);
            }
        }
        if (progress != null) {
            int total = w.tensorInfos().size();
            int[] done = {0};
            w.onTensorWritten(() -> progress.accept(++done[0], total));
        }
        w.write(path);
    }

    private static void matrix(GgufWriter w, Shape s, FileType ft, String role, int layer, int rows, int cols, int stack, float std) {
        GgmlType type = ft.matrixType(role, layer, s.nLayer(), s.nExpert(), cols);
        String name = (layer >= 0 ? "blk." + layer + "." : "") + role + ".weight";
        tensor(w, s, name, type, rows, cols, stack, std);
    }

    /** A 1-D F32 tensor: norm weights around 1 (with noise so a wrong norm shows), biases around 0. */
    private static void vector(GgufWriter w, Shape s, String name, int n, boolean norm) {
        w.addTensor(name, GgmlType.F32, new long[]{n}, () -> {
            SplittableRandom rnd = rng(s, name);
            MemorySegment seg = Arena.ofAuto().allocate((long) n * 4, 64);
            for (int i = 0; i < n; i++) {
                float v = norm ? 1f + NORM_NOISE * (float) rnd.nextGaussian() : STD * (float) rnd.nextGaussian();
                seg.set(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * i, v);
            }
            return seg;
        });
    }

    /**
     * A matrix of {@code rows × cols} (ggml dims [cols, rows]) or, with stack > 0, a 3-D stack of them
     * ([cols, rows, stack]); stack 0 means a 1-D vector of cols values.
     */
    private static void tensor(GgufWriter w, Shape s, String name, GgmlType type, int rows, int cols, int stack, float std) {
        long[] dims = stack == 0 ? new long[]{cols} : stack == 1 ? new long[]{cols, rows} : new long[]{cols, rows, stack};
        long totalRows = (long) rows * Math.max(1, stack);
        TypeKernel kernel = Kernels.forType(type);
        long rowBytes = type.bytesFor(cols);
        w.addTensor(name, type, dims, () -> {
            SplittableRandom rnd = rng(s, name);
            MemorySegment seg = Arena.ofAuto().allocate(rowBytes * totalRows, 64);
            float[] row = new float[cols];
            for (long r = 0; r < totalRows; r++) {
                for (int c = 0; c < cols; c++) row[c] = std * (float) rnd.nextGaussian();
                kernel.quantizeRow(row, 0, cols, seg, r * rowBytes);
            }
            return seg;
        });
    }

    private static SplittableRandom rng(Shape s, String name) {
        return new SplittableRandom(s.seed() * 0x9E3779B97F4A7C15L ^ name.hashCode());
    }
}
