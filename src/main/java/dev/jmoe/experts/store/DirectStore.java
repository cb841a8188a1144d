package dev.jmoe.experts.store;

import dev.jmoe.tensor.Tuning;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * Experts read from the GGUF file with direct I/O (O_DIRECT): no page cache, so resident memory really
 * is bounded by the expert budget and every load pays the storage device's real speed.
 * <p>
 * O_DIRECT requires the buffer address, the file offset and the length to be multiples of the device's
 * logical block size (probed at open: 512 or 4096). An expert is cut into pieces of at most {@link #PIECE_BYTES}.
 * Where the destination sits at the same offset modulo that alignment as the file bytes (fast-memory slots placed at
 * {@link #slotPhase}), the aligned interior of every part is read straight into it and only the partial blocks at
 * either end go through bounce buffers; elsewhere each piece is read into a bounce buffer and copied out.
 * <p>
 * Up to {@code outstanding} pieces are in flight at once, submitted together by the loading thread through Linux
 * native AIO (io_submit / io_getevents; O_DIRECT reads are truly asynchronous there): no helper threads to wake per
 * expert, which on a busy two-core machine cost more than the reads. Without AIO the pieces are read one by one.
 * Measured with {@link DirectReadProbe} on this project's machine (virtio disk, AMD EPYC Zen 4): 1 MiB reads reach
 * 1.50 GB/s alone and 1.52-1.64 GB/s two at a time, 4 MiB reads only 1.23-1.29 GB/s, 128 KiB reads 0.85-0.92 GB/s;
 * more than two in flight adds nothing there, but the small reads of part ends take slots too. Decode of the mid
 * Mixtral shape in a 400 MB cgroup (4 alternated rounds, 2 vCPUs at load 17-25): 4.30 t/s median straight into
 * slots, 3.43 with AIO and bounce copies, 3.84 with helper threads and bounce copies.
 * <p>
 * A filesystem that refuses O_DIRECT (tmpfs, some overlay or network filesystems answer EINVAL) is read
 * through the page cache instead, dropping the pages after each read; {@link #note()} says so.
 */
public final class DirectStore implements ExpertStore {
    static final long ALIGN = 4096;
    /** Largest single read (a multiple of ALIGN); see the class comment for the measurement behind it. */
    static final long PIECE_BYTES = 1L << 20;
    /** Reads in flight per expert load by default. */
    static final int OUTSTANDING = 4;

    private final Path path;
    /** What is opened: the inode checked and mapped at load (see ExpertStore#open), named as {@link #path} in messages. */
    private final Path openPath;
    private final ExpertLayout layout;
    private final Arena arena = Arena.ofShared();
    private final long pieceBytes;
    private final int outstanding;
    private final List<Integer> retiredFds = new ArrayList<>();
    /** One AIO context (or plain buffers) per loading thread: a context's completions are reaped by the thread that submitted. */
    private final ThreadLocal<Reader> readers = new ThreadLocal<>();
    private final List<Reader> allReaders = new ArrayList<>();
    /** The alignment direct reads really need here (512 or 4096), probed at open; ALIGN where unknown. */
    private long align = ALIGN;
    private volatile int fd;
    private volatile boolean direct;
    private volatile String note;
    private volatile boolean closed;
    private final LongAdder directBytes = new LongAdder();

    /**
     * One aligned read of the file and where its wanted bytes go: bounce [from - pos, to - pos) to dst at dstAt, or, for a
     * {@code direct} piece, the whole read straight into dst at dstAt (aligned there too: no copy).
     */
    private record Piece(long pos, long len, long from, long to, long dstAt, boolean direct) {}

    /**
     * The defaults, or -Djmoe.direct.outstanding=N and -Djmoe.direct.readKiB=K (a multiple of 4) for a disk whose best read
     * size or depth differs (DirectReadProbe finds them).
     */
    DirectStore(Path path, ExpertLayout layout) {
        this(path, path, layout);
    }

    /**
     * Opens {@code open} (the model's /proc/self/fd path: the inode that was checked and mapped, even if the name now points
     * at another file) and names {@code shown} in messages.
     */
    DirectStore(Path open, Path shown, ExpertLayout layout) {
        this(open, shown, layout, true, readBytesSetting(), Tuning.intSetting("jmoe.direct.outstanding", OUTSTANDING, 1));
    }

    /** -Djmoe.direct.readKiB in bytes (default {@link #PIECE_BYTES}), refused by name unless a multiple of {@link #ALIGN}. */
    static long readBytesSetting() {
        int kib = Tuning.intSetting("jmoe.direct.readKiB", (int) (PIECE_BYTES >> 10), (int) (ALIGN >> 10));
        if (kib % (ALIGN >> 10) != 0) {
            throw new IllegalArgumentException("-Djmoe.direct.readKiB=" + kib + ": the setting must be a multiple of " + (ALIGN >> 10));
        }
        return (long) kib << 10;
    }

    /** {@code tryDirect = false} goes straight to the page-cache fallback (tests; filesystems known to refuse). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect) {
        this(path, layout, tryDirect, PIECE_BYTES, OUTSTANDING);
    }

    /** {@code pieceLimit}: largest single read (a multiple of ALIGN). */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect, long pieceLimit) {
        this(path, layout, tryDirect, pieceLimit, OUTSTANDING);
    }

    /** {@code outstanding}: reads in flight per expert load. */
    DirectStore(Path path, ExpertLayout layout, boolean tryDirect, long pieceLimit, int outstanding) {
        this(path, path, layout, tryDirect, pieceLimit, outstanding);
    }

    private DirectStore(Path open, Path path, ExpertLayout layout, boolean tryDirect, long pieceLimit, int outstanding) {
        if (pieceLimit < ALIGN || pieceLimit % ALIGN != 0) throw new IllegalArgumentException("read size must be a multiple of " + ALIGN);
        if (outstanding < 1) throw new IllegalArgumentException("outstanding reads must be at least 1, got " + outstanding);
        this.path = path;
        this.openPath = open;
        this.layout = layout;
        this.outstanding = outstanding;
        long maxSpan = 0;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int part = 0; part < 3; part++) maxSpan = Math.max(maxSpan, layout.partBytes(l, part) + 2 * ALIGN);
        }
        this.pieceBytes = Math.min(pieceLimit, roundUp(maxSpan));
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
            return;
        }
        align = probeAlignment();
    }

    /**
     * Reopens without O_DIRECT: reads go through the page cache and the pages are dropped afterwards. The direct
     * descriptor stays open until {@link #close} because reads in flight may still use it.
     */
    private synchronized void fallBack(String why) {
        if (note != null) return;
        int old = direct ? fd : -1;
        fd = NativeIo.open(openPath.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
        direct = false;
        note = why + "; reading through the page cache and dropping the pages after each read";
        if (old >= 0) retiredFds.add(old);
    }

    /**
     * 512 if the device takes direct reads at 512-byte file offsets into 512-byte aligned memory (most disks' logical
     * block size), else 4096. Expert parts of a GGUF file agree more often modulo 512 than modulo 4096 (a 512-byte
     * norm vector shifts every later tensor), which decides whether loads can skip the bounce copy.
     */
    private long probeAlignment() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(2 * ALIGN, ALIGN).asSlice(512, 512);
            try {
                NativeIo.pread(fd, buf, 512, 512, NativeIo.newCallState(a));
                return 512;
            } catch (NativeIo.NativeError e) {
                return ALIGN;
            }
        }
    }

    /** The alignment direct reads need on this file's device (512 or 4096). */
    public long alignment() { return align; }

    /** Bytes read straight into destinations, without a bounce copy, since the store opened. */
    public long directBytes() { return directBytes.sum(); }

    /** Whether reads really bypass the page cache. */
    public boolean isDirect() { return direct; }

    /** Reads in flight per expert load. */
    public int outstanding() { return outstanding; }

    /** Whether loads submit their reads together through Linux AIO (else one after another). */
    public boolean asynchronous() { return reader().aioContext != 0; }

    @Override public String name() { return "direct"; }
    @Override public ExpertLayout layout() { return layout; }
    @Override public String note() { return note; }

    /**
     * Where fast-memory slots should start modulo the direct-read alignment (with a 4096-multiple stride) so that every
     * expert part lands at the same in-block offset as in the file, and loads can read straight into the slot: the
     * common offset, or -1 if the parts of this file do not share one.
     */
    @Override
    public long slotPhase() {
        if (!direct) return -1;
        long phase = -1;
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int e = 0; e < layout.nExpert(l); e++) {
                long at = 0;
                for (int part = 0; part < 3; part++) {
                    long r = Math.floorMod(layout.fileOffset(l, e, part) - at, align);
                    if (phase < 0) phase = r;
                    else if (r != phase) return -1;
                    at += layout.partBytes(l, part);
                }
            }
        }
        return phase;
    }

    @Override
    public void read(int layer, int expert, MemorySegment dst) {
        if (closed) throw new IllegalStateException("the direct store of " + path + " is closed");
        long need = layout.expertBytes(layer);
        if (dst.byteSize() < need) throw new IllegalArgumentException("buffer of " + dst.byteSize() + " bytes is smaller than expert " + layer + "/" + expert);
        List<Piece> pieces = new ArrayList<>();
        long at = 0;
        for (int part = 0; part < 3; part++) {
            long n = layout.partBytes(layer, part);
            cut(layout.fileOffset(layer, expert, part), n, at, dst, pieces);
            at += n;
        }
        Reader r = reader();
        if (r.aioContext != 0 && pieces.size() > 1) r.readAsync(pieces, dst);
        else for (Piece p : pieces) r.readSync(p, dst, 0);
    }

    /**
     * Splits file bytes [off, off+len), bound for dst[at..], into aligned reads of at most pieceBytes. Where the
     * destination sits at the same offset modulo the alignment as the file bytes, the aligned interior is read straight
     * into dst and only the partial blocks at either end go through a bounce buffer: a copy of every expert byte
     * (~150 MiB per token on the mid Mixtral shape) costs CPU that the forward pass needs on a two-core machine.
     */
    private void cut(long off, long len, long at, MemorySegment dst, List<Piece> out) {
        long end = off + len;
        long al = align;
        long a = (off + al - 1) & -al, b = end & -al;
        if (direct && dst.isNative() && Math.floorMod(dst.address() + at - off, al) == 0 && b - a >= al) {
            if (a > off) out.add(new Piece(off & -al, al, off, a, at, false));
            for (long pos = a; pos < b; pos += pieceBytes) {
                long n = Math.min(pieceBytes, b - pos);
                out.add(new Piece(pos, n, pos, pos + n, at + (pos - off), true));
            }
            if (b < end) out.add(new Piece(b, al, b, end, at + (b - off), false));
            return;
        }
        for (long pos = off & -ALIGN; pos < end; pos += pieceBytes) {
            long chunk = Math.min(pieceBytes, roundUp(end) - pos);
            long from = Math.max(pos, off), to = Math.min(pos + chunk, end);
            out.add(new Piece(pos, chunk, from, to, at + (from - off), false));
        }
    }

    private Reader reader() {
        Reader r = readers.get();
        if (r == null) {
            synchronized (this) {
                if (closed) throw new IllegalStateException("the direct store of " + path + " is closed");
                r = new Reader();
                allReaders.add(r);
            }
            readers.set(r);
        }
        return r;
    }

    /**
     * One loading thread's buffers and its AIO context (0 if the kernel offers none: reads are then made one at a
     * time). Twice {@code outstanding} slots (iocb, bounce buffer): while a bounced piece is copied out, its
     * replacement is already in flight in another slot. Full-size bounce buffers are allocated on first need (slots
     * at the store's phase only bounce the partial blocks at the ends of each part, in the small edge buffers).
     */
    private final class Reader {
        final Arena mem = Arena.ofShared();
        final int slots = 2 * outstanding;
        final MemorySegment edges = mem.allocate(ALIGN * slots, ALIGN);
        MemorySegment bounces; // slots x pieceBytes, allocated on first need
        final MemorySegment callState = NativeIo.newCallState(mem);
        final MemorySegment iocbs = mem.allocate(NativeIo.IOCB_BYTES * slots, 64);
        final MemorySegment pointers = mem.allocate(8L * slots, 8);
        final MemorySegment events = mem.allocate(NativeIo.EVENT_BYTES * slots, 64);
        final long aioContext;

        Reader() {
            long ctx = 0;
            if (outstanding > 1 && NativeIo.aioSupported()) {
                try {
                    ctx = NativeIo.ioSetup(slots, mem, callState);
                } catch (NativeIo.NativeError | IllegalStateException e) {
                    ctx = 0; // no AIO here (ENOSYS, or fs.aio-max-nr used up): synchronous reads still work
                }
            }
            aioContext = ctx;
        }

        /** The bounce buffer of slot {@code slot} for piece {@code p}. */
        MemorySegment bounce(int slot, Piece p) {
            if (p.len() <= ALIGN) return edges.asSlice(slot * ALIGN, ALIGN);
            if (bounces == null) bounces = mem.allocate(pieceBytes * slots, ALIGN);
            return bounces.asSlice(slot * pieceBytes, pieceBytes);
        }

        /** One piece with pread, through slot {@code slot}'s bounce buffer unless it goes straight into dst. */
        void readSync(Piece p, MemorySegment dst, int slot) {
            if (p.direct()) {
                readAtLeast(dst.asSlice(p.dstAt(), p.len()), callState, p.len(), p.pos(), p.len());
                directBytes.add(p.len());
            } else {
                MemorySegment b = bounce(slot, p);
                readAtLeast(b, callState, p.len(), p.pos(), p.to() - p.pos());
                MemorySegment.copy(b, p.from() - p.pos(), dst, p.dstAt(), p.to() - p.from());
            }
        }

        /**
         * All pieces, {@code outstanding} in flight: submit while reads may be added, copy out the bounced pieces reaped
         * last time (their successors are reading meanwhile), reap at least one completion, repeat. A piece the kernel
         * answers short or with an error is read again synchronously (which also covers a filesystem that takes
         * O_DIRECT opens but refuses the reads). Every submitted read is reaped before returning or throwing, so no
         * buffer is reused while the kernel may still write to it.
         */
        void readAsync(List<Piece> pieces, MemorySegment dst) {
            int n = pieces.size();
            int[] pieceOf = new int[slots], batchSlots = new int[slots], free = new int[slots], done = new int[slots];
            long[] result = new long[slots];
            int nFree = slots, nDone = 0;
            for (int i = 0; i < slots; i++) free[i] = slots - 1 - i;
            int next = 0, inflight = 0;
            RuntimeException failure = null;
            int fdNow = fd;
            while ((next < n && failure == null) || inflight > 0 || nDone > 0) {
                int batch = 0;
                while (failure == null && next < n && nFree > 0 && inflight + batch < outstanding) {
                    int slot = free[--nFree];
                    Piece p = pieces.get(next);
                    MemorySegment iocb = iocbs.asSlice(slot * NativeIo.IOCB_BYTES, NativeIo.IOCB_BYTES);
                    iocb.fill((byte) 0);
                    MemorySegment target = p.direct() ? dst.asSlice(p.dstAt(), p.len()) : bounce(slot, p);
                    iocb.set(ValueLayout.JAVA_LONG, NativeIo.IOCB_DATA, slot);
                    iocb.set(ValueLayout.JAVA_SHORT, NativeIo.IOCB_OPCODE, NativeIo.IOCB_CMD_PREAD);
                    iocb.set(ValueLayout.JAVA_INT, NativeIo.IOCB_FD, fdNow);
                    iocb.set(ValueLayout.JAVA_LONG, NativeIo.IOCB_BUF, target.address());
                    iocb.set(ValueLayout.JAVA_LONG, NativeIo.IOCB_NBYTES, p.len());
                    iocb.set(ValueLayout.JAVA_LONG, NativeIo.IOCB_OFFSET, p.pos());
                    batchSlots[batch] = slot;
                    pointers.setAtIndex(ValueLayout.JAVA_LONG, batch++, iocb.address());
                    pieceOf[slot] = next++;
                }
                int submitted = 0;
                while (submitted < batch) {
                    try {
                        submitted += (int) NativeIo.ioSubmit(aioContext, batch - submitted, pointers.asSlice(8L * submitted), callState);
                    } catch (NativeIo.NativeError e) {
                        // not taken: these are read synchronously below, as if they had failed
                        for (int k = submitted; k < batch; k++) {
                            result[batchSlots[k]] = -1;
                            done[nDone++] = batchSlots[k];
                        }
                        break;
                    }
                }
                inflight += submitted;
                // copy-outs and redos of what was reaped last time, while the reads just submitted run
                for (int k = 0; k < nDone; k++) {
                    int slot = done[k];
                    failure = complete(pieces.get(pieceOf[slot]), slot, result[slot], dst, failure);
                    free[nFree++] = slot;
                }
                nDone = 0;
                if (inflight == 0) continue;
                long got;
                try {
                    got = NativeIo.ioGetEvents(aioContext, 1, slots, events, callState);
                } catch (NativeIo.NativeError e) {
                    throw new IllegalStateException("waiting for direct reads of " + path + ": " + e.getMessage());
                }
                for (int k = 0; k < got; k++) {
                    int slot = (int) events.get(ValueLayout.JAVA_LONG, k * NativeIo.EVENT_BYTES + NativeIo.EVENT_DATA);
                    long res = events.get(ValueLayout.JAVA_LONG, k * NativeIo.EVENT_BYTES + NativeIo.EVENT_RES);
                    inflight--;
                    Piece p = pieces.get(pieceOf[slot]);
                    if (p.direct() && res == p.len()) {
                        directBytes.add(p.len()); // nothing to copy: the slot is free at once
                        free[nFree++] = slot;
                    } else {
                        result[slot] = res;
                        done[nDone++] = slot;
                    }
                }
            }
            if (failure != null) throw failure;
        }

        /** A finished read of {@code p} into slot {@code slot} ({@code res} bytes, or -errno): copy out or redo. Returns the first failure. */
        private RuntimeException complete(Piece p, int slot, long res, MemorySegment dst, RuntimeException failure) {
            if (failure != null) return failure;
            try {
                long needed = p.direct() ? p.len() : p.to() - p.pos();
                if (res < needed) {
                    if (res == -NativeIo.EINVAL && direct) fallBack("the filesystem of " + path + " refuses O_DIRECT reads (invalid argument)");
                    readSync(p, dst, slot); // short, failed or never submitted: once more, synchronously, with errors reported there
                    return null;
                }
                if (p.direct()) {
                    directBytes.add(p.len());
                } else {
                    MemorySegment.copy(bounce(slot, p), p.from() - p.pos(), dst, p.dstAt(), p.to() - p.from());
                }
                if (!direct) NativeIo.fadvise(fd, p.pos(), p.len(), NativeIo.POSIX_FADV_DONTNEED);
                return null;
            } catch (RuntimeException e) {
                return e;
            }
        }

        void close() {
            if (aioContext != 0) NativeIo.ioDestroy(aioContext, callState);
            mem.close();
        }
    }

    /** Reads at least {@code needed} (at most {@code chunk}) file bytes from {@code pos} into {@code buf}. */
    private void readAtLeast(MemorySegment buf, MemorySegment callState, long chunk, long pos, long needed) {
        long got = 0;
        while (got < needed) {
            long r;
            boolean wasDirect = direct;
            try {
                r = NativeIo.pread(fd, buf.asSlice(got), chunk - got, pos + got, callState);
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
            if (got < needed && wasDirect && got % align != 0) {
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
        for (Reader r : allReaders) r.close();
        NativeIo.close(fd);
        for (int old : retiredFds) NativeIo.close(old);
        arena.close();
    }
}
