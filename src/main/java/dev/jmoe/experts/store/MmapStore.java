package dev.jmoe.experts.store;

import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.Model;
import java.lang.foreign.MemorySegment;

/**
 * Experts read from the model file's memory mapping: the operating system's page cache is the slow tier.
 * Simple and fast, but the page cache (and the process's resident set) grows with every expert touched.
 */
public final class MmapStore implements ExpertStore {
    private final ExpertLayout layout;
    private final MemorySegment mapping;

    public MmapStore(Model model, ExpertLayout layout) {
        this.layout = layout;
        this.mapping = model.file().mapping();
    }

    @Override public String name() { return "mmap"; }
    @Override public ExpertLayout layout() { return layout; }

    @Override
    public void read(int layer, int expert, MemorySegment dst) {
        long at = 0;
        for (int part = 0; part < 3; part++) {
            long n = layout.partBytes(layer, part);
            MemorySegment.copy(mapping, layout.fileOffset(layer, expert, part), dst, at, n);
            at += n;
        }
    }

    @Override
    public ExpertWeights inPlace(int layer, int expert) {
        MemorySegment[] parts = new MemorySegment[3];
        for (int part = 0; part < 3; part++) {
            parts[part] = mapping.asSlice(layout.fileOffset(layer, expert, part), layout.partBytes(layer, part));
        }
        return layout.view(layer, expert, parts[0], parts[1], parts[2]);
    }
}
