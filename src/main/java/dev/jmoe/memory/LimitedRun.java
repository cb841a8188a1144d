package dev.jmoe.memory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs a command inside a memory limit it creates, and reports what the limit saw: peak usage, OOM kills, file
 * pages evicted and read again (thrashing), and the peak of anonymous memory. Where the machine allows it:
 * <ul>
 *   <li>cgroup v2 (as root): a new cgroup below the unified hierarchy's root with {@code memory.max} (and no swap);</li>
 *   <li>cgroup v1 (as root, memory controller mounted): a child of this process's memory cgroup with
 *       {@code memory.limit_in_bytes} (and {@code memory.memsw.limit_in_bytes} where swap is accounted);</li>
 *   <li>otherwise {@code systemd-run --scope -p MemoryMax=…} under a running systemd; the command then reports its
 *       scope's figures itself on exit (a shell around it reads its own cgroup's files).</li>
 * </ul>
 * The command enters the cgroup before it starts (a shell writes its own pid into it, then execs the command), so
 * everything it allocates or reads is charged there. The cgroup is removed afterwards.
 */
public final class LimitedRun {
    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final long SAMPLE_MILLIS = 50;

    private LimitedRun() {}

    /**
     * What the limit saw.
     *
     * @param exit         the command's exit status (137 or similar when the kernel killed it)
     * @param limit        the limit applied (bytes)
     * @param peak         the cgroup's peak usage, page cache included (bytes; -1 if unknown)
     * @param oomKills     processes the OOM killer killed in the cgroup
     * @param refaults     file pages evicted and read back in while it ran (thrashing), -1 if unknown
     * @param majorFaults  page faults that had to read from disk, -1 if unknown
     * @param peakAnon     peak anonymous memory, sampled every 50 ms (-1 if unknown)
     * @param seconds      wall time
     * @param how          the mechanism ("cgroup v1 /x/jmoe-limit-1-0", "systemd-run scope")
     */
    public record Result(int exit, long limit, long peak, long oomKills, long refaults, long majorFaults, long peakAnon, double seconds, String how) {
        public String summary() {
            return String.format(Locale.ROOT, "limit %s: peak %s (anon %s), %d OOM kill(s), %s file refaults, exit %d [%s]", Bytes.format(limit),
                    peak < 0 ? "?" : Bytes.format(peak), peakAnon < 0 ? "?" : Bytes.format(peakAnon), oomKills, refaults < 0 ? "?" : Long.toString(refaults),
                    exit, how);
        }
    }

    /** Why this machine cannot run a command in a memory limit, or null if it can. */
    public static String unavailableReason() {
        return unavailableReason(Path.of("/"));
    }

