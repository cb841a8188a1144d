package dev.jmoe.experts.store;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * File access for runs that must stay inside a memory limit: advice on the model's mapping, and copies of file
 * bytes into process memory that leave nothing behind in the page cache (a memory cgroup charges page cache to
 * the process that caused it).
 */
public final class FileAccess {
    private FileAccess() {}

    /**
     * No read-around on faults of {@code mapping}: on this project's disk the kernel reads 8 MiB around every faulting
     * page (read_ahead_kb = 8192), so reading a few norm vectors through the mapping pulled ~110 MiB of expert bytes
     * into the page cache of an offloaded run. Returns whether the kernel took the advice.
     */
    public static boolean adviseRandom(MemorySegment mapping) {
        return mapping.byteSize() > 0 && NativeIo.madvise(mapping, NativeIo.MADV_RANDOM) == 0;
    }

    /** The kernel's default read-around again (a resident run reads its weights through the mapping). */
    public static boolean adviseNormal(MemorySegment mapping) {
        return mapping.byteSize() > 0 && NativeIo.madvise(mapping, NativeIo.MADV_NORMAL) == 0;
    }

    /** Drops {@code file}'s clean pages from the page cache (a cold start for a fair measurement); returns whether it could. */
    public static boolean dropCache(Path file) {
        try {
            int fd = NativeIo.open(file.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
            try {
                return NativeIo.fadvise(fd, 0, 0, NativeIo.POSIX_FADV_DONTNEED) == 0;
            } finally {
                NativeIo.close(fd);
            }
        } catch (NativeIo.NativeError e) {
            return false;
        }
    }

    /**
     * Reads ranges of one file into memory without leaving them in the page cache: with O_DIRECT through an aligned
     * bounce buffer, or — where the filesystem refuses O_DIRECT — through the page cache, dropping the pages after.
     */
    public static final class Copier implements AutoCloseable {
        private static final long BOUNCE = DirectStore.PIECE_BYTES;
        private final Path path;
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment bounce = arena.allocate(BOUNCE, DirectStore.ALIGN);
        private final MemorySegment state = NativeIo.newCallState(arena);
        private int fd;
        private boolean direct;

        public Copier(Path path) {
            this.path = path;
            String p = path.toAbsolutePath().toString();
            try {
                fd = NativeIo.open(p, NativeIo.O_RDONLY | NativeIo.O_DIRECT | NativeIo.O_CLOEXEC);
                direct = true;
            } catch (NativeIo.NativeError e) {
                if (e.errno != NativeIo.EINVAL) {
                    arena.close();
                    throw new IllegalArgumentException("cannot open " + path + ": " + e.getMessage());
                }
                fd = NativeIo.open(p, NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
            }
        }

        /** Copies file bytes [offset, offset + dst.byteSize()) into dst. */
        public void copy(long offset, MemorySegment dst) {
            long end = offset + dst.byteSize();
            for (long pos = offset & -DirectStore.ALIGN; pos < end; pos += BOUNCE) {
                long want = Math.min(BOUNCE, end - pos);
                long got = 0;
                while (got < want) {
                    long ask = direct ? ((want - got + DirectStore.ALIGN - 1) & -DirectStore.ALIGN) : want - got;
                    long r;
                    try {
                        r = NativeIo.pread(fd, bounce.asSlice(got), Math.min(ask, BOUNCE - got), pos + got, state);
                    } catch (NativeIo.NativeError e) {
                        if (direct && e.errno == NativeIo.EINVAL) {
                            NativeIo.close(fd);
                            fd = NativeIo.open(path.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_CLOEXEC);
                            direct = false;
                            continue;
                        }
                        throw new IllegalStateException("reading " + path + " at offset " + (pos + got) + ": " + e.getMessage());
                    }
                    if (r == 0) throw new IllegalStateException(path + " ends at offset " + (pos + got) + ", before byte " + end);
                    got += r;
                }
                if (!direct) NativeIo.fadvise(fd, pos, want, NativeIo.POSIX_FADV_DONTNEED);
                long from = Math.max(pos, offset), to = Math.min(pos + want, end);
                MemorySegment.copy(bounce, from - pos, dst, from - offset, to - from);
            }
        }

        /** Whether the copies bypass the page cache. */
        public boolean isDirect() { return direct; }

        @Override
        public void close() {
            NativeIo.close(fd);
            arena.close();
        }
    }
}
