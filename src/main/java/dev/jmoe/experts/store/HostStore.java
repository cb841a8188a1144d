package dev.jmoe.experts.store;

import dev.jmoe.model.ExpertWeights;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Every expert copied once into process memory (one off-heap allocation), standing in for a GPU host's
 * pinned RAM: the slow tier is fast to read but sits across the emulated {@link Link}. Filled with plain
 * file reads rather than through the mapping, so the mapping's pages are not left resident as well.
 */
public final class HostStore implements ExpertStore {
    private final ExpertLayout layout;
    private final Arena arena;
    private final MemorySegment all;
    private final long[][] offsets; // [layer][expert] -> offset of the packed expert in `all`

    private HostStore(ExpertLayout layout, Arena arena, MemorySegment all, long[][] offsets) {
        this.layout = layout;
        this.arena = arena;
        this.all = all;
        this.offsets = offsets;
    }

    static HostStore load(Path file, ExpertLayout layout) {
        return load(file, file, layout);
    }

    /** Reads {@code open} (e.g. the model's /proc/self/fd path), naming {@code file} in messages. */
    static HostStore load(Path open, Path file, ExpertLayout layout) {
        long available = MemoryBudget.available();
        if (available > 0 && layout.totalBytes() > available) {
            throw new IllegalArgumentException("--store host copies all " + dev.jmoe.experts.OffloadStats.bytes(layout.totalBytes())
                    + " of experts into memory, but only about " + dev.jmoe.experts.OffloadStats.bytes(available)
                    + " is available; use --store direct or mmap");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(open, StandardOpenOption.READ)) {
            MemorySegment all = arena.allocate(layout.totalBytes(), 64);
            long[][] offsets = new long[layout.layerCount()][];
            long at = 0;
            for (int l = 0; l < layout.layerCount(); l++) {
                if (!layout.hasExperts(l)) continue;
                offsets[l] = new long[layout.nExpert(l)];
                for (int e = 0; e < layout.nExpert(l); e++) {
                    offsets[l][e] = at;
                    for (int part = 0; part < 3; part++) {
                        long n = layout.partBytes(l, part);
                        readFully(ch, file, layout.fileOffset(l, e, part), all.asSlice(at, n));
                        at += n;
                    }
                }
            }
            return new HostStore(layout, arena, all, offsets);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot read experts from " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            throw e;
        }
    }

    /** Reads dst.byteSize() bytes at file offset {@code pos}, in pieces below 1 GiB (ByteBuffer limits). */
    static void readFully(FileChannel ch, Path file, long pos, MemorySegment dst) throws IOException {
        long done = 0, n = dst.byteSize();
        while (done < n) {
            long piece = Math.min(n - done, 1L << 30);
            ByteBuffer bb = dst.asSlice(done, piece).asByteBuffer();
            while (bb.hasRemaining()) {
                int r = ch.read(bb, pos + done + bb.position());
                if (r < 0) throw new IOException(file + " ends before offset " + (pos + done + bb.position()));
            }
            done += piece;
        }
    }

    @Override public String name() { return "host"; }
    @Override public ExpertLayout layout() { return layout; }

    @Override
    public void read(int layer, int expert, MemorySegment dst) {
        long n = layout.expertBytes(layer);
        MemorySegment.copy(all, offsets[layer][expert], dst, 0, n);
    }

    @Override
    public ExpertWeights inPlace(int layer, int expert) {
        return layout.view(layer, expert, all.asSlice(offsets[layer][expert], layout.expertBytes(layer)));
    }

    @Override
    public void close() {
        arena.close();
    }
}
