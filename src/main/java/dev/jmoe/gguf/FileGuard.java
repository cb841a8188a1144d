package dev.jmoe.gguf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a mapped model file from changing under a run unnoticed.
 *
 * <p>Why: a mapped file that another process truncates makes every later read of the lost pages raise SIGBUS.
 * HotSpot turns that into an asynchronous {@code InternalError} only for code it marked as doing unsafe accesses;
 * the same fault in C2-compiled Vector API code kills the JVM with an hs_err file (both seen on this code). So
 * checking after the fact cannot be enough: the fault must not happen.
 *
 * <p>How, on Linux: the file is opened once more here and a read lease is taken on it ({@code F_SETLEASE}). Any
 * process that then opens the file for writing or truncates it is held by the kernel (up to
 * {@code /proc/sys/fs/lease-break-time}, 45 s by default) until the lease is given up. A watchdog thread notices the
 * pending break within {@link #LEASE_POLL_MS} ms, runs the owner's {@code onChange} (which closes the mapping's
 * shared arena: a handshake after which every access throws {@code IllegalStateException} instead of faulting) and
 * only then releases the lease, so the writer goes on against a file nobody maps any more. The lease's signal is
 * switched off ({@code F_SETOWN 0}) because the JVM has no handler for SIGIO, whose default action ends the process.
 *
 * <p>The file is reached through {@code /proc/self/fd/N} of that descriptor ({@link #stablePath()}), so the mapping and
 * every later reader (the expert stores) see the inode that was checked even if the path is replaced meanwhile.
 *
 * <p>Where no lease can be had (another user's file without CAP_LEASE, a network filesystem, a file someone already
 * has open for writing, not Linux), the watchdog compares size, modification time and inode every
 * {@link #STAT_POLL_MS} ms and reports a change; a fault in that window can still end the run, which the caller
 * turns into one line where the JVM lets it ({@link #describeChange}).
 */
final class FileGuard implements AutoCloseable {
    static final long LEASE_POLL_MS = 20;
    static final long STAT_POLL_MS = 250;

    /** Off in tests that need the fallback without a lease. */
    static volatile boolean leasesEnabled = !"false".equals(System.getProperty("jmoe.file.leases"));

    private final Path path;
    private final int fd;
    private final Path stable;
    private final Object fileKey;
    private final long size;
    private final FileTime modified;
    private final boolean leased;
    private final String noLeaseReason;
    private volatile Runnable onChange = () -> { };
    private volatile String change;
    private volatile boolean closed;
    private long nextStat;

    private FileGuard(Path path, int fd, Path stable, BasicFileAttributes a, boolean leased, String noLeaseReason) {
        this.path = path;
        this.fd = fd;
        this.stable = stable;
        this.fileKey = a.fileKey();
        this.size = a.size();
        this.modified = a.lastModifiedTime();
        this.leased = leased;
        this.noLeaseReason = noLeaseReason;
    }

    /**
     * Opens {@code path} (already checked to be a regular file) for guarding. The open is non-blocking, so a path
     * swapped for a FIFO after the check still cannot hang; the descriptor's own attributes are checked again.
     */
    static FileGuard open(Path path) throws IOException {
        if (!Native.AVAILABLE) {
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            return register(new FileGuard(path, -1, path, a, false, "file leases are only used on Linux"));
        }
        int fd = Native.open(path.toAbsolutePath().toString());
        try {
            Path stable = Path.of("/proc/self/fd/" + fd);
            BasicFileAttributes a = Files.readAttributes(stable, BasicFileAttributes.class);
            if (!a.isRegularFile()) throw new IOException(path + " is " + ModelFiles.kind(stable, a) + ", not a model file");
            String why = null;
            boolean leased = false;
            if (!leasesEnabled) why = "file leases are switched off (jmoe.file.leases=false)";
            else {
                int errno = Native.setReadLease(fd);
                if (errno == 0) leased = true;
                else why = switch (errno) {
                    case Native.EAGAIN -> "another process has the file open for writing";
                    case Native.EACCES, Native.EPERM -> "the file belongs to another user";
                    default -> "the filesystem does not support leases (errno " + errno + ")";
                };
            }
            return register(new FileGuard(path, fd, stable, a, leased, why));
        } catch (IOException | RuntimeException e) {
            Native.close(fd);
            throw e;
        }
    }

    private static FileGuard register(FileGuard g) {
        Watchdog.GUARDS.add(g);
        Watchdog.start();
        return g;
    }

    /** The path to open the guarded inode by: {@code /proc/self/fd/N} on Linux, else the path as given. */
    Path stablePath() {
        if (closed) throw new IllegalStateException(path + " is closed");
        return stable;
    }

    long size() { return size; }
    Object fileKey() { return fileKey; }
    boolean leased() { return leased; }
    /** Why the file is only watched, not leased (null when leased). */
    String noLeaseReason() { return noLeaseReason; }

    /** Runs {@code r} once if the file is found changing; it must stop every access to the mapping. */
    void onChange(Runnable r) { this.onChange = Objects.requireNonNull(r); }

    /** A sentence saying how the file changed, or null while it is intact. */
    String change() { return change; }

    /**
     * Looks at the file now (not waiting for the watchdog): returns the change sentence, or null when size,
     * modification time and inode are still those of the start. A file that changed is handled as the watchdog would.
     */
    String checkNow() {
        if (change != null || closed) return change;
        String c = leased ? (Native.leaseBroken(fd) ? writerMessage() : null) : statChange();
        if (c != null) changed(c);
        return change;
    }

    private String writerMessage() {
        return "model file " + path + " was opened for writing or truncated by another process while jmoe was using it;"
                + " jmoe stopped reading it (the other process was held until then)";
    }

    private String statChange() {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(stable, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            return "model file " + path + " disappeared while jmoe was using it";
        } catch (IOException e) {
            return null; // cannot tell; the next look may
        }
        String how = null;
        if (!Objects.equals(a.fileKey(), fileKey)) how = "was replaced by another file";
        else if (a.size() < size) how = "shrank from " + size + " to " + a.size() + " bytes";
        else if (a.size() != size) how = "grew from " + size + " to " + a.size() + " bytes";
        else if (!a.lastModifiedTime().equals(modified)) how = "was modified (time " + modified + " -> " + a.lastModifiedTime() + ")";
        return how == null ? null : "model file " + path + " " + how + " while jmoe was using it; a file must not change during a run";
    }

    private synchronized void changed(String c) {
        if (change != null || closed) return;
        change = c;
        try {
            onChange.run();
        } finally {
            release();
        }
    }

    /** Gives the lease up and closes the descriptor (the writer held by the lease goes on from here). */
    private void release() {
        Watchdog.GUARDS.remove(this);
        if (fd >= 0 && !closed) {
            closed = true;
            if (leased) Native.releaseLease(fd);
            Native.close(fd);
        }
        closed = true;
    }

    /** One poll of the watchdog. */
    private void poll(long now) {
        if (closed) return;
        if (leased) {
            if (Native.leaseBroken(fd)) changed(writerMessage());
        } else if (now >= nextStat) {
            nextStat = now + STAT_POLL_MS * 1_000_000L;
            String c = statChange();
            if (c != null) changed(c);
        }
    }

    /**
     * The message for a failure that reading the mapping ended in: the change sentence when the file changed (looked at
     * now), else null (the failure has another cause).
     */
    String describeChange() {
        return checkNow();
    }

    @Override
    public synchronized void close() {
        release();
    }

    /** One daemon thread polls every open guard: a lease break is seen within {@link #LEASE_POLL_MS} ms. */
    private static final class Watchdog {
        static final Set<FileGuard> GUARDS = ConcurrentHashMap.newKeySet();
        private static ScheduledExecutorService timer;

        static synchronized void start() {
            if (timer != null) return;
            timer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "jmoe-file-guard");
                t.setDaemon(true);
                return t;
            });
            timer.scheduleWithFixedDelay(() -> {
                long now = System.nanoTime();
                for (FileGuard g : GUARDS) {
                    try {
                        g.poll(now);
                    } catch (RuntimeException | Error e) {
                        // A guard that cannot be polled must not stop the others being watched.
                    }
                }
            }, LEASE_POLL_MS, LEASE_POLL_MS, TimeUnit.MILLISECONDS);
        }
    }

    /** open, fcntl and close through FFM (Linux). */
    private static final class Native {
        static final int EPERM = 1, EAGAIN = 11, EACCES = 13;
        private static final int O_RDONLY = 0, O_NONBLOCK = 04000, O_CLOEXEC = 02000000;
        private static final int F_SETOWN = 8, F_SETLEASE = 1024, F_GETLEASE = 1025, F_RDLCK = 0, F_UNLCK = 2;
        static final boolean AVAILABLE;
        private static final MethodHandle OPEN, FCNTL, CLOSE;
        private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
        private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

        static {
            MethodHandle open = null, fcntl = null, close = null;
            String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
            String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
            // The flag and command numbers above are those of the generic Linux ABI (x86-64, arm64, riscv64).
            boolean ok = os.contains("linux") && Set.of("amd64", "x86_64", "aarch64", "riscv64").contains(arch);
            if (ok) {
                try {
                    Linker l = Linker.nativeLinker();
                    Linker.Option errno = Linker.Option.captureCallState("errno");
                    open = l.downcallHandle(l.defaultLookup().find("open").orElseThrow(),
                            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), errno, Linker.Option.firstVariadicArg(2));
                    fcntl = l.downcallHandle(l.defaultLookup().find("fcntl").orElseThrow(),
                            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), errno, Linker.Option.firstVariadicArg(2));
                    close = l.downcallHandle(l.defaultLookup().find("close").orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
                } catch (RuntimeException | Error e) {
                    ok = false; // no native access (e.g. --enable-native-access missing): watch by polling only
                }
            }
            AVAILABLE = ok;
            OPEN = open;
            FCNTL = fcntl;
            CLOSE = close;
        }

        static int open(String path) throws IOException {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment state = a.allocate(CAPTURE);
                int fd = (int) OPEN.invokeExact(state, a.allocateFrom(path), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
                if (fd < 0) {
                    int errno = (int) ERRNO.get(state, 0L);
                    if (errno == 2) throw new NoSuchFileException(path);
                    throw new IOException("cannot open " + path + " (errno " + errno + (errno == EACCES ? ", permission denied" : "") + ")");
                }
                return fd;
            } catch (IOException e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException("open(" + path + ") could not be called: " + t, t);
            }
        }

        /** Returns 0 or errno. */
        private static int fcntl(int fd, int cmd, long arg, int[] result) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment state = a.allocate(CAPTURE);
                int r = (int) FCNTL.invokeExact(state, fd, cmd, arg);
                if (result != null) result[0] = r;
                return r < 0 ? (int) ERRNO.get(state, 0L) : 0;
            } catch (Throwable t) {
                return -1;
            }
        }

        static int setReadLease(int fd) {
            int errno = fcntl(fd, F_SETLEASE, F_RDLCK, null);
            if (errno != 0) return errno;
            // Taking a lease made this process the owner of its signal (SIGIO, which would end the JVM): no owner, no signal.
            int e = fcntl(fd, F_SETOWN, 0, null);
            if (e != 0) {
                releaseLease(fd);
                return e;
            }
            return 0;
        }

        /** Whether someone wants to write: the lease then reports the type it is being broken to. */
        static boolean leaseBroken(int fd) {
            int[] r = new int[1];
            return fcntl(fd, F_GETLEASE, 0, r) == 0 && r[0] != F_RDLCK;
        }

        static void releaseLease(int fd) {
            fcntl(fd, F_SETLEASE, F_UNLCK, null);
        }

        static void close(int fd) {
            try {
                int ignored = (int) CLOSE.invokeExact(fd);
            } catch (Throwable t) {
                // nothing left to do
            }
        }
    }
}
