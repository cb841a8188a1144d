package dev.jmoe.experts.store;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * Experts read from the GGUF file with direct I/O (O_DIRECT): no page cache, so resident memory really
 * is bounded by the expert budget and every load pays the storage device's real speed.
 * <p>
 * O_DIRECT requires the buffer address, the file offset and the length to be multiples of the device's
 * logical block size. Expert ranges start wherever GGUF's 32-byte alignment put them, so each range is read
 * as its block-aligned superset into an aligned bounce buffer (at most {@link #BOUNCE_BYTES} at a time) and
 * the wanted bytes are copied out. {@link #ALIGN} = 4096 covers both 512-byte and 4 KiB devices.
 * <p>
 * A filesystem that refuses O_DIRECT (tmpfs, some overlay or network filesystems answer EINVAL) is read
 * through the page cache instead, dropping the pages after each read; {@link #note()} says so.
 */
public final class DirectStore implements ExpertStore {
    static final long ALIGN = 4096;
    static final long BOUNCE_BYTES = 4L << 20;

    private final Path path;
    private final Path openPath;
    private final ExpertLayout layout;
    private final Arena arena = Arena.ofShared();
    private final long bounceBytes;
    private final ConcurrentLinkedDeque<Bounce> bounces = new ConcurrentLinkedDeque<>();
    private volatile int fd;
    private volatile boolean direct;
    private volatile String note;
    private volatile boolean closed;

    private record Bounce(MemorySegment buf, MemorySegment callState) {}

    DirectStore(Path path, ExpertLayout layout) {
        this(path, layout, true);
    }

    /** {@code tryDirect = false} goes straight to the page-cache fallback (tests; filesystems known to refuse). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect) {
        this(path, layout, tryDirect, BOUNCE_BYTES);
    }

    /** {@code bounceLimit}: largest bounce buffer (a multiple of ALIGN); ranges larger than it are read in chunks. */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect, long bounceLimit) {
        this(path, path, layout, tryDirect, bounceLimit);
    }

    /** Opens {@code open} (e.g. the model's /proc/self/fd path) and names {@code shown} in messages. */
    DirectStore(Path open, Path shown, ExpertLayout layout, boolean tryDirect, long bounceLimit) {
        if (bounceLimit < ALIGN || bounceLimit % ALIGN != 0) throw new IllegalArgumentException("bounce buffer must be a multiple of " + ALIGN);
        this.path = shown;
        this.openPath = open;
        this.layout = layout;
        long maxSpan = 0;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int part = 0; part < 3; part++) maxSpan = Math.max(maxSpan, layout.partBytes(l, part) + 2 * ALIGN);
        }
        this.bounceBytes = Math.min(bounceLimit, roundUp(maxSpan));
        String p = openPath.toAbsolutePath().toString();
        if (!tryDirect) {
            try {
                fallBack("direct I/O not requested for " + path);
            } catch (NativeIo.NativeError e) {
                throw new IllegalArgumentException("cannot open " + path + ": " + e.getMessage());
            }
            return;
        }
        try {
            fd = NativeIo.open(p, NativeIo.O_RDONLY | NativeIo.O_DIRECT | NativeIo.O_CLOEXEC);
            direct = true;
        } catch (NativeIo.NativeError e) {
            if (e.errno != NativeIo.EINVAL) throw new IllegalArgumentException("cannot open " + path + " for direct reads: " + e.getMessage());
            fallBack("the filesystem of " + path + " refuses O_DIRECT (open: invalid argument)");
        }
    }

    /** Reopens without O_DIRECT: reads go through the page cache and the pages are dropped afterwards. */
    private synchronized void fallBack(String why) {
        if (note != null) return;
        int old = direct ? fd : -1;
        fd = NativeIo.open(openPath.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
        direct = false;
        note = why + "; reading through the page cache and dropping the pages after each read";
        if (old >= 0) NativeIo.close(old);
    }

    /** Whether reads really bypass the page cache. */
    public boolean isDirect() { return direct; }

    @Override public String name() { return "direct"; }
    @Override public ExpertLayout layout() { return layout; }
    @Override public String note() { return note; }

    @Override
    public void read(int layer, int expert, MemorySegment dst) {
        if (closed) throw new IllegalStateException("the direct store of " + path + " is closed");
        long need = layout.expertBytes(layer);
        if (dst.byteSize() < need) throw new IllegalArgumentException("buffer of " + dst.byteSize() + " bytes is smaller than expert " + layer + "/" + expert);
        Bounce b = bounces.pollFirst();
        if (b == null) b = new Bounce(arena.allocate(bounceBytes, ALIGN), NativeIo.newCallState(arena));
        try {
            long at = 0;
            for (int part = 0; part < 3; part++) {
                long n = layout.partBytes(layer, part);
                readRange(b, layout.fileOffset(layer, expert, part), n, dst, at);
                at += n;
            }
        } finally {
            bounces.addFirst(b);
        }
    }

    /** Copies file bytes [off, off+len) to dst[at..] through the aligned bounce buffer. */
    private void readRange(Bounce b, long off, long len, MemorySegment dst, long at) {
        long end = off + len;
        long pos = off & -ALIGN;
        while (pos < end) {
            long chunk = Math.min(bounceBytes, roundUp(end) - pos);
            long needed = Math.min(chunk, end - pos);
            readAtLeast(b, chunk, pos, needed);
            long from = Math.max(pos, off), to = Math.min(pos + chunk, end);
            MemorySegment.copy(b.buf(), from - pos, dst, at + (from - off), to - from);
            pos += chunk;
        }
    }

    private void readAtLeast(Bounce b, long chunk, long pos, long needed) {
        long got = 0;
        while (got < needed) {
            long r;
            try {
                r = NativeIo.pread(fd, b.buf().asSlice(got), chunk - got, pos + got, b.callState());
            } catch (NativeIo.NativeError e) {
                if (e.errno == NativeIo.EINVAL && direct) {
                    // Some filesystems accept the O_DIRECT open but refuse the reads.
                    fallBack("the filesystem of " + path + " refuses O_DIRECT reads (invalid argument)");
                    continue;
                }
                throw new IllegalStateException("reading " + path + " at offset " + (pos + got) + ": " + e.getMessage());
            }
            if (r == 0) throw new IllegalStateException(path + " ends at offset " + (pos + got) + ", before the expert bytes up to " + (pos + needed));
            got += r;
            // O_DIRECT continues only from aligned positions; a short read that is not aligned is the end of file.
            if (got < needed && direct && got % ALIGN != 0) {
                throw new IllegalStateException(path + ": short direct read (" + got + " of " + needed + " bytes at offset " + pos + ")");
            }
        }
        if (!direct) NativeIo.fadvise(fd, pos, chunk, NativeIo.POSIX_FADV_DONTNEED);
    }

    private static long roundUp(long v) {
        return (v + ALIGN - 1) & -ALIGN;
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        NativeIo.close(fd);
        arena.close();
    }
}
