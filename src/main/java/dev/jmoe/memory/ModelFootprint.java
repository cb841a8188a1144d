package dev.jmoe.memory;

import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.model.StackedExperts;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Packing;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The memory figures of a model that a {@link MemoryPlanner} needs, all taken from the loaded model's matrix
 * shapes (nothing is read from the weights).
 *
 * @param name                the file's name, for messages
 * @param weightBytes         bytes of every weight matrix and vector
 * @param expertBytes         bytes of all routed experts
 * @param slotBytes           one fast-memory slot: the largest expert, rounded up as ExpertMemory rounds it
 * @param expertCount         routed experts over all layers
 * @param packedNonExpert     heap bytes of the packed copies {@link Model#withPackedWeights} makes of non-expert matrices
 * @param packedExperts       heap bytes of packed copies of every routed expert (a resident run packs them on first use)
 * @param kvBytesPerPosition  KV cache bytes per context position (F32 keys and values, every layer)
 * @param contextLength       the model's trained context length
 * @param slotHeapBytes       heap bytes of one fast-memory slot when the model packs its weights: the packed copies of
 *                            the largest expert's packable parts (slots hold experts in the form the resident run
 *                            computes them in, dev.jmoe.experts.cache.SlotFormat); 0 when nothing of an expert packs
 * @param slotRawBytes        off-heap bytes of such a slot: the parts that do not pack, in the file's layout
 * @param slotFormBytes       bytes of every routed expert in the form slots hold them (packed copies plus the parts that do
 *                            not pack, dev.jmoe.experts.cache.SlotFormat#totalBytes): what a fractional --expert-memory
 *                            means when the model packs its weights
 */
public record ModelFootprint(String name, long weightBytes, long expertBytes, long slotBytes, int expertCount,
                             long packedNonExpert, long packedExperts, long kvBytesPerPosition, int contextLength,
                             long slotHeapBytes, long slotRawBytes, long slotFormBytes) {
    /** Figures without the packed slot split: an expert's packed copies on average, every part packed. */
    public ModelFootprint(String name, long weightBytes, long expertBytes, long slotBytes, int expertCount, long packedNonExpert,
                          long packedExperts, long kvBytesPerPosition, int contextLength) {
        this(name, weightBytes, expertBytes, slotBytes, expertCount, packedNonExpert, packedExperts, kvBytesPerPosition, contextLength,
                expertCount > 0 ? (packedExperts + expertCount - 1) / expertCount : 0,
                expertCount > 0 && packedExperts > 0 ? SLOT_ALIGN : slotBytes, packedExperts > 0 ? packedExperts : expertBytes);
    }

    /**
     * What a fractional --expert-memory (25%, 1/4, 0.25) is a fraction of: every routed expert in the form the run's slots
     * hold it (the run resolves it against the same total), the file's bytes with {@code noPack}.
     */
    public long budgetBase(boolean noPack) {
        return noPack ? expertBytes : slotFormBytes; // slotFormBytes is the file's bytes when nothing of an expert packs
    }

    /** ExpertMemory's slot rounding (vector loads). */
    static final long SLOT_ALIGN = 64;

    /** Weight bytes that are not routed experts (attention, norms, routers, shared experts, embeddings, output). */
    public long nonExpertBytes() { return weightBytes - expertBytes; }

    public boolean hasExperts() { return expertCount > 0; }

    /** KV cache bytes for a context of {@code ctx} positions. */
    public long kvBytes(int ctx) { return kvBytesPerPosition * ctx; }

    public static ModelFootprint of(Model model) {
        Map<Matrix, Boolean> seen = new IdentityHashMap<>();
        long weights = 0, packedNonExpert = 0, experts = 0, packedExperts = 0, maxExpert = 0, slotHeap = 0, slotRaw = 0, slotForm = 0;
        int count = 0;
        long vectors = 0;
        for (int l = 0; l < model.hyperparams().nLayer(); l++) {
            LayerWeights w = model.layer(l);
            for (Matrix m : new Matrix[]{w.wq(), w.wk(), w.wv(), w.wo(), w.ffnGate(), w.ffnUp(), w.ffnDown(), w.sharedGate(), w.sharedUp(), w.sharedDown()}) {
                if (m == null || seen.put(m, Boolean.TRUE) != null) continue;
                weights += m.byteSize();
                packedNonExpert += residentPacked(m);
            }
            if (w.router() != null && seen.put(w.router(), Boolean.TRUE) == null) weights += w.router().byteSize();
            vectors += floats(w.attnNorm()) + floats(w.bq()) + floats(w.bk()) + floats(w.bv()) + floats(w.qNorm()) + floats(w.kNorm())
                    + floats(w.ffnNorm()) + floats(w.sharedGateInp());
            StackedExperts s = w.experts();
            if (s != null) {
                long one = s.expertBytes();
                experts += one * s.nExpert();
                count += s.nExpert();
                maxExpert = Math.max(maxExpert, one);
                var e = s.expert(0);
                long heapOne = packed(e.gate()) + packed(e.up()) + packed(e.down());
                packedExperts += (residentPacked(e.gate()) + residentPacked(e.up()) + residentPacked(e.down())) * s.nExpert();
                long rawOne = 0;
                for (Matrix part : new Matrix[]{e.gate(), e.up(), e.down()}) if (packed(part) == 0) rawOne += part.byteSize();
                slotForm += (heapOne + rawOne) * s.nExpert();
                slotHeap = Math.max(slotHeap, heapOne);
                slotRaw = Math.max(slotRaw, (Math.max(rawOne, 1) + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN);
            }
        }
        Matrix embd = model.tokenEmbedding(), out = model.output();
        weights += embd.byteSize();
        if (out != embd) weights += out.byteSize();
        // the output matrix is packed even when it is the tied embedding (Model.withPackedWeights packs `output`)
        packedNonExpert += residentPacked(out);
        vectors += floats(model.outputNorm());
        weights += experts + vectors;
        var hp = model.hyperparams();
        long kv = 2L * hp.nLayer() * hp.kvDim() * Float.BYTES;
        long slot = maxExpert == 0 ? 0 : (maxExpert + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
        return new ModelFootprint(model.file().path().getFileName().toString(), weights, experts, slot, count, packedNonExpert, packedExperts,
                kv, hp.contextLength(), slotHeap, slotHeap > 0 ? slotRaw : slot, slotHeap > 0 ? slotForm : experts);
    }

    /** Heap bytes of the copy a resident run packs: the larger layout, whichever rounding the run takes. */
    private static long residentPacked(Matrix m) {
        return packed(m) == 0 ? 0 : Packing.largestPackedBytes(m);
    }

    /** Heap bytes of the copy a fast-memory slot holds ({@link Packing#packInto}'s layout). */
    private static long packed(Matrix m) {
        return m != null && m.packed() == null && Packing.canPack(m) ? Packing.packedBytes(m) : 0;
    }

    private static long floats(float[] v) {
        return v == null ? 0 : (long) v.length * Float.BYTES;
    }
}
