package dev.jmoe.experts.store;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Locale;

/**
 * The few libc calls direct I/O needs (open, pread, close, posix_fadvise), through FFM downcalls, with
 * errno captured right after each call (the JVM may overwrite it before Java code could read it).
 */
final class NativeIo {
    private NativeIo() {}

    static final int O_RDONLY = 0;
    static final int EINTR = 4, EINVAL = 22;
    static final int POSIX_FADV_DONTNEED = 4;

    /** O_DIRECT differs between Linux architectures (asm-generic 040000; arm64 0200000; powerpc 0400000). */
    static final int O_DIRECT = switch (System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)) {
        case "aarch64", "arm" -> 0200000;
        case "ppc64", "ppc64le" -> 0400000;
        default -> 040000;
    };
    /** O_CLOEXEC is 02000000 on every Linux architecture jmoe runs on. */
    static final int O_CLOEXEC = 02000000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = LINKER.downcallHandle(LINKER.defaultLookup().find("pread").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().find("close").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FADVISE = LINKER.downcallHandle(LINKER.defaultLookup().find("posix_fadvise").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

    private static final MethodHandle MADVISE = LINKER.downcallHandle(LINKER.defaultLookup().find("madvise").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));

    static final int MADV_NORMAL = 0, MADV_RANDOM = 1;

    /** madvise over the pages of {@code seg} (page-aligned start, as a mapping is); returns 0 or -1 (advice only). */
    static int madvise(MemorySegment seg, int advice) {
        try {
            return (int) MADVISE.invokeExact(seg, seg.byteSize(), advice);
        } catch (Throwable t) {
            return -1;
        }
    }

    // ---------------------------------------------------------------- Linux native AIO (io_setup/io_submit/io_getevents)

    /** syscall(2): the AIO calls have no glibc wrappers. Extra arguments are ignored by calls that take fewer. */
    private static final MethodHandle SYSCALL = LINKER.downcallHandle(LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(1));

    /** Syscall numbers {io_setup, io_destroy, io_getevents, io_submit}, or null where unknown. */
    private static final long[] AIO_CALLS = switch (System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)) {
        case "amd64", "x86_64" -> new long[]{206, 207, 208, 209};
        case "aarch64", "riscv64" -> new long[]{0, 1, 4, 2}; // asm-generic
        default -> null;
    };

    /** struct iocb (64 bytes) and struct io_event (32 bytes) of linux/aio_abi.h, little-endian 64-bit layout. */
    static final long IOCB_BYTES = 64, EVENT_BYTES = 32;
    static final long IOCB_DATA = 0, IOCB_OPCODE = 16, IOCB_FD = 20, IOCB_BUF = 24, IOCB_NBYTES = 32, IOCB_OFFSET = 40;
    static final short IOCB_CMD_PREAD = 0;
    static final long EVENT_DATA = 0, EVENT_RES = 16;
    static final int EAGAIN = 11, ENOSYS = 38;

    static boolean aioSupported() {
        return AIO_CALLS != null && java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN;
    }

    private static long syscall(MemorySegment state, long nr, long a, long b, long c, long d, long e, String what) {
        while (true) {
            long r;
            try {
                r = (long) SYSCALL.invokeExact(state, nr, a, b, c, d, e);
            } catch (Throwable t) {
                throw new IllegalStateException(what + " could not be called: " + t, t);
            }
            if (r >= 0) return r;
            int errno = (int) ERRNO.get(state, 0L);
            if (errno != EINTR) throw new NativeError(what, errno);
        }
    }

    /** io_setup(maxEvents): a new AIO context (its id). */
    static long ioSetup(int maxEvents, Arena arena, MemorySegment state) {
        MemorySegment ctx = arena.allocate(JAVA_LONG);
        ctx.set(JAVA_LONG, 0, 0L);
        syscall(state, AIO_CALLS[0], maxEvents, ctx.address(), 0, 0, 0, "io_setup");
        return ctx.get(JAVA_LONG, 0);
    }

    static void ioDestroy(long ctx, MemorySegment state) {
        try {
            syscall(state, AIO_CALLS[1], ctx, 0, 0, 0, 0, "io_destroy");
        } catch (NativeError ignored) {
            // closing anyway
        }
    }

    /** io_submit of {@code n} iocb pointers; returns how many the kernel took (at least one, or an error). */
    static long ioSubmit(long ctx, long n, MemorySegment iocbPointers, MemorySegment state) {
        return syscall(state, AIO_CALLS[3], ctx, n, iocbPointers.address(), 0, 0, "io_submit");
    }

    /** io_getevents waiting for at least {@code min} of at most {@code max} completions (no timeout). */
    static long ioGetEvents(long ctx, long min, long max, MemorySegment events, MemorySegment state) {
        return syscall(state, AIO_CALLS[2], ctx, min, max, events.address(), 0, "io_getevents");
    }

    /** A failed call: the libc function and errno. */
    static final class NativeError extends RuntimeException {
        final int errno;

        NativeError(String call, int errno) {
            super(call + " failed: " + describe(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }
    }

    static String describe(int errno) {
        return switch (errno) {
            case 1 -> "operation not permitted";
            case 2 -> "no such file or directory";
            case 5 -> "input/output error";
            case 9 -> "bad file descriptor";
            case 13 -> "permission denied";
            case 14 -> "bad address";
            case EINVAL -> "invalid argument";
            case EAGAIN -> "resource temporarily unavailable";
            case ENOSYS -> "function not implemented";
            case 24 -> "too many open files";
            default -> "error";
        };
    }

    /** open(path, flags); returns the descriptor or throws NativeError with errno. */
    static int open(String path, int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment state = a.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(state, a.allocateFrom(path), flags, 0);
            if (fd < 0) throw new NativeError("open(" + path + ")", (int) ERRNO.get(state, 0L));
            return fd;
        } catch (NativeError e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("open(" + path + ") could not be called: " + t, t);
        }
    }

    /** One pread; returns bytes read (0 at end of file), retries EINTR, throws NativeError otherwise. */
    static long pread(int fd, MemorySegment buf, long count, long offset, MemorySegment state) {
        while (true) {
            long r;
            try {
                r = (long) PREAD.invokeExact(state, fd, buf, count, offset);
            } catch (Throwable t) {
                throw new IllegalStateException("pread could not be called: " + t, t);
            }
            if (r >= 0) return r;
            int errno = (int) ERRNO.get(state, 0L);
            if (errno != EINTR) throw new NativeError("pread(" + count + " bytes at " + offset + ")", errno);
        }
    }

    static MemorySegment newCallState(Arena arena) {
        return arena.allocate(CAPTURE);
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close could not be called: " + t, t);
        }
    }

    /** posix_fadvise; returns 0 or an error number (advice only: failures are harmless). */
    static int fadvise(int fd, long offset, long len, int advice) {
        try {
            return (int) FADVISE.invokeExact(fd, offset, len, advice);
        } catch (Throwable t) {
            return -1;
        }
    }
}
