package dev.jmoe.experts.store;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What O_DIRECT reads of a file's device reach: {@code outstanding} threads each keep one aligned pread of
 * {@code readBytes} in flight over a byte range, claiming the next piece as they finish (the pattern a store's
 * parallel expert load makes). The I/O bound of an offloaded run is bytes it must read ÷ this rate, so the bench
 * measures it in the same run as the decode speed it compares with.
 * <p>
 * {@code main(file [outstanding,... [sizeKiB,...]])} prints a grid of raw reads, {@code main(store file ...)} the same
 * grid of expert loads through {@link DirectStore}, to choose its read size and depth.
 */
public final class DirectReadProbe {
    private DirectReadProbe() {}

    /** One measurement: bytes read, seconds, and the rate. */
    public record Rate(int outstanding, long readBytes, long bytes, double seconds) {
        public double bytesPerSecond() { return bytes / seconds; }

        @Override public String toString() {
            return String.format(Locale.ROOT, "%d x %d KiB: %.2f GB/s", outstanding, readBytes >> 10, bytesPerSecond() / 1e9);
        }
    }

    /**
     * Reads [from, to) of {@code file} once with O_DIRECT; {@code readBytes} is a multiple of 4096. Throws if the
     * filesystem refuses O_DIRECT (there is no device rate to measure then).
     */
    public static Rate measure(Path file, long from, long to, int outstanding, long readBytes) {
        if (outstanding < 1) throw new IllegalArgumentException("outstanding reads must be at least 1, got " + outstanding);
        if (readBytes < DirectStore.ALIGN || readBytes % DirectStore.ALIGN != 0) {
            throw new IllegalArgumentException("read size must be a positive multiple of " + DirectStore.ALIGN + ", got " + readBytes);
        }
        long start = from & -DirectStore.ALIGN;
        long end = Math.min(to, fileSize(file)) & -DirectStore.ALIGN;
        if (end <= start) throw new IllegalArgumentException("nothing to read in " + file + " between " + from + " and " + to);
        int fd;
        try {
            fd = NativeIo.open(file.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_DIRECT | NativeIo.O_CLOEXEC);
        } catch (NativeIo.NativeError e) {
            throw new IllegalArgumentException("cannot open " + file + " with O_DIRECT: " + e.getMessage());
        }
        AtomicLong next = new AtomicLong(start);
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        try (Arena arena = Arena.ofShared()) {
            List<Thread> threads = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int i = 0; i < outstanding; i++) {
                MemorySegment buf = arena.allocate(readBytes, DirectStore.ALIGN);
                MemorySegment state = NativeIo.newCallState(arena);
                threads.add(Thread.ofPlatform().name("jmoe-read-probe-" + i).start(() -> {
                    try {
                        long pos;
                        while ((pos = next.getAndAdd(readBytes)) < end) {
                            long n = Math.min(readBytes, end - pos);
                            if (NativeIo.pread(fd, buf, n, pos, state) <= 0) throw new IllegalStateException(file + " ended at " + pos);
                        }
                    } catch (RuntimeException e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread t : threads) t.join();
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (failure.get() != null) throw new IllegalStateException("direct reads of " + file + " failed: " + failure.get().getMessage(), failure.get());
            return new Rate(outstanding, readBytes, end - start, seconds);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring " + file);
        } finally {
            NativeIo.close(fd);
        }
    }

    /**
     * The disk's rate for the access pattern of expert loads, without any store logic: every expert part's aligned byte
     * range once, the parts in a shuffled order (seeded), {@code outstanding} threads each reading one range at a time
     * in reads of {@code readBytes} into a private buffer. On a virtual disk whose host reads ahead, this is lower than
     * the sequential {@link #measure} rate, and it is the rate expert loads can reach.
     */
    public static Rate measureExpertRanges(Path file, ExpertLayout layout, int outstanding, long readBytes, long seed) {
        List<long[]> ranges = new ArrayList<>();
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int e = 0; e < layout.nExpert(l); e++) {
                for (int part = 0; part < 3; part++) {
                    long off = layout.fileOffset(l, e, part);
                    ranges.add(new long[]{off & -DirectStore.ALIGN, (off + layout.partBytes(l, part) + DirectStore.ALIGN - 1) & -DirectStore.ALIGN});
                }
            }
        }
        java.util.Collections.shuffle(ranges, new java.util.Random(seed));
        int fd;
        try {
            fd = NativeIo.open(file.toAbsolutePath().toString(), NativeIo.O_RDONLY | NativeIo.O_DIRECT | NativeIo.O_CLOEXEC);
        } catch (NativeIo.NativeError e) {
            throw new IllegalArgumentException("cannot open " + file + " with O_DIRECT: " + e.getMessage());
        }
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        AtomicLong bytes = new AtomicLong();
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        try (Arena arena = Arena.ofShared()) {
            List<Thread> threads = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int i = 0; i < outstanding; i++) {
                MemorySegment buf = arena.allocate(readBytes, DirectStore.ALIGN);
                MemorySegment state = NativeIo.newCallState(arena);
                threads.add(Thread.ofPlatform().name("jmoe-read-probe-" + i).start(() -> {
                    try {
                        int k;
                        while ((k = next.getAndIncrement()) < ranges.size()) {
                            long[] r = ranges.get(k);
                            for (long pos = r[0]; pos < r[1]; pos += readBytes) {
                                long n = Math.min(readBytes, r[1] - pos);
                                long got = NativeIo.pread(fd, buf, n, pos, state);
                                if (got <= 0) throw new IllegalStateException(file + " ended at " + pos);
                                bytes.addAndGet(got);
                            }
                        }
                    } catch (RuntimeException e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread t : threads) t.join();
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (failure.get() != null) throw new IllegalStateException("direct reads of " + file + " failed: " + failure.get().getMessage(), failure.get());
            return new Rate(outstanding, readBytes, bytes.get(), seconds);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring " + file);
        } finally {
            NativeIo.close(fd);
        }
    }

    private static long fileSize(Path file) {
        try {
            return Files.size(file);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage());
        }
    }

    /**
     * Every expert of the model read once through a {@link DirectStore} with the given read size and depth, in a
     * shuffled order, into one slot placed as the cache places it (at the store's {@link DirectStore#slotPhase}, or
     * 4096-aligned with {@code phased} false): the rate an expert load reaches.
     */
    public static Rate measureStore(dev.jmoe.model.Model model, int outstanding, long readBytes, long seed, boolean phased) {
        ExpertLayout layout = ExpertLayout.of(model);
        java.util.List<int[]> order = new ArrayList<>();
        for (int l = 0; l < layout.layerCount(); l++) {
            if (!layout.hasExperts(l)) continue;
            for (int e = 0; e < layout.nExpert(l); e++) order.add(new int[]{l, e});
        }
        java.util.Collections.shuffle(order, new java.util.Random(seed));
        try (DirectStore store = new DirectStore(model.file().path(), layout, true, readBytes, outstanding); Arena arena = Arena.ofShared()) {
            if (!store.isDirect()) throw new IllegalArgumentException(store.note());
            long phase = phased ? Math.max(0, store.slotPhase()) : 0;
            MemorySegment slot = arena.allocate(layout.maxExpertBytes() + DirectStore.ALIGN, DirectStore.ALIGN).asSlice(phase, layout.maxExpertBytes());
            long bytes = 0, t0 = System.nanoTime();
            for (int[] le : order) {
                store.read(le[0], le[1], slot);
                bytes += layout.expertBytes(le[0]);
            }
            return new Rate(outstanding, readBytes, bytes, (System.nanoTime() - t0) / 1e9);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("store")) {
            // store FILE [OUTSTANDING,...] [SIZE_KIB,...] [ROUNDS]: per configuration, raw reads of the file, expert loads
            // into a slot at the store's phase (no copy) and into a 4096-aligned slot (bounce copies), alternated
            Path file = Path.of(args[1]);
            try (dev.jmoe.gguf.GgufFile f = dev.jmoe.gguf.GgufFile.open(file)) {
                dev.jmoe.model.Model m = dev.jmoe.model.Model.load(f);
                int[] depths = parse(args.length > 2 ? args[2] : "1,2,3");
                int[] sizes = parse(args.length > 3 ? args[3] : "512,1024,2048,4096");
                int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 1;
                long size = fileSize(file);
                for (int r = 0; r < rounds; r++) {
                    for (int d : depths) {
                        for (int s : sizes) {
                            System.out.println("round " + r + " raw   " + measure(file, 0, size, d, (long) s << 10));
                            System.out.println("round " + r + " parts " + measureExpertRanges(file, ExpertLayout.of(m), d, (long) s << 10, r));
                            System.out.println("round " + r + " slot  " + measureStore(m, d, (long) s << 10, r, true));
                            System.out.println("round " + r + " copy  " + measureStore(m, d, (long) s << 10, r, false));
                        }
                    }
                }
            }
            return;
        }
        if (args.length < 1) {
            System.err.println("usage: DirectReadProbe FILE [OUTSTANDING,...] [SIZE_KIB,...] [ROUNDS]");
            System.exit(2);
        }
        Path file = Path.of(args[0]);
        int[] depths = parse(args.length > 1 ? args[1] : "1,2,4,8");
        int[] sizes = parse(args.length > 2 ? args[2] : "256,1024,4096");
        int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 1;
        long size = fileSize(file);
        for (int r = 0; r < rounds; r++) {
            // alternate configurations within a round so that a busy moment of the shared disk spreads over all of them
            for (int d : depths) {
                for (int s : sizes) System.out.println("round " + r + " " + measure(file, 0, size, d, (long) s << 10));
            }
        }
    }

    private static int[] parse(String csv) {
        return java.util.Arrays.stream(csv.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
    }
}
