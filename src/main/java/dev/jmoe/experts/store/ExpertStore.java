package dev.jmoe.experts.store;

import dev.jmoe.model.ExpertWeights;
import dev.jmoe.model.Model;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Locale;

/**
 * The slow tier where every expert lives. Fast memory gets an expert by {@link #read}ing it (through a
 * {@link Link}); the slow side of a split computes straight from the store ({@link #inPlace}, or a
 * transient read when the store has no addressable copy).
 */
public interface ExpertStore extends AutoCloseable {
    /** Store kinds, as named on the command line. */
    List<String> KINDS = List.of("direct", "host", "mmap");

    /** "direct", "host" or "mmap". */
    String name();

    ExpertLayout layout();

    /** Copies expert (layer, expert) packed as gate | up | down into {@code dst} (at least expertBytes(layer) long). */
    void read(int layer, int expert, MemorySegment dst);

    /** The expert's weights where the store keeps them, usable without copying; null if it must be read first. */
    default ExpertWeights inPlace(int layer, int expert) { return null; }

    /** A human-readable remark about how the store works on this machine (e.g. an O_DIRECT fallback), or null. */
    default String note() { return null; }

    @Override default void close() {}

    /** Opens the store of the given kind for a loaded model. */
    static ExpertStore open(String kind, Model model) {
        ExpertLayout layout = ExpertLayout.of(model);
        // Stores that read the file themselves open the inode the model was checked and mapped from (stablePath), never
        // the path again: a file replaced since would otherwise be read as if it were the model.
        String change = model.file().fileChange();
        if (change != null) throw new IllegalStateException(change);
        return switch (kind == null ? "" : kind.toLowerCase(Locale.ROOT)) {
            case "direct" -> new DirectStore(model.file().stablePath(), model.file().path(), layout, true, DirectStore.BOUNCE_BYTES);
            case "host" -> HostStore.load(model.file().stablePath(), model.file().path(), layout);
            case "mmap" -> new MmapStore(model, layout);
            default -> throw new IllegalArgumentException("unknown --store '" + kind + "'; choose one of " + KINDS);
        };
    }
}
