package dev.jmoe.experts.store;

import dev.jmoe.experts.Registry;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The path from the store into fast memory, optionally throttled to an emulated bandwidth and latency so
 * that a GPU's PCIe link or an edge device's eMMC can be reproduced on this machine. Each transfer really
 * happens (the bytes are read or copied); the throttle then waits until {@code latency + bytes/bandwidth}
 * has passed since the transfer could start. Bandwidth is one shared medium: concurrent transfers queue
 * for it (a reservation clock), while latencies overlap as they would on a real queue-depth &gt; 1 link.
 * <p>
 * {@code slowCompute} is how much slower the slow side (host CPU, or the edge device's CPU next to its
 * accelerator) computes than the fast side; on this CPU-only machine both sides are the same cores, so
 * slow-side compute is stretched by this ratio, otherwise it would look free.
 *
 * @param bytesPerSecond emulated bandwidth, or +∞ for no throttle
 * @param latencyNanos   emulated per-transfer latency
 * @param slowCompute    slow-side compute time ÷ fast-side compute time (≥ 1)
 */
public record Link(String name, double bytesPerSecond, long latencyNanos, double slowCompute) {
    /**
     * Slowest bandwidth and longest latency a link may emulate. Every transfer really sleeps for its emulated time, so a
     * typo such as {@code 1000s} for {@code 1000us} would stall each expert load for a quarter of an hour; these bounds
     * sit three orders of magnitude beyond the slowest real device in {@link #PRESETS} (an SD card: 80 MB/s, 1 ms).
     */
    public static final double MIN_BYTES_PER_SECOND = 100_000;
    public static final long MAX_LATENCY_NANOS = 1_000_000_000L;

    public Link {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("link name is required");
        if (!(bytesPerSecond > 0)) throw new IllegalArgumentException("link bandwidth must be positive, got " + bytesPerSecond);
        if (bytesPerSecond < MIN_BYTES_PER_SECOND) {
            throw new IllegalArgumentException("--link bandwidth " + bytesPerSecond + " B/s is below the slowest link jmoe emulates ("
                    + (long) MIN_BYTES_PER_SECOND + " B/s = 100kB/s): each expert load would sleep for minutes");
        }
        if (latencyNanos < 0) throw new IllegalArgumentException("link latency must be >= 0, got " + latencyNanos);
        if (latencyNanos > MAX_LATENCY_NANOS) {
            throw new IllegalArgumentException("--link latency " + latencyNanos / 1e6 + " ms is above the longest jmoe emulates (1 s):"
                    + " every expert load would sleep that long; did you mean us or ms?");
        }
        if (!(slowCompute >= 1) || Double.isInfinite(slowCompute)) {
            throw new IllegalArgumentException("slow-compute ratio must be a finite number >= 1, got " + slowCompute);
        }
    }

    /** No throttle: transfers run at the machine's real speed; slow-side compute is not stretched. */
    public static final Link UNLIMITED = new Link("unlimited", Double.POSITIVE_INFINITY, 0, 1);

    /**
     * Presets with documented figures ({@code --link NAME}), registered once: PCIe 3.0/4.0 x16 are ~16/32 GB/s raw and
     * ~12/24 GB/s achieved host-to-device; an NVMe SSD reads ~3 GB/s sequentially with ~80 µs access latency; eMMC 5.1
     * ~250 MB/s; a UHS-I SD card ~80 MB/s with millisecond latencies. The slow-compute ratio is the host CPU against the
     * accelerator: ~10× for a desktop GPU (the figure SMoE and Fiddler report), ~4× for an edge SoC's CPU against its
     * GPU/NPU.
     */
    public static final Registry<Link> PRESETS = new Registry<>("link preset", "--link");

