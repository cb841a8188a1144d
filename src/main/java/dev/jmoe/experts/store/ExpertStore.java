package dev.jmoe.experts.store;

import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.Model;
import java.lang.foreign.MemorySegment;

/**
 * The slow tier where every expert lives. Fast memory gets an expert by {@link #read}ing it (through a
 * {@link Link}); the slow side of a split computes straight from the store ({@link #inPlace}, or a
 * transient read when the store has no addressable copy).
 */
public interface ExpertStore extends AutoCloseable {
    /** "direct", "host" or "mmap". */
    String name();

    ExpertLayout layout();

    /** Copies expert (layer, expert) packed as gate | up | down into {@code dst} (at least expertBytes(layer) long). */
    void read(int layer, int expert, MemorySegment dst);

    /** The expert's weights where the store keeps them, usable without copying; null if it must be read first. */
    default ExpertWeights inPlace(int layer, int expert) { return null; }

    /**
     * Where fast-memory slots should start modulo 4096, with a stride that is a multiple of 4096, for this store to read
     * into them without copying (DirectStore); -1 for no preference.
     */
    default long slotPhase() { return -1; }

    /** A human-readable remark about how the store works on this machine (e.g. an O_DIRECT fallback), or null. */
    default String note() { return null; }

    @Override default void close() {}

    /** Opens a store for a loaded model's experts. */
    @FunctionalInterface
    interface Factory {
        ExpertStore open(Model model, ExpertLayout layout);
    }

    /** Opens the store registered as {@code kind} ({@link ExpertStores}) for a loaded model. */
    static ExpertStore open(String kind, Model model) {
        // Stores that read the file themselves open the inode the model was checked and mapped from (stablePath), never
        // the path again: a file replaced since would otherwise be read as if it were the model.
        String change = model.file().fileChange();
        if (change != null) throw new IllegalStateException(change);
        return ExpertStores.REGISTRY.get(kind).open(model, ExpertLayout.of(model));
    }
}
