package dev.jmoe.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.generate.TokenizerException;
import dev.jmoe.gguf.GgufArray;
import dev.jmoe.gguf.GgufException;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufFormatException;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.gguf.GgufValueType;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.ModelException;
import dev.jmoe.testutil.GgufImage;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The GGUF reader and everything a model file feeds: parse, load the model (hyperparameters, tensor table), build
 * the tokenizer, run two tokens. Raw inputs are arbitrary bytes; edit programs keep a valid file's framing
 * and edits its metadata, tensor table and data by a small program read from the input (see {@link #mutate}).
 * A file may be refused only with the reader's, loader's or tokenizer's own exceptions, each naming what is wrong.
 */
class GgufFuzzTest implements SeedCorpus.Seeded {

    /**
     * One target for both kinds, so one campaign covers them: an input starting with the magic "GGUF" is a file
     * (raw bytes); anything else is an edit program applied to a valid model ({@link #mutate}).
     */
    @FuzzTest(maxDuration = "5m")
    void gguf(byte[] data) {
        if (data.length >= 4 && data[0] == 'G' && data[1] == 'G' && data[2] == 'U' && data[3] == 'F') {
            run(data);
            return;
        }
        byte[] file;
        try {
            file = mutate(data);
        } catch (RuntimeException e) {
            throw new AssertionError("the edit program itself failed", e);
        }
        run(file);
    }

    /** Parse, load, tokenize, two forward steps. */
    static void run(byte[] bytes) {
        try (Arena arena = Arena.ofConfined()) {
            // Native memory like a real mapping: the kernels take the off-heap paths they take on a file.
            MemorySegment seg = arena.allocate(Math.max(1, bytes.length), 64).asSlice(0, bytes.length);
            MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
            Fuzz.expectOnly(() -> {
                GgufFile f = GgufFile.read(seg, "fuzz.gguf");
                Model model = Model.load(f);
                Tokenizer tok = Tokenizer.fromGguf(f);
                int vocab = Math.min(tok.vocabSize(), model.hyperparams().nVocab());
                int[] ids = tok.encode("The town", true, false);
                for (int i = 0; i < ids.length; i++) ids[i] = Math.floorMod(ids[i], vocab);
                InferenceState st = model.newState(ids.length + 2, Fuzz.POOL);
                float[] logits = st.eval(ids, 0, ids.length, 4);
                st.next(argmax(logits) % vocab);
            }, GgufFormatException.class, GgufException.class, ModelException.class, TokenizerException.class);
        }
    }

    private static int argmax(float[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
        return best;
    }

    // ---------------------------------------------------------------- the structured target's edit program

    /** Values that sit on the edges of the checks: zero, one, sign bits, powers of two, counts far above the file. */
    private static final long[] INTS = {0, 1, 2, 3, 7, 8, 16, 31, 32, 33, 64, 255, 256, 1000, 4096, 65535, 65536,
            10_000_000, 1L << 28, (1L << 31) - 1, 1L << 31, (1L << 32) - 1, 1L << 32, 1L << 40, Long.MAX_VALUE, -1, -2,
            Integer.MIN_VALUE, Long.MIN_VALUE};
    private static final double[] FLOATS = {0, -0.0, 1, -1, 1e-6, 1e-30, 1e30, 1e38, 3.4e38, Double.NaN,
            Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Float.MIN_VALUE, 10000, 1e6, 0.5};
    private static final String[] STRINGS = {"llama", "qwen2moe", "qwen3moe", "olmoe", "qwen2", "qwen3", "gpt2", "gpt-2",
            "llama-bpe", "qwen2", "olmo", "none", "linear", "yarn", "", "\u0000", "blk.0.attn_q.weight", "x".repeat(300)};
    private static final String[] KEYS = {"block_count", "embedding_length", "feed_forward_length", "attention.head_count",
            "attention.head_count_kv", "attention.key_length", "attention.value_length", "rope.dimension_count",
            "expert_count", "expert_used_count", "expert_feed_forward_length", "expert_shared_feed_forward_length",
            "context_length", "attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor"};
    private static final String[] TOKENIZER_KEYS = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
            "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model", "tokenizer.ggml.pre",
            "general.architecture", "general.alignment", "tokenizer.chat_template"};
    private static final GgufValueType[] INT_TYPES = {GgufValueType.UINT32, GgufValueType.INT32, GgufValueType.UINT64,
            GgufValueType.INT64, GgufValueType.UINT8, GgufValueType.INT16};

    /**
     * Applies the program to the base model and returns the file. Each step is an opcode byte and its operands;
     * the input running out reads as zeros, so every byte string is a program.
     */
    static byte[] mutate(byte[] program) {
        GgufImage img = baseImage().copy();
        String arch = "qwen2moe";
        FuzzInput in = new FuzzInput(program);
        for (int step = 0; step < 64 && in.hasMore(); step++) {
            int op = in.u8() % 14;
            switch (op) {
                case 0 -> setKv(img, archKey(arch, in), intValue(in));
                case 1 -> setKv(img, archKey(arch, in), floatValue(in));
                case 2 -> { if (!img.kvs.isEmpty()) img.kvs.remove(in.u8() % img.kvs.size()); }
                case 3 -> setKv(img, TOKENIZER_KEYS[in.u8() % TOKENIZER_KEYS.length], intValue(in));
                case 4 -> {
                    String s = STRINGS[in.u8() % STRINGS.length];
                    String key = in.u8() % 2 == 0 ? "general.architecture" : TOKENIZER_KEYS[in.u8() % TOKENIZER_KEYS.length];
                    if (key.equals("general.architecture")) arch = s;
                    setKv(img, key, GgufValue.ofString(s));
                }
                case 5 -> {
                    if (img.tensors.isEmpty()) break;
                    GgufImage.Tensor t = img.tensors.get(in.u8() % img.tensors.size());
                    int d = in.u8() % 5;
                    if (d < t.dims.length) t.dims[d] = INTS[in.u8() % INTS.length];
                    else t.dims = java.util.Arrays.copyOf(t.dims, Math.min(d + 1, 5));
                }
                case 6 -> { if (!img.tensors.isEmpty()) img.tensors.get(in.u8() % img.tensors.size()).typeId = in.u8() % 42; }
                case 7 -> {
                    if (img.tensors.isEmpty()) break;
                    GgufImage.Tensor t = img.tensors.get(in.u8() % img.tensors.size());
                    int how = in.u8();
                    t.offset = how < 128 ? t.offset + 32L * (byte) in.u8() : how < 192 ? t.offset + (byte) in.u8() : INTS[in.u8() % INTS.length];
                }
                case 8 -> {
                    if (img.tensors.size() < 2) break;
                    GgufImage.Tensor a = img.tensors.get(in.u8() % img.tensors.size()), b = img.tensors.get(in.u8() % img.tensors.size());
                    String n = a.name;
                    a.name = b.name;
                    b.name = n;
                }
                case 9 -> { if (!img.tensors.isEmpty()) img.tensors.remove(in.u8() % img.tensors.size()); }
                case 10 -> {
                    // Corrupt the data: a NaN, an infinity or a flipped byte somewhere in the tensor bytes.
                    if (img.data.length < 4) break;
                    int at = (int) (Integer.toUnsignedLong(in.u32()) % (img.data.length - 3));
                    int kind = in.u8() % 3;
                    if (kind == 2) img.data[at] ^= (byte) in.u8();
                    else ByteBuffer.wrap(img.data, at, 4).order(ByteOrder.LITTLE_ENDIAN).putFloat(kind == 0 ? Float.NaN : Float.POSITIVE_INFINITY);
                }
                case 11 -> {
                    // Shift the whole data section: every tensor then reads its neighbour's bytes.
                    int by = in.u8() % 64 + 1;
                    if (by >= img.data.length) break;
                    byte[] shifted = new byte[img.data.length];
                    System.arraycopy(img.data, 0, shifted, by, img.data.length - by);
                    img.data = shifted;
                }
                case 12 -> editArray(img, in);
                case 13 -> {
                    int cut = (int) (Integer.toUnsignedLong(in.u32()) % (img.data.length + 1));
                    img.data = java.util.Arrays.copyOf(img.data, cut);
                }
                default -> { }
            }
        }
        return img.toBytes();
    }

    private static GgufImage base;

    /** The base model taken apart once; each program edits a copy. */
    private static synchronized GgufImage baseImage() {
        if (base == null) {
            try (GgufFile f = GgufFile.read(MemorySegment.ofArray(FuzzModels.base()), "base.gguf")) {
                base = GgufImage.of(f);
            } catch (GgufFormatException e) {
                throw new IllegalStateException(e);
            }
        }
        return base;
    }

    private static String archKey(String arch, FuzzInput in) {
        return arch + "." + KEYS[in.u8() % KEYS.length];
    }

    private static GgufValue intValue(FuzzInput in) {
        GgufValueType t = INT_TYPES[in.u8() % INT_TYPES.length];
        long v = INTS[in.u8() % INTS.length];
        return switch (t) {
            case UINT32 -> GgufValue.ofU32(v & 0xffffffffL);
            case INT32 -> GgufValue.ofI32((int) v);
            case UINT64 -> GgufValue.ofU64(v);
            case INT64 -> GgufValue.ofI64(v);
            case UINT8 -> GgufValue.ofU8((int) (v & 0xff));
            default -> GgufValue.ofI16((short) v);
        };
    }

    private static GgufValue floatValue(FuzzInput in) {
        double v = FLOATS[in.u8() % FLOATS.length];
        return in.u8() % 2 == 0 ? GgufValue.ofF32((float) v) : GgufValue.ofF64(v);
    }

    private static void setKv(GgufImage img, String key, GgufValue v) {
        for (int i = 0; i < img.kvs.size(); i++) {
            if (img.kvs.get(i).key().equals(key)) {
                img.kvs.set(i, new GgufImage.Kv(key, v));
                return;
            }
        }
        img.kvs.add(new GgufImage.Kv(key, v));
    }

    /** Replaces one element of one array value (token texts, token types, merges, scores) or shortens it. */
    private static void editArray(GgufImage img, FuzzInput in) {
        List<Integer> arrays = new ArrayList<>();
        for (int i = 0; i < img.kvs.size(); i++) if (img.kvs.get(i).value().type() == GgufValueType.ARRAY) arrays.add(i);
        if (arrays.isEmpty()) return;
        int at = arrays.get(in.u8() % arrays.size());
        GgufImage.Kv kv = img.kvs.get(at);
        GgufArray arr = kv.value().asArray();
        List<Object> elems = new ArrayList<>(arr.elements());
        if (elems.isEmpty()) return;
        int i = in.u16() % elems.size();
        int how = in.u8() % 4;
        if (how == 3) {
            elems = elems.subList(0, i);
        } else {
            Object e = elems.get(i);
            Object repl = switch (arr.elementType()) {
                case STRING -> how == 0 ? "" : how == 1 ? elems.get(in.u16() % elems.size()) : in.shortString();
                case INT32, UINT32 -> (int) INTS[in.u8() % INTS.length];
                case FLOAT32 -> (float) FLOATS[in.u8() % FLOATS.length];
                default -> e;
            };
            elems.set(i, repl);
        }
        img.kvs.set(at, new GgufImage.Kv(kv.key(), GgufValue.ofArray(new GgufArray(arr.elementType(), elems))));
    }

    // ---------------------------------------------------------------- seeds

    @Override
    public Map<String, Map<String, byte[]>> seeds() {
        Map<String, byte[]> raw = new LinkedHashMap<>();
        FuzzModels.all().forEach((name, bytes) -> raw.put(name, bytes));
        byte[] q = FuzzModels.base();
        raw.put("header-only", java.util.Arrays.copyOf(q, 24));
        raw.put("magic-only", "GGUF".getBytes(StandardCharsets.US_ASCII));
        Map<String, byte[]> structured = raw;
        structured.put("unchanged", new byte[0]);
        // One program per class of finding in issue #24 (opcode, operands; see mutate).
        structured.put("block-count-2e31", new byte[] {0, 0, 1, 19});
        structured.put("block-count-1e7", new byte[] {0, 0, 0, 17});
        structured.put("head-count-0", new byte[] {0, 3, 0, 0});
        structured.put("rms-eps-inf", new byte[] {1, 13, 10, 0});
        structured.put("rope-base-nan", new byte[] {1, 14, 9, 1});
        structured.put("eos-far-outside", new byte[] {3, 1, 2, 21});
        structured.put("expert-count-huge", new byte[] {0, 8, 1, 19});
        structured.put("norm-relabelled-f16", new byte[] {6, 1, 1});
        structured.put("data-shifted", new byte[] {11, 17});
        structured.put("nan-in-weights", new byte[] {10, 0, 16, 0, 0, 0});
        structured.put("tensor-dims-huge", new byte[] {5, 3, 0, 24});
        structured.put("data-truncated", new byte[] {13, 0, 64, 0, 0});
        structured.put("arch-unknown", new byte[] {4, 14, 0});
        structured.put("token-types-cut", new byte[] {12, 1, 5, 0, 3});
        return Map.of("gguf", raw);
    }
}