    static {
        PRESETS.register("unlimited", "no throttle: the machine's real speed, slow-side compute not stretched", UNLIMITED);
        preset("pcie4x16", 24e9, 10_000, 10, "a desktop GPU's PCIe 4.0 x16 link");
        preset("pcie3x16", 12e9, 10_000, 10, "a desktop GPU's PCIe 3.0 x16 link");
        preset("nvme", 3e9, 80_000, 10, "an NVMe SSD");
        preset("emmc", 250e6, 200_000, 4, "an edge board's eMMC 5.1");
        preset("sdcard", 80e6, 1_000_000, 4, "a UHS-I SD card");
    }

    private static void preset(String name, double bytesPerSecond, long latencyNanos, double slowCompute, String what) {
        Link l = new Link(name, bytesPerSecond, latencyNanos, slowCompute);
        PRESETS.register(name, String.format(Locale.ROOT, "%s: %s, %s latency, slow side %.0fx", what, rate(bytesPerSecond),
                latencyNanos >= 1_000_000 ? latencyNanos / 1_000_000 + " ms" : latencyNanos / 1000 + " us", slowCompute), l);
    }

    /** The preset names, comma-separated, for messages. */
    static String presetNames() {
        return String.join(", ", PRESETS.names());
    }

    private static String rate(double bps) {
        return bps >= 1e9 ? String.format(Locale.ROOT, "%.0f GB/s", bps / 1e9) : String.format(Locale.ROOT, "%.0f MB/s", bps / 1e6);
    }

    private static final Pattern SPEC = Pattern.compile(
            "\\s*([0-9]*\\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\\s*([kKmMgGtT]?)(i?)([bB])(?:/s|ps)\\s*(?:,\\s*([0-9]*\\.?[0-9]+)\\s*(ns|us|µs|ms|s))?\\s*");

