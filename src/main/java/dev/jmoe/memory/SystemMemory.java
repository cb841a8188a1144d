package dev.jmoe.memory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How much memory this process may really use: the tighter of its memory cgroup's room (cgroup v2
 * {@code memory.max}, or v1 {@code memory.limit_in_bytes}, checked at every level up to the hierarchy's root) and
 * the kernel's {@code MemAvailable}. A cgroup's room is its limit less what is charged to it, not counting inactive
 * file pages (the kernel reclaims those first, without harm to anyone); the process's own anonymous memory is added
 * back, because a plan for this process accounts for it itself.
 * <p>
 * Everything is read below a root directory (normally "/"), so tests can give a fake {@code proc} and {@code sys}.
 *
 * @param memTotal     {@code MemTotal}
 * @param memAvailable {@code MemAvailable}
 * @param cgroupLimit  the smallest limit on the process's memory cgroup path, or {@link Long#MAX_VALUE} if none
 * @param cgroupRoom   the smallest room (limit - usage + inactive file) on that path, or {@link Long#MAX_VALUE}
 * @param cgroup       where the limit comes from ("cgroup v2 /a/b", "cgroup v1 /x"), or null without a limit
 * @param selfBytes    this process's anonymous resident memory (RssAnon + RssShmem)
 */
public record SystemMemory(long memTotal, long memAvailable, long cgroupLimit, long cgroupRoom, String cgroup, long selfBytes) {
    /** The system property through which bin/jmoe hands the JVM the figure it planned with (bytes). */
    public static final String AVAILABLE_PROPERTY = "jmoe.memory.available";

    /** Bytes this process may use in total, its own current memory included. */
    public long available() {
        long room = Math.min(cgroupRoom, memAvailable);
        return room >= Long.MAX_VALUE - selfBytes ? Long.MAX_VALUE : Math.max(0, room) + selfBytes;
    }

    /** "cgroup v1 /a limit 400 MB" or "MemAvailable 21.3 GiB": which figure bounds {@link #available()}. */
    public String source() {
        if (cgroup != null && cgroupRoom <= memAvailable) {
            return cgroup + " limit " + Bytes.format(cgroupLimit) + (cgroupRoom < cgroupLimit ? ", room " + Bytes.format(cgroupRoom) : "");
        }
        return "MemAvailable " + Bytes.format(memAvailable);
    }

    /** The system property naming where bin/jmoe's figure came from. */
    public static final String SOURCE_PROPERTY = "jmoe.memory.source";

    /** Bytes a process may use and where that figure comes from. */
    public record Figure(long available, String source) {}

    /** The figure bin/jmoe measured before the JVM started, if it passed one; else a fresh probe of this machine. */
    public static Figure forThisProcess() {
        String handed = System.getProperty(AVAILABLE_PROPERTY);
        if (handed != null) {
            try {
                long v = Long.parseLong(handed.trim());
                if (v > 0) return new Figure(v, System.getProperty(SOURCE_PROPERTY, "as bin/jmoe measured it"));
            } catch (NumberFormatException ignored) {
                // a malformed hand-over is ignored: probing is always possible
            }
        }
        SystemMemory m = probe();
        return new Figure(m.available(), m.source());
    }

    /** Probes the running system. */
    public static SystemMemory probe() {
        return probe(Path.of("/"));
    }

    /** Probes below {@code root} ({@code root/proc/...}, {@code root/sys/fs/cgroup/...}). */
    public static SystemMemory probe(Path root) {
        long total = Long.MAX_VALUE, avail = Long.MAX_VALUE;
        for (String line : lines(root.resolve("proc/meminfo"))) {
            if (line.startsWith("MemTotal:")) total = kib(line);
            else if (line.startsWith("MemAvailable:")) avail = kib(line);
        }
        long self = 0;
        for (String line : lines(root.resolve("proc/self/status"))) {
            if (line.startsWith("RssAnon:") || line.startsWith("RssShmem:")) {
                long v = kib(line);
                if (v != Long.MAX_VALUE) self += v;
            }
        }
        long limit = Long.MAX_VALUE, room = Long.MAX_VALUE;
        String where = null;
        for (Level lv : cgroupPath(root)) {
            long l = lv.limit();
            if (l == Long.MAX_VALUE) continue;
            long r = l - Math.max(0, lv.usage() - lv.inactiveFile());
            if (l < limit) limit = l;
            if (r < room) {
                room = r;
                where = lv.describe();
            }
        }
        return new SystemMemory(total, avail, limit, room, where, self);
    }

    /** One cgroup directory on the process's path: its limit (MAX_VALUE if none), usage and inactive file pages. */
    record Level(String version, String path, long limit, long usage, long inactiveFile) {
        String describe() { return "cgroup " + version + " " + path; }
    }

    /**
     * The memory cgroup directories from the process's own cgroup up to the hierarchy's root. cgroup v2 is the
     * "0::" line of /proc/self/cgroup; v1 the line whose controllers include "memory". Mount points come from
     * /proc/self/mountinfo (a container's mount may start below the host's root: its "root" field is cut off),
     * else the usual /sys/fs/cgroup and /sys/fs/cgroup/memory.
     */
    static List<Level> cgroupPath(Path root) {
        String v1 = null, v2 = null;
        for (String line : lines(root.resolve("proc/self/cgroup"))) {
            String[] f = line.split(":", 3);
            if (f.length < 3) continue;
            if (f[0].equals("0") && f[1].isEmpty()) v2 = f[2];
            else if (List.of(f[1].split(",")).contains("memory")) v1 = f[2];
        }
        List<Level> out = new ArrayList<>();
        if (v1 != null) {
            Mount m = mount(root, false);
            walk(root, m, v1, "v1", out);
        }
        if (out.stream().noneMatch(l -> l.limit() != Long.MAX_VALUE) && v2 != null) {
            Mount m = mount(root, true);
            // v2 carries the memory controller only where v1 does not (a hybrid host's unified tree has none)
            String controllers = first(root.resolve(strip(m.point())).resolve("cgroup.controllers"));
            if (controllers != null && List.of(controllers.trim().split("\\s+")).contains("memory")) walk(root, m, v2, "v2", out);
        }
        return out;
    }

    private record Mount(String point, String root) {}

    private static Mount mount(Path root, boolean v2) {
        for (String line : lines(root.resolve("proc/self/mountinfo"))) {
            int dash = line.indexOf(" - ");
            if (dash < 0) continue;
            String[] pre = line.substring(0, dash).split(" ");
            String[] post = line.substring(dash + 3).split(" ");
            if (pre.length < 5 || post.length < 1) continue;
            if (v2 && post[0].equals("cgroup2")) return new Mount(pre[4], pre[3]);
            if (!v2 && post[0].equals("cgroup") && post.length >= 3 && List.of(post[2].split(",")).contains("memory")) return new Mount(pre[4], pre[3]);
        }
        return new Mount(v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", "/");
    }

    private static void walk(Path root, Mount m, String cgPath, String version, List<Level> out) {
        String rel = cgPath;
        if (!m.root().equals("/") && rel.startsWith(m.root())) rel = rel.substring(m.root().length());
        Path base = root.resolve(strip(m.point()));
        Path dir = base.resolve(strip(rel));
        if (!Files.isDirectory(dir)) {
            dir = base; // a namespaced or unusual layout: the mount itself is this process's cgroup
            rel = "/";
        }
        while (true) {
            String shown = "/" + strip(base.relativize(dir).toString());
            out.add(version.equals("v2") ? v2Level(dir, shown) : v1Level(dir, shown));
            if (dir.equals(base)) break;
            dir = dir.getParent();
            if (dir == null || !dir.startsWith(base)) break;
        }
    }

    private static Level v2Level(Path dir, String shown) {
        long max = limitValue(first(dir.resolve("memory.max")));
        long high = limitValue(first(dir.resolve("memory.high")));
        long usage = number(first(dir.resolve("memory.current")), 0);
        long inactive = stat(dir.resolve("memory.stat"), "inactive_file");
        return new Level("v2", shown, Math.min(max, high), usage, inactive);
    }

    private static Level v1Level(Path dir, String shown) {
        long limit = limitValue(first(dir.resolve("memory.limit_in_bytes")));
        // v1 reports "no limit" as a huge page-rounded number rather than "max"
        if (limit >= (1L << 60)) limit = Long.MAX_VALUE;
        long usage = number(first(dir.resolve("memory.usage_in_bytes")), 0);
        long inactive = stat(dir.resolve("memory.stat"), "total_inactive_file");
        if (inactive == 0) inactive = stat(dir.resolve("memory.stat"), "inactive_file");
        return new Level("v1", shown, limit, usage, inactive);
    }

    private static long limitValue(String s) {
        if (s == null || s.isBlank() || s.trim().equals("max")) return Long.MAX_VALUE;
        return number(s, Long.MAX_VALUE);
    }

    private static long stat(Path file, String key) {
        for (String line : lines(file)) {
            if (line.startsWith(key + " ")) return number(line.substring(key.length() + 1), 0);
        }
        return 0;
    }

    /** The number in a cgroup or proc file's text, or {@code otherwise} when it holds none ("max", empty, missing). */
    static long number(String s, long otherwise) {
        if (s == null) return otherwise;
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return otherwise;
        }
    }

    private static long kib(String line) {
        String[] f = line.trim().split("\\s+");
        if (f.length < 2) return Long.MAX_VALUE;
        long v = number(f[1], -1);
        if (v < 0) return Long.MAX_VALUE;
        return f.length > 2 && f[2].toLowerCase(Locale.ROOT).equals("kb") ? v * 1024 : v;
    }

    private static String first(Path p) {
        List<String> l = lines(p);
        return l.isEmpty() ? null : l.get(0);
    }

    private static List<String> lines(Path p) {
        try {
            return Files.readAllLines(p);
        } catch (IOException | SecurityException e) {
            return List.of();
        }
    }

    private static String strip(String p) {
        String s = p;
        while (s.startsWith("/")) s = s.substring(1);
        return s;
    }
}