    static String unavailableReason(Path root) {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) return "memory limits need Linux cgroups";
        Mechanism m = mechanism(root);
        return m == null ? whyNot(root) : null;
    }

    /**
     * Runs {@code command} with its memory limited to {@code limitBytes}; its output goes to {@code stdout} and {@code stderr}
     * (files; null discards). Waits at most {@code timeoutSeconds}, then kills it.
     */
    public static Result run(List<String> command, long limitBytes, Path stdout, Path stderr, long timeoutSeconds) throws IOException, InterruptedException {
        if (limitBytes < (4L << 20)) throw new IllegalArgumentException("a memory limit below 4 MiB cannot run a process, got " + limitBytes + " bytes");
        if (command.isEmpty()) throw new IllegalArgumentException("no command to run");
        Path root = Path.of("/");
        Mechanism m = mechanism(root);
        if (m == null) throw new IllegalStateException("cannot create a memory limit here: " + whyNot(root));
        return m.systemd ? runSystemd(command, limitBytes, stdout, stderr, timeoutSeconds) : runCgroup(m, command, limitBytes, stdout, stderr, timeoutSeconds);
    }

    /** Where new cgroups go: a directory whose children get the memory controller, or systemd. */
    private record Mechanism(String version, Path parent, boolean systemd) {}

    private static Mechanism mechanism(Path root) {
        boolean rootUser = "root".equals(System.getProperty("user.name"));
        if (rootUser) {
            // v1 memory controller: children of this process's own memory cgroup
            for (SystemMemory.Level lv : SystemMemory.cgroupPath(root)) {
                if (lv.version().equals("v1")) {
                    Path dir = v1Mount(root).resolve(strip(lv.path()));
                    if (Files.isWritable(dir) && Files.exists(dir.resolve("memory.limit_in_bytes"))) return new Mechanism("v1", dir, false);
                }
                break;
            }
            // v2: below the unified root (which may hold processes), with the memory controller enabled for children
            Path v2 = root.resolve("sys/fs/cgroup");
            if (hasMemoryController(v2) && Files.isWritable(v2)) return new Mechanism("v2", v2, false);
        }
        if (Files.isDirectory(root.resolve("run/systemd/system")) && onPath("systemd-run")) return new Mechanism("systemd", null, true);
        return null;
    }

    private static String whyNot(Path root) {
        boolean rootUser = "root".equals(System.getProperty("user.name"));
        boolean systemd = Files.isDirectory(root.resolve("run/systemd/system"));
        if (!rootUser && !systemd) return "not running as root (needed to create a cgroup) and no systemd to ask for a scope (systemd-run)";
        if (!rootUser) return "not running as root, and systemd-run is not on the PATH";
        return "no writable memory cgroup hierarchy (cgroup v1 memory controller or cgroup v2 with memory) and no systemd";
    }

    private static Path v1Mount(Path root) {
        return root.resolve("sys/fs/cgroup/memory");
    }

    private static boolean hasMemoryController(Path v2) {
        try {
            return Files.readString(v2.resolve("cgroup.controllers")).contains("memory");
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean onPath(String exe) {
        String path = System.getenv("PATH");
        if (path == null) return false;
        for (String d : path.split(":")) if (!d.isEmpty() && Files.isExecutable(Path.of(d, exe))) return true;
        return false;
    }

    private static Result runCgroup(Mechanism m, List<String> command, long limit, Path stdout, Path stderr, long timeoutSeconds)
            throws IOException, InterruptedException {
        Path dir = m.parent().resolve("jmoe-limit-" + ProcessHandle.current().pid() + "-" + SEQ.getAndIncrement());
        boolean v2 = m.version().equals("v2");
        if (v2) {
            // children of the unified root get the memory controller only if the root hands it down
            try {
                Files.writeString(m.parent().resolve("cgroup.subtree_control"), "+memory");
            } catch (IOException ignored) {
                // already enabled, or refused: the check below says which
            }
        }
        Files.createDirectory(dir);
        try {
            if (v2) {
                if (!Files.exists(dir.resolve("memory.max"))) throw new IllegalStateException("the memory controller is not enabled for " + dir);
                Files.writeString(dir.resolve("memory.max"), Long.toString(limit));
                writeIfPresent(dir.resolve("memory.swap.max"), "0");
            } else {
                Files.writeString(dir.resolve("memory.limit_in_bytes"), Long.toString(limit));
                writeIfPresent(dir.resolve("memory.memsw.limit_in_bytes"), Long.toString(limit));
            }
            List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", dir.toString()));
            cmd.addAll(command);
            long t0 = System.nanoTime();
            Process p = start(cmd, stdout, stderr);
            long peakAnon = -1;
            String anonKey = v2 ? "anon" : "total_rss";
            while (!p.waitFor(SAMPLE_MILLIS, TimeUnit.MILLISECONDS)) {
                peakAnon = Math.max(peakAnon, stat(dir.resolve("memory.stat"), anonKey));
                if (System.nanoTime() - t0 > timeoutSeconds * 1_000_000_000L) {
                    p.destroyForcibly().waitFor();
                    throw new IllegalStateException("the command did not finish within " + timeoutSeconds + " s in its memory limit: " + command);
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            long peak, oom, refaults, majors;
            if (v2) {
                peak = SystemMemory.number(read(dir.resolve("memory.peak")), -1);
                oom = keyed(dir.resolve("memory.events"), "oom_kill");
                refaults = stat(dir.resolve("memory.stat"), "workingset_refault_file");
                majors = stat(dir.resolve("memory.stat"), "pgmajfault");
            } else {
                peak = SystemMemory.number(read(dir.resolve("memory.max_usage_in_bytes")), -1);
                oom = keyed(dir.resolve("memory.oom_control"), "oom_kill");
                refaults = stat(dir.resolve("memory.stat"), "total_workingset_refault_file");
                majors = stat(dir.resolve("memory.stat"), "total_pgmajfault");
            }
            return new Result(p.exitValue(), limit, peak, Math.max(0, oom), refaults, majors, peakAnon, seconds,
                    "cgroup " + m.version() + " " + dir);
        } finally {
            removeCgroup(dir);
        }
    }

    /**
     * Under systemd: a transient scope with the limit. The scope's cgroup is gone when it ends, so a shell inside
     * reads its own cgroup's figures after the command exits and leaves them in a file.
     */
    private static Result runSystemd(List<String> command, long limit, Path stdout, Path stderr, long timeoutSeconds)
            throws IOException, InterruptedException {
        Path report = Files.createTempFile("jmoe-limit", ".txt");
        try {
            String script = "\"$@\"; rc=$?; cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup); "
                    + "{ echo \"peak $(cat $cg/memory.peak 2>/dev/null || echo -1)\"; grep '^oom_kill ' $cg/memory.events; "
                    + "grep -E '^(workingset_refault_file|pgmajfault) ' $cg/memory.stat; } > \"$0\"; exit $rc";
            List<String> cmd = new ArrayList<>(List.of("systemd-run", "--scope", "--quiet", "--collect", "-p", "MemoryMax=" + limit, "-p", "MemorySwapMax=0",
                    "/bin/sh", "-c", script, report.toString()));
            cmd.addAll(command);
            long t0 = System.nanoTime();
            Process p = start(cmd, stdout, stderr);
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new IllegalStateException("the command did not finish within " + timeoutSeconds + " s in its memory limit: " + command);
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            // A command the OOM killer ended never reaches the report: its exit status says so instead.
            long peak = keyed(report, "peak"), oom = keyed(report, "oom_kill");
            if (oom <= 0 && p.exitValue() == 137) oom = 1;
            return new Result(p.exitValue(), limit, peak == 0 ? -1 : peak, Math.max(0, oom), keyedOr(report, "workingset_refault_file", -1),
                    keyedOr(report, "pgmajfault", -1), -1, seconds, "systemd-run scope");
        } finally {
            Files.deleteIfExists(report);
        }
    }

    private static Process start(List<String> cmd, Path stdout, Path stderr) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectOutput(stdout != null ? ProcessBuilder.Redirect.to(stdout.toFile()) : ProcessBuilder.Redirect.DISCARD);
        pb.redirectError(stderr != null ? ProcessBuilder.Redirect.to(stderr.toFile()) : ProcessBuilder.Redirect.DISCARD);
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        return pb.start();
    }

    /** rmdir once the last process has left (the kernel removes a cgroup only then). */
    private static void removeCgroup(Path dir) throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            try {
                Files.deleteIfExists(dir);
                return;
            } catch (IOException e) {
                Thread.sleep(20);
            }
        }
        System.err.println("jmoe: warning: could not remove the cgroup " + dir);
    }

    private static void writeIfPresent(Path p, String v) {
        if (!Files.exists(p)) return;
        try {
            Files.writeString(p, v);
        } catch (IOException ignored) {
            // swap accounting off or refused: the memory limit still holds
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p).trim();
        } catch (IOException e) {
            return null;
        }
    }

    private static long stat(Path file, String key) {
        return keyedOr(file, key, -1);
    }

    private static long keyed(Path file, String key) {
        return keyedOr(file, key, 0);
    }

    private static long keyedOr(Path file, String key, long otherwise) {
        String s = read(file);
        if (s == null) return otherwise;
        for (String line : s.split("\n")) {
            if (line.startsWith(key + " ")) return SystemMemory.number(line.substring(key.length() + 1), otherwise);
        }
        return otherwise;
    }

    private static String strip(String p) {
        String s = p;
        while (s.startsWith("/")) s = s.substring(1);
        return s;
    }
}