    /**
     * Parses {@code BANDWIDTH[,LATENCY]} (e.g. {@code 2GB/s,50us}, {@code 500MiB/s}, {@code 1.5GB/s,1ms}) or a preset
     * name. A spec without a preset has a slow-compute ratio of 1 unless given separately.
     */
    public static Link parse(String spec) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("--link needs BANDWIDTH,LATENCY or a preset (" + presetNames() + ")");
        Registry.Entry<Link> preset = PRESETS.find(spec);
        if (preset != null) return preset.value();
        Matcher m = SPEC.matcher(spec);
        if (!m.matches()) {
            throw new IllegalArgumentException("cannot parse --link '" + spec + "': expected BANDWIDTH[,LATENCY] such as 2GB/s,50us or 500MiB/s,1ms,"
                    + " or a preset: " + presetNames());
        }
        double v = Double.parseDouble(m.group(1));
        boolean binary = !m.group(3).isEmpty();
        double unit = switch (m.group(2).toLowerCase(Locale.ROOT)) {
            case "k" -> binary ? 1024.0 : 1e3;
            case "m" -> binary ? 1024.0 * 1024 : 1e6;
            case "g" -> binary ? 1024.0 * 1024 * 1024 : 1e9;
            case "t" -> binary ? 1024.0 * 1024 * 1024 * 1024 : 1e12;
            default -> 1;
        };
        if (m.group(4).equals("b")) unit /= 8; // bits
        double bps = v * unit;
        if (!(bps > 0)) throw new IllegalArgumentException("--link bandwidth must be positive: '" + spec + "'");
        // "1e400GB/s" parses to infinity, which would silently mean "no throttle".
        if (Double.isInfinite(bps)) throw new IllegalArgumentException("--link bandwidth '" + spec + "' is too large; use 'unlimited' for no throttle");
        long lat = 0;
        if (m.group(5) != null) {
            double l = Double.parseDouble(m.group(5));
            double ns = l * switch (m.group(6)) {
                case "ns" -> 1.0;
                case "us", "µs" -> 1e3;
                case "ms" -> 1e6;
                default -> 1e9;
            };
            // Checked as a double: Math.round would clamp an absurd latency to Long.MAX_VALUE first.
            if (ns > MAX_LATENCY_NANOS) {
                throw new IllegalArgumentException("--link latency in '" + spec + "' is above the longest jmoe emulates (1 s):"
                        + " every expert load would sleep that long; did you mean us or ms?");
            }
            lat = Math.round(ns);
        }
        return new Link(spec.trim(), bps, lat, 1);
    }

    /** Parses a slow-compute ratio such as {@code 10x}, {@code 10} or {@code 2.5x}. */
    public static double parseRatio(String s) {
        String t = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("x")) t = t.substring(0, t.length() - 1);
        try {
            double r = Double.parseDouble(t);
            if (!(r >= 1) || Double.isInfinite(r)) throw new NumberFormatException();
            return r;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--slow-compute must be a ratio >= 1 such as 10x, got '" + s + "'");
        }
    }

    public Link withSlowCompute(double ratio) {
        return new Link(name, bytesPerSecond, latencyNanos, ratio);
    }

    public boolean throttled() { return !Double.isInfinite(bytesPerSecond) || latencyNanos > 0; }

    /** The emulated duration of moving {@code bytes}: latency + bytes / bandwidth (0 when unlimited). */
    public long nanosFor(long bytes) {
        double wire = Double.isInfinite(bytesPerSecond) ? 0 : bytes * 1e9 / bytesPerSecond;
        return latencyNanos + (long) Math.ceil(wire);
    }

    @Override
    public String toString() {
        if (!throttled()) return name;
        return String.format(Locale.ROOT, "%s (%.3g GB/s, %d us, slow compute %.3gx)", name, bytesPerSecond / 1e9, latencyNanos / 1000,
                slowCompute);
    }

    /**
     * A link in use: performs transfers, throttles them and counts the bytes really moved. Thread-safe;
     * shared by all loader threads so that they share the emulated bandwidth.
     */
    public static final class Channel {
        private final Link link;
        private final AtomicLong bytes = new AtomicLong();
        private final AtomicLong transfers = new AtomicLong();
        private final AtomicLong busyNanos = new AtomicLong();
        private long wireFreeAt; // System.nanoTime() when the emulated wire is free again (guarded by this)

        public Channel(Link link) {
            if (link == null) throw new IllegalArgumentException("link is required");
            this.link = link;
        }

        public Link link() { return link; }

        /**
         * Runs {@code transfer} (which really moves {@code bytes}) and returns no earlier than the emulated link
         * would have delivered them: latency + queueing behind earlier transfers + bytes / bandwidth.
         */
        public void transfer(long bytes, Runnable transfer) {
            if (bytes < 0) throw new IllegalArgumentException("bytes must be >= 0");
            long start = System.nanoTime();
            long due;
            if (link.throttled()) {
                long wire = link.nanosFor(bytes) - link.latencyNanos();
                synchronized (this) {
                    long begin = Math.max(start, wireFreeAt);
                    wireFreeAt = begin + wire;
                    due = wireFreeAt + link.latencyNanos();
                }
            } else {
                due = start;
            }
            transfer.run();
            this.bytes.addAndGet(bytes);
            transfers.incrementAndGet();
            waitUntil(due);
            busyNanos.addAndGet(System.nanoTime() - start);
        }

        /** Bytes moved through this link so far. */
        public long bytes() { return bytes.get(); }

        public long transfers() { return transfers.get(); }

        /** Total wall time spent inside transfers (real work + throttle). */
        public long busyNanos() { return busyNanos.get(); }
    }

    /** Sleeps until System.nanoTime() ≥ due: parks for the bulk (cheap on a shared machine), spins the last stretch. */
    public static void waitUntil(long due) {
        while (true) {
            long left = due - System.nanoTime();
            if (left <= 0) return;
            // Parking overshoots by tens of microseconds; spinning the whole wait would take a core from compute.
            if (left > 80_000) LockSupport.parkNanos(left - 60_000);
            else Thread.onSpinWait();
        }
    }
}
