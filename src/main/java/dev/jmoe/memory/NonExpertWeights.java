package dev.jmoe.memory;

import dev.jmoe.experts.store.FileAccess;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Moves a model's non-expert weight matrices out of the file mapping into anonymous memory. Inside a memory
 * cgroup, mapped file pages are page cache charged to the process: under pressure the kernel reclaims them and the
 * next token faults them back in from disk (thrashing). Anonymous memory without swap stays put, so the plan's
 * figure for these weights is exactly what they occupy. The bytes are read with O_DIRECT where the filesystem
 * allows it, so no page cache is left behind either.
 */
public final class NonExpertWeights {
    private NonExpertWeights() {}

    /** The model with every non-expert matrix backed by a private copy (freed with the model); bytes copied in {@code copied[0]}. */
    public static Model copy(Model model, long[] copied) {
        MemorySegment mapping = model.file().mapping();
        long base = mapping.address(), size = mapping.byteSize();
        Arena arena = Arena.ofAuto(); // lives as long as the matrices that point into it
        Map<Matrix, Matrix> done = new IdentityHashMap<>();
        long[] total = {0};
        try (FileAccess.Copier copier = new FileAccess.Copier(model.file().path())) {
            Model out = model.withNonExpertMatrices(m -> done.computeIfAbsent(m, x -> {
                MemorySegment d = x.data();
                long off = d.address() - base;
                // only matrices that are slices of the mapping (not e.g. a requantized copy already in memory)
                if (!d.isNative() || off < 0 || off + d.byteSize() > size) return x;
                MemorySegment copy = arena.allocate(d.byteSize(), 64);
                copier.copy(off, copy);
                total[0] += d.byteSize();
                return new Matrix(x.type(), copy, x.rows(), x.cols(), x.packed());
            }));
            if (copied != null && copied.length > 0) copied[0] = total[0];
            return out;
        }
    }
}
