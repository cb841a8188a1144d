package dev.jmoe.experts.cache;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.experts.store.ExpertStore;
import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.Model;
import dev.jmoe.model.StackedExperts;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The form an expert takes in a fast-memory slot, so that an expert served from a slot goes through the kernels the
 * resident run uses and gives the same bits.
 * <ul>
 *   <li>File layout ({@link #fileLayout}): the file's bytes, gate | up | down, multiplied by the file-layout kernels.
 *       This is what a model that does not pack its weights computes resident too.</li>
 *   <li>Packed ({@link #of} on a model that packs, {@link Model#packsWeights}): every part the resident source packs on
 *       first use (Q4_0, Q4_K, Q6_K with whole 16-row groups, {@link Packing#canPack}) is held as its packed copy
 *       instead of its bytes, made by the loader thread as the expert arrives with the regrouping the resident source
 *       uses, so the integer kernels and the 16-bit activations are the same; the other parts keep the file's bytes.
 *       The packed copies live in Java arrays each slot owns and reuses (the kernels read arrays, see
 *       {@link dev.jmoe.tensor.PackedQ4}). A packed matrix still names its rows in the file mapping, which no packed
 *       product reads (only the scalar reference does); fast memory holds the packed copy alone.</li>
 * </ul>
 * A slot is sized for the largest expert in this form, part by part: {@link #slotBytes} is what one slot really
 * allocates, and the cache's budget counts it. Stores without an addressable copy (direct I/O) read a packed expert
 * into a staging buffer first; those buffers are fast memory too and come out of the same budget ({@link ExpertMemory}).
 */
public final class SlotFormat {
    private static final long ALIGN = 64;
    private static final int PARTS = 3;

    private final ExpertLayout layout;
    private final List<StackedExperts> stacked; // rows behind packed parts (null when nothing packs)
    private final boolean[][] packs;            // [layer][part]; null row for layers without experts
    private final long[] layerBytes;            // an expert of layer l in this form
    private final long rawBytes;                // off-heap bytes per slot: the largest sum of unpacked parts
    private final int[] quantShorts = new int[PARTS], quantBytes = new int[PARTS], scaleFloats = new int[PARTS]; // heap arrays per slot and part
    private final boolean anyPacked;

    private SlotFormat(ExpertLayout layout, List<StackedExperts> stacked, boolean[][] packs) {
        this.layout = layout;
        this.stacked = stacked;
        this.packs = packs;
        this.layerBytes = new long[layout.layerCount()];
        long raw = 0;
        boolean any = false;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            long unpacked = 0, packed = 0;
            for (int p = 0; p < PARTS; p++) {
                if (packs != null && packs[l][p]) {
                    Matrix m = part(stacked.get(l).expert(0), p);
                    quantShorts[p] = Math.max(quantShorts[p], Packing.quantShorts(m));
                    quantBytes[p] = Math.max(quantBytes[p], Packing.quantBytes(m));
                    scaleFloats[p] = Math.max(scaleFloats[p], Packing.scaleFloats(m));
                    packed += Packing.packedBytes(m);
                    any = true;
                } else {
                    unpacked += layout.partBytes(l, p);
                }
            }
            raw = Math.max(raw, unpacked);
            layerBytes[l] = unpacked + packed;
        }
        this.rawBytes = raw;
        this.anyPacked = any;
    }

    /** Every expert as the file's bytes (a model that does not pack its weights, or tests of the slot machinery). */
    public static SlotFormat fileLayout(ExpertLayout layout) {
        return new SlotFormat(layout, null, null);
    }

    /** The form matching how {@code model} computes its resident experts: packed where it packs them, else the file's layout. */
    public static SlotFormat of(Model model, ExpertLayout layout) {
        if (!model.packsWeights()) return fileLayout(layout);
        List<StackedExperts> stacked = new ArrayList<>(model.stackedExperts());
        boolean[][] packs = new boolean[layout.layerCount()][];
        boolean any = false;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            packs[l] = new boolean[PARTS];
            ExpertWeights w = stacked.get(l).expert(0);
            for (int p = 0; p < PARTS; p++) {
                packs[l][p] = Packing.canPack(part(w, p));
                any |= packs[l][p];
            }
        }
        return any ? new SlotFormat(layout, stacked, packs) : fileLayout(layout);
    }

    private static Matrix part(ExpertWeights w, int p) {
        return p == 0 ? w.gate() : p == 1 ? w.up() : w.down();
    }

    public ExpertLayout layout() { return layout; }

    /** Whether any part of any expert is held packed. */
    public boolean packed() { return anyPacked; }

    /** Whether some part of layer l's experts is held packed. */
    public boolean packs(int layer) {
        return packs != null && packs[layer] != null && (packs[layer][0] || packs[layer][1] || packs[layer][2]);
    }

    /** Bytes one expert of layer l takes in this form. */
    public long expertBytes(int layer) { return layerBytes[layer]; }

    /** Bytes of every routed expert in this form: what "all experts in fast memory" would take (fractional budgets resolve against it). */
    public long totalBytes() {
        long sum = 0;
        for (int l = 0; l < layerBytes.length; l++) if (layout.hasExperts(l)) sum += layerBytes[l] * layout.nExpert(l);
        return sum;
    }

    /** Off-heap bytes of one slot (the file bytes of the parts not packed, rounded up for vector loads). */
    long rawSlotBytes() { return (Math.max(rawBytes, 1) + ALIGN - 1) / ALIGN * ALIGN; }

    /** Bytes one slot allocates: its off-heap bytes plus its packed arrays, each sized for the largest expert of the model. */
    public long slotBytes() {
        long b = rawSlotBytes();
        for (int p = 0; p < PARTS; p++) b += 2L * quantShorts[p] + quantBytes[p] + 4L * scaleFloats[p];
        return b;
    }

    /**
     * Bytes of the buffer a loader reads a packed expert into before packing it, when the store has no addressable
     * copy; 0 when nothing is packed (the store reads straight into the slot).
     */
    public long stagingBytes() { return anyPacked ? (layout.maxExpertBytes() + ALIGN - 1) / ALIGN * ALIGN : 0; }

    /** A slot's memory. */
    ExpertMemory.Slot newSlot(MemorySegment raw) {
        short[][] q = new short[PARTS][];
        byte[][] qb = new byte[PARTS][];
        float[][] s = new float[PARTS][];
        for (int p = 0; p < PARTS; p++) {
            if (quantShorts[p] > 0) q[p] = new short[quantShorts[p]];
            if (quantBytes[p] > 0) qb[p] = new byte[quantBytes[p]];
            if (scaleFloats[p] > 0) s[p] = new float[scaleFloats[p]];
        }
        return new ExpertMemory.Slot(raw, q, qb, s);
    }

    /**
     * Brings expert (layer, expert) from {@code store} into {@code slot}: the file's bytes for parts not packed, the
     * packed copy for the others (read through {@code staging} when the store has no addressable copy). Runs on a loader
     * thread, or on the compute thread for a slow-side expert; the slot is not visible to computations until it is ready.
     */
    public void load(ExpertStore store, int layer, int expert, ExpertMemory.Slot slot, MemorySegment staging) {
        if (!packs(layer)) {
            store.read(layer, expert, slot.raw());
            return;
        }
        ExpertWeights src = store.inPlace(layer, expert);
        if (src == null) {
            if (staging == null) throw new IllegalStateException("packing expert " + layer + "/" + expert + " from the " + store.name() + " store needs a staging buffer");
            store.read(layer, expert, staging);
            src = layout.view(layer, expert, staging);
        }
        long at = 0;
        for (int p = 0; p < PARTS; p++) {
            Matrix m = part(src, p);
            if (packs[layer][p]) {
                slot.packed()[p] = Packing.packInto(m, slot.quants()[p], slot.quantBytes()[p], slot.scales()[p], null);
            } else {
                MemorySegment.copy(m.data(), 0, slot.raw(), at, m.byteSize());
                at += m.byteSize();
            }
        }
    }

    /** The weights of (layer, expert) as {@link #load} left them in {@code slot}. */
    public ExpertWeights view(int layer, int expert, ExpertMemory.Slot slot) {
        if (!packs(layer)) return layout.view(layer, expert, slot.raw());
        ExpertWeights rows = stacked.get(layer).expert(expert);
        MemorySegment[] segs = new MemorySegment[PARTS];
        long at = 0;
        for (int p = 0; p < PARTS; p++) {
            if (packs[layer][p]) {
                segs[p] = part(rows, p).data(); // never read by the packed products
            } else {
                long n = layout.partBytes(layer, p);
                segs[p] = slot.raw().asSlice(at, n);
                at += n;
            }
        }
        ExpertWeights w = layout.view(layer, expert, segs[0], segs[1], segs[2]);
        Matrix[] m = {w.gate(), w.up(), w.down()};
        for (int p = 0; p < PARTS; p++) {
            if (!packs[layer][p]) continue;
            var packed = slot.packed()[p];
            if (packed == null || packed.rows() != m[p].rows() || packed.cols() != m[p].cols() || packed.type() != m[p].type()) {
                throw new IllegalStateException("slot holds no packed copy of part " + p + " of expert " + layer + "/" + expert);
            }
            m[p] = m[p].withPacked(packed);
        }
        return new ExpertWeights(layer, expert, m[0], m[1], m[2]);
    }
}
