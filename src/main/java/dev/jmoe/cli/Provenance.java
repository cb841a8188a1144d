package dev.jmoe.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Where a measurement came from, for the JSON it is written to: the command, the processor, the JDK, the source commit
 * (and whether the tree had uncommitted changes), the date, and the load on the machine around it.
 */
final class Provenance {
    private Provenance() {}

    static Map<String, Object> of(String command) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("command", command);
        m.put("date", Instant.now().toString());
        m.put("processor", processor());
        m.put("jdk", System.getProperty("java.vendor") + " " + System.getProperty("java.runtime.version"));
        String[] git = commit();
        m.put("commit", git[0]);
        m.put("uncommitted_changes", git[1]); // to src, pom.xml or bin
        return m;
    }

    /** The time and load average at a point of the run. */
    static Map<String, Object> at(String what) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("date", Instant.now().toString());
        m.put("load_average", loadAverage());
        return m;
    }

    /** The processor's model name (Linux /proc/cpuinfo), or the JVM's architecture where that cannot be read. */
    static String processor() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"), StandardCharsets.UTF_8)) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }

    /** The 1-, 5- and 15-minute load averages (Linux), or null. */
    static double[] loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg"), StandardCharsets.UTF_8).trim().split("\\s+");
            return new double[]{Double.parseDouble(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2])};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** {commit, "yes"/"no"/null}: the checkout jmoe runs from (its home), asked of git; "unknown" without git. */
    private static String[] commit() {
        Path home = DefaultModel.home();
        String head = git(home, "rev-parse", "HEAD");
        if (head == null) return new String[]{"unknown", null};
        // changes to what the program is built from (not, say, the report being regenerated)
        String status = git(home, "status", "--porcelain", "--untracked-files=no", "--", "src", "pom.xml", "bin");
        return new String[]{head, status == null ? null : status.isBlank() ? "no" : "yes"};
    }

    private static String git(Path dir, String... args) {
        try {
            String[] cmd = new String[args.length + 3];
            cmd[0] = "git";
            cmd[1] = "-C";
            cmd[2] = dir.toString();
            System.arraycopy(args, 0, cmd, 3, args.length);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            return p.exitValue() == 0 ? out : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
