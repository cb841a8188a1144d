package dev.jmoe.experts.store;

import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.StackedExperts;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Where every routed expert's bytes sit in the GGUF file, and how to view a copy of them. An expert is
 * three byte ranges (its slab of the stacked gate, up and down tensors, or three per-expert tensors in
 * older files); a copy packs them back to back as gate | up | down, which {@link #view} turns into
 * {@link ExpertWeights}. Offsets are absolute file offsets, so stores can read the file without the mapping.
 */
public final class ExpertLayout {
    /** One MoE layer: three part shapes and, per expert, the three absolute file offsets. */
    record LayerLayout(int layer, int nExpert, int nFf, int nEmbd, GgmlType gateType, GgmlType upType, GgmlType downType,
                       long gateBytes, long upBytes, long downBytes, long[] offsets) {
        long bytes() { return gateBytes + upBytes + downBytes; }
        long offset(int expert, int part) { return offsets[expert * 3 + part]; }
        long partBytes(int part) { return part == 0 ? gateBytes : part == 1 ? upBytes : downBytes; }
    }

    private final LayerLayout[] layers;
    private final int nExpert;
    private final long fileSize;

    private ExpertLayout(LayerLayout[] layers, int nExpert, long fileSize) {
        this.layers = layers;
        this.nExpert = nExpert;
        this.fileSize = fileSize;
    }

    /** The layout of a loaded model's experts in its file. */
    public static ExpertLayout of(Model model) {
        GgufFile file = model.file();
        List<StackedExperts> stacked = model.stackedExperts();
        LayerLayout[] layers = new LayerLayout[stacked.size()];
        int nExpert = 0;
        for (int l = 0; l < stacked.size(); l++) {
            StackedExperts s = stacked.get(l);
            if (s == null) continue;
            nExpert = Math.max(nExpert, s.nExpert());
            long gb = s.gate().byteSize() / s.nExpert(), ub = s.up().byteSize() / s.nExpert(), db = s.down().byteSize() / s.nExpert();
            long[] offsets = new long[s.nExpert() * 3];
            String p = "blk." + l + ".";
            GgufTensorInfo g = file.tensor(p + "ffn_gate_exps.weight");
            if (g != null) {
                long[] base = {file.fileOffset(g), file.fileOffset(file.requireTensor(p + "ffn_up_exps.weight")),
                        file.fileOffset(file.requireTensor(p + "ffn_down_exps.weight"))};
                for (int e = 0; e < s.nExpert(); e++) {
                    offsets[e * 3] = base[0] + e * gb;
                    offsets[e * 3 + 1] = base[1] + e * ub;
                    offsets[e * 3 + 2] = base[2] + e * db;
                }
            } else {
                // Older files: one tensor per expert and part (the model copied them into a stacked buffer).
                String[] names = {"ffn_gate", "ffn_up", "ffn_down"};
                for (int e = 0; e < s.nExpert(); e++) {
                    for (int part = 0; part < 3; part++) {
                        offsets[e * 3 + part] = file.fileOffset(file.requireTensor(p + names[part] + "." + e + ".weight"));
                    }
                }
            }
            layers[l] = new LayerLayout(l, s.nExpert(), s.nFf(), s.nEmbd(), s.gate().type(), s.up().type(), s.down().type(),
                    gb, ub, db, offsets);
        }
        if (nExpert == 0) throw new IllegalArgumentException(file.path() + " has no routed experts to offload");
        return new ExpertLayout(layers, nExpert, file.fileSize());
    }

    public int layerCount() { return layers.length; }

    /** Whether layer l has routed experts. */
    public boolean hasExperts(int l) { return layers[l] != null; }

    /** Experts per MoE layer (the largest, if layers differ). */
    public int nExpert() { return nExpert; }

    public int nExpert(int l) { return layer(l).nExpert(); }

    /** Bytes of one expert of layer l (gate + up + down). */
    public long expertBytes(int l) { return layer(l).bytes(); }

    /** Bytes of the largest expert: the size of one fast-memory slot. */
    public long maxExpertBytes() {
        long m = 0;
        for (LayerLayout ll : layers) if (ll != null) m = Math.max(m, ll.bytes());
        return m;
    }

    /** Bytes of all routed experts of the model. */
    public long totalBytes() {
        long sum = 0;
        for (LayerLayout ll : layers) if (ll != null) sum += ll.bytes() * ll.nExpert();
        return sum;
    }

    public long fileSize() { return fileSize; }

    /** Absolute file offset of part (0 gate, 1 up, 2 down) of an expert. */
    public long fileOffset(int l, int expert, int part) {
        LayerLayout ll = layer(l);
        checkExpert(ll, expert);
        return ll.offset(expert, part);
    }

    /** Byte length of part (0 gate, 1 up, 2 down) of layer l's experts. */
    public long partBytes(int l, int part) { return layer(l).partBytes(part); }

    /** The expert's weights over a packed copy (gate | up | down) starting at {@code data}'s first byte. */
    public ExpertWeights view(int l, int expert, MemorySegment data) {
        LayerLayout ll = layer(l);
        checkExpert(ll, expert);
        if (data.byteSize() < ll.bytes()) {
            throw new IllegalArgumentException("buffer of " + data.byteSize() + " bytes is smaller than expert " + l + "/" + expert
                    + " (" + ll.bytes() + " bytes)");
        }
        return view(l, expert, data.asSlice(0, ll.gateBytes()), data.asSlice(ll.gateBytes(), ll.upBytes()),
                data.asSlice(ll.gateBytes() + ll.upBytes(), ll.downBytes()));
    }

    /** The expert's weights over three separate segments (gate, up, down). */
    public ExpertWeights view(int l, int expert, MemorySegment gate, MemorySegment up, MemorySegment down) {
        LayerLayout ll = layer(l);
        checkExpert(ll, expert);
        return new ExpertWeights(l, expert, new Matrix(ll.gateType(), gate, ll.nFf(), ll.nEmbd()),
                new Matrix(ll.upType(), up, ll.nFf(), ll.nEmbd()), new Matrix(ll.downType(), down, ll.nEmbd(), ll.nFf()));
    }

    private LayerLayout layer(int l) {
        if (l < 0 || l >= layers.length || layers[l] == null) throw new IllegalArgumentException("layer " + l + " has no routed experts");
        return layers[l];
    }

    private static void checkExpert(LayerLayout ll, int expert) {
        if (expert < 0 || expert >= ll.nExpert()) throw new IllegalArgumentException("layer " + ll.layer() + " has no expert " + expert);
    }
}
