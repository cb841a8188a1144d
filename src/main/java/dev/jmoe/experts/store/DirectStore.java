package dev.jmoe.experts.store;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Experts read from the GGUF file with direct I/O (O_DIRECT): no page cache, so resident memory really
 * is bounded by the expert budget and every load pays the storage device's real speed.
 * <p>
 * O_DIRECT requires the buffer address, the file offset and the length to be multiples of the device's
 * logical block size. Expert ranges start wherever GGUF's 32-byte alignment put them, so each range is read
 * as its block-aligned superset into aligned bounce buffers and the wanted bytes are copied out.
 * {@link #ALIGN} = 4096 covers both 512-byte and 4 KiB devices.
 * <p>
 * One expert is cut into pieces of at most {@link #PIECE_BYTES}, and up to {@code outstanding} of them are read
 * at once (the calling loader thread and {@code outstanding - 1} helper threads, each with its own bounce
 * buffer): the device always has a read queued while a finished piece is copied out. Measured with
 * {@link DirectReadProbe} on this project's machine (virtio disk, AMD EPYC Zen 4): 1 MiB reads reach 1.50 GB/s
 * alone and 1.52-1.64 GB/s two at a time, 4 MiB reads only 1.23-1.29 GB/s, 128 KiB reads 0.85-0.92 GB/s.
 * <p>
 * A filesystem that refuses O_DIRECT (tmpfs, some overlay or network filesystems answer EINVAL) is read
 * through the page cache instead, dropping the pages after each read; {@link #note()} says so.
 */
public final class DirectStore implements ExpertStore {
    static final long ALIGN = 4096;
    /** Largest single read (a multiple of ALIGN); see the class comment for the measurement behind it. */
    static final long PIECE_BYTES = 1L << 20;
    /** Reads in flight per expert load by default. */
    static final int OUTSTANDING = 2;

    private final Path path;
    private final ExpertLayout layout;
    private final Arena arena = Arena.ofShared();
    private final long pieceBytes;
    private final ConcurrentLinkedDeque<Bounce> bounces = new ConcurrentLinkedDeque<>();
    private final LinkedBlockingQueue<Request> helpWanted = new LinkedBlockingQueue<>();
    private final List<Thread> helpers = new ArrayList<>();
    private final List<Integer> retiredFds = new ArrayList<>();
    private volatile int fd;
    private volatile boolean direct;
    private volatile String note;
    private volatile boolean closed;

    private record Bounce(MemorySegment buf, MemorySegment callState) {}

    /** One aligned read of the file and where its wanted bytes go: bounce [from - pos, to - pos) to dst at dstAt. */
    private record Piece(long pos, long len, long from, long to, long dstAt) {}

    /** One expert's pieces, claimed one at a time by the caller and the helpers that join it. */
    private static final class Request {
        final Piece[] pieces;
        final MemorySegment dst;
        final AtomicInteger next = new AtomicInteger();
        final CountDownLatch done;
        final AtomicReference<RuntimeException> failure = new AtomicReference<>();

        Request(Piece[] pieces, MemorySegment dst) {
            this.pieces = pieces;
            this.dst = dst;
            this.done = new CountDownLatch(pieces.length);
        }
    }

    private static final Request STOP = new Request(new Piece[0], MemorySegment.NULL);

    DirectStore(Path path, ExpertLayout layout) {
        this(path, layout, true);
    }

    /** {@code tryDirect = false} goes straight to the page-cache fallback (tests; filesystems known to refuse). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect) {
        this(path, layout, tryDirect, PIECE_BYTES, OUTSTANDING);
    }

    /** {@code pieceLimit}: largest single read (a multiple of ALIGN). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect, long pieceLimit) {
        this(path, layout, tryDirect, pieceLimit, OUTSTANDING);
    }

    /** {@code outstanding}: reads in flight per expert (the caller plus outstanding - 1 helper threads). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect, long pieceLimit, int outstanding) {
        if (pieceLimit < ALIGN || pieceLimit % ALIGN != 0) throw new IllegalArgumentException("read size must be a multiple of " + ALIGN);
        if (outstanding < 1) throw new IllegalArgumentException("outstanding reads must be at least 1, got " + outstanding);
        this.path = path;
        this.layout = layout;
        long maxSpan = 0;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int part = 0; part < 3; part++) maxSpan = Math.max(maxSpan, layout.partBytes(l, part) + 2 * ALIGN);
        }
        this.pieceBytes = Math.min(pieceLimit, roundUp(maxSpan));
        String p = path.toAbsolutePath().toString();
        if (!tryDirect) {
            try {
                fallBack("direct I/O not requested for " + path);
            } catch (NativeIo.NativeError e) {
                throw new IllegalArgumentException("cannot open " + path + ": " + e.getMessage());
            }
        } else {
            try {
                fd = NativeIo.open(p, NativeIo.O_RDONLY | NativeIo.O_DIRECT | NativeIo.O_CLOEXEC);
                direct = true;
            } catch (NativeIo.NativeError e) {
                if (e.errno != NativeIo.EINVAL) throw new IllegalArgumentException("cannot open " + path + " for direct reads: " + e.getMessage());
                fallBack("the filesystem of " + path + " refuses O_DIRECT (open: invalid argument)");
            }
        }
        for (int i = 1; i < outstanding; i++) {
            Bounce own = new Bounce(arena.allocate(pieceBytes, ALIGN), NativeIo.newCallState(arena));
            helpers.add(Thread.ofPlatform().daemon().name("jmoe-direct-read-" + i).start(() -> helperLoop(own)));
        }
    }

    /**
     * Reopens without O_DIRECT: reads go through the page cache and the pages are dropped afterwards. The direct
     * descriptor stays open until {@link #close} because other pieces may still be reading through it.
     */
    private synchronized void fallBack(String why) {
        if (note != null) return;
        int old = direct ? fd : -1;
        fd = NativeIo.open(path.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
        direct = false;
        note = why + "; reading through the page cache and dropping the pages after each read";
        if (old >= 0) retiredFds.add(old);
    }

    /** Whether reads really bypass the page cache. */
    public boolean isDirect() { return direct; }

    /** Reads in flight per expert load. */
    public int outstanding() { return helpers.size() + 1; }

    @Override public String name() { return "direct"; }
    @Override public ExpertLayout layout() { return layout; }
    @Override public String note() { return note; }

    @Override
    public void read(int layer, int expert, MemorySegment dst) {
        if (closed) throw new IllegalStateException("the direct store of " + path + " is closed");
        long need = layout.expertBytes(layer);
        if (dst.byteSize() < need) throw new IllegalArgumentException("buffer of " + dst.byteSize() + " bytes is smaller than expert " + layer + "/" + expert);
        List<Piece> pieces = new ArrayList<>();
        long at = 0;
        for (int part = 0; part < 3; part++) {
            long n = layout.partBytes(layer, part);
            cut(layout.fileOffset(layer, expert, part), n, at, pieces);
            at += n;
        }
        // Helper threads write into dst too. A native segment of a confined arena (tests, callers' own buffers) is only
        // accessible from its owner, so helpers get a global view of the same memory: read() returns only after every
        // piece is done, so the memory outlives their writes. A heap segment has no such view and is read by the caller alone.
        MemorySegment target = dst.isNative() ? MemorySegment.ofAddress(dst.address()).reinterpret(dst.byteSize()) : dst;
        Request r = new Request(pieces.toArray(Piece[]::new), target);
        int help = dst.isNative() ? Math.min(helpers.size(), r.pieces.length - 1) : 0;
        for (int i = 0; i < help; i++) helpWanted.add(r);
        Bounce b = bounces.pollFirst();
        if (b == null) b = new Bounce(arena.allocate(pieceBytes, ALIGN), NativeIo.newCallState(arena));
        try {
            work(r, b);
        } finally {
            bounces.addFirst(b);
        }
        try {
            r.done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading expert " + layer + "/" + expert + " from " + path);
        }
        RuntimeException f = r.failure.get();
        if (f != null) throw f;
    }

    /** Splits file bytes [off, off+len), bound for dst[at..], into aligned reads of at most pieceBytes. */
    private void cut(long off, long len, long at, List<Piece> out) {
        long end = off + len;
        for (long pos = off & -ALIGN; pos < end; pos += pieceBytes) {
            long chunk = Math.min(pieceBytes, roundUp(end) - pos);
            long from = Math.max(pos, off), to = Math.min(pos + chunk, end);
            out.add(new Piece(pos, chunk, from, to, at + (from - off)));
        }
    }

    /** Claims and reads pieces of {@code r} until none is left. */
    private void work(Request r, Bounce b) {
        int i;
        while ((i = r.next.getAndIncrement()) < r.pieces.length) {
            Piece p = r.pieces[i];
            try {
                if (r.failure.get() == null) {
                    readAtLeast(b, p.len(), p.pos(), p.to() - p.pos());
                    MemorySegment.copy(b.buf(), p.from() - p.pos(), r.dst, p.dstAt(), p.to() - p.from());
                }
            } catch (RuntimeException e) {
                r.failure.compareAndSet(null, e);
            } finally {
                r.done.countDown();
            }
        }
    }

    private void helperLoop(Bounce own) {
        while (true) {
            Request r;
            try {
                r = helpWanted.take();
            } catch (InterruptedException e) {
                return;
            }
            if (r == STOP) return;
            work(r, own);
        }
    }

    private void readAtLeast(Bounce b, long chunk, long pos, long needed) {
        long got = 0;
        while (got < needed) {
            long r;
            boolean wasDirect = direct;
            try {
                r = NativeIo.pread(fd, b.buf().asSlice(got), chunk - got, pos + got, b.callState());
            } catch (NativeIo.NativeError e) {
                if (e.errno == NativeIo.EINVAL && wasDirect) {
                    // Some filesystems accept the O_DIRECT open but refuse the reads.
                    fallBack("the filesystem of " + path + " refuses O_DIRECT reads (invalid argument)");
                    continue;
                }
                throw new IllegalStateException("reading " + path + " at offset " + (pos + got) + ": " + e.getMessage());
            }
            if (r == 0) throw new IllegalStateException(path + " ends at offset " + (pos + got) + ", before the expert bytes up to " + (pos + needed));
            got += r;
            // O_DIRECT continues only from aligned positions; a short read that is not aligned is the end of file.
            if (got < needed && wasDirect && got % ALIGN != 0) {
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
        for (int i = 0; i < helpers.size(); i++) helpWanted.add(STOP);
        for (Thread t : helpers) {
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        NativeIo.close(fd);
        for (int old : retiredFds) NativeIo.close(old);
        arena.close();
    }
}
