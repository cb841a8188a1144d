package dev.jmoe.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real network for {@code cluster-bench --netns}: every node (worker, shadow) in its own network namespace, each
 * joined by a veth pair to one bridge in a "switch" namespace, and this process (the main node) joined to it from the
 * host's namespace the same way. Every port is shaped on egress: the node's side (its NIC and wire) and the switch's
 * side towards it (a store-and-forward switch sends at line rate again). The delay goes on the nodes' own egress only,
 * so one way costs one delay and two serializations, as on a switched Ethernet. When the kernel has no {@code netem}
 * qdisc, the rate is shaped with {@code tbf} and no delay is added ({@link #describe} says so).
 *
 * <p>Names carry this process's pid ({@code jmoecb<pid>-…}, interfaces {@code jcb<pid>…}); {@link #close} deletes
 * everything it made, also after a failure half way, and {@link #removeStale} deletes what a killed run left behind.
 * Needs root and iproute2 (ip, tc).
 */
final class NetNamespaces implements AutoCloseable {
    private static final Pattern RATE = Pattern.compile("\\d+(\\.\\d+)?[kmg]?bit", Pattern.CASE_INSENSITIVE);
    private static final Pattern DELAY = Pattern.compile("\\d+(\\.\\d+)?(us|ms)");
    private static final Pattern OURS = Pattern.compile("jmoecb(\\d+)-\\w+");

    private final long pid = ProcessHandle.current().pid();
    private final String prefix = "jmoecb" + pid + "-";
    private final String switchNs = prefix + "sw";
    private final String hostIf = "jcb" + pid + "m";
    private final int subnet = (int) (pid % 250) + 1;
    private final List<String> namespaces = new ArrayList<>();
    private final String rate, delay;
    private boolean hostIfMade, netem = true;
    private int nodes;

    /** {@code spec}: RATE[,DELAY] in tc's words, e.g. {@code 1gbit,100us}. */
    NetNamespaces(String spec) {
        String[] p = spec.split(",", -1);
        if (p.length > 2 || !RATE.matcher(p[0].trim()).matches() || (p.length == 2 && !DELAY.matcher(p[1].trim()).matches())) {
            throw new IllegalArgumentException("--netns '" + spec + "' is not RATE[,DELAY] in tc's units, e.g. 1gbit,100us");
        }
        this.rate = p[0].trim().toLowerCase(Locale.ROOT);
        this.delay = p.length == 2 ? p[1].trim() : null;
    }

    /** The address the main node (this process) has on the bridge. */
    String hostAddress() { return "10.213." + subnet + ".1"; }

    /** Node i's address. */
    String address(int i) { return "10.213." + subnet + "." + (i + 2); }

    /** The command prefix that runs a program in node i's namespace. */
    List<String> exec(int i) { return List.of("ip", "netns", "exec", prefix + i); }

    /** Bandwidth in bytes per second (for the simulator). */
    double bytesPerSecond() {
        Matcher m = Pattern.compile("(\\d+(?:\\.\\d+)?)([kmg]?)bit").matcher(rate);
        if (!m.matches()) return Double.NaN;
        double v = Double.parseDouble(m.group(1));
        double mult = switch (m.group(2)) { case "k" -> 1e3; case "m" -> 1e6; case "g" -> 1e9; default -> 1; };
        return v * mult / 8;
    }

    /** Delay in nanoseconds that was really applied (0 without netem). */
    long appliedDelayNanos() {
        if (delay == null || !netem) return 0;
        double v = Double.parseDouble(delay.replaceAll("[a-z]", ""));
        return (long) (delay.endsWith("ms") ? v * 1e6 : v * 1e3);
    }

    /** Builds the switch and {@code count} node namespaces. On failure everything made so far is removed. */
    void create(int count) throws IOException, InterruptedException {
        if (count < 1 || count > 200) throw new IllegalArgumentException("--netns supports 1 to 200 nodes, got " + count);
        try {
            removeStale();
            addNamespace(switchNs);
            run("ip", "-n", switchNs, "link", "add", "br0", "type", "bridge");
            run("ip", "-n", switchNs, "link", "set", "br0", "up");
            // the main node's port
            run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", hostIf + "s");
            hostIfMade = true;
            run("ip", "link", "set", hostIf + "s", "netns", switchNs);
            run("ip", "-n", switchNs, "link", "set", hostIf + "s", "master", "br0", "up");
            run("ip", "addr", "add", hostAddress() + "/24", "dev", hostIf);
            run("ip", "link", "set", hostIf, "up");
            shape(null, hostIf, true);
            shape(switchNs, hostIf + "s", false);
            for (int i = 0; i < count; i++) {
                String ns = prefix + i, a = "jcb" + pid + "a" + i, b = "jcb" + pid + "b" + i;
                addNamespace(ns);
                run("ip", "link", "add", a, "type", "veth", "peer", "name", b);
                run("ip", "link", "set", a, "netns", ns);
                run("ip", "link", "set", b, "netns", switchNs);
                run("ip", "-n", ns, "addr", "add", address(i) + "/24", "dev", a);
                run("ip", "-n", ns, "link", "set", a, "up");
                run("ip", "-n", ns, "link", "set", "lo", "up");
                run("ip", "-n", switchNs, "link", "set", b, "master", "br0", "up");
                shape(ns, a, true);
                shape(switchNs, b, false);
            }
            nodes = count;
        } catch (IOException | RuntimeException | InterruptedException e) {
            close();
            throw e;
        }
    }

    /** What was built, for the report. */
    String describe() {
        return String.format(Locale.ROOT, "real: %d network namespaces behind veth pairs and a bridge, every port shaped to %s%s", nodes, rate,
                delay == null ? " (no delay)" : netem ? " with " + delay + " delay on each node's egress (netem)"
                        : "; no delay applied: this kernel has no netem qdisc, rate shaped with tbf (latency is the veth path's own)");
    }

    private void shape(String ns, String dev, boolean nodeSide) throws IOException, InterruptedException {
        List<String> tc = new ArrayList<>();
        if (ns != null) tc.addAll(List.of("ip", "netns", "exec", ns));
        tc.addAll(List.of("tc", "qdisc", "add", "dev", dev, "root"));
        if (netem) {
            List<String> n = new ArrayList<>(tc);
            n.add("netem");
            if (delay != null && nodeSide) n.addAll(List.of("delay", delay));
            n.addAll(List.of("rate", rate, "limit", "10000"));
            if (tryRun(n)) return;
            netem = false; // the kernel has no netem: shape the rate only
        }
        tc.addAll(List.of("tbf", "rate", rate, "burst", "64kb", "latency", "200ms"));
        run(tc.toArray(String[]::new));
    }

    private void addNamespace(String ns) throws IOException, InterruptedException {
        run("ip", "netns", "add", ns);
        namespaces.add(ns);
    }

    /** Deletes namespaces and interfaces of earlier cluster-bench runs whose process is gone. */
    static void removeStale() throws IOException, InterruptedException {
        for (String line : output("ip", "netns", "list").split("\n")) {
            Matcher m = OURS.matcher(line.trim().split("\\s+")[0]);
            if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1))).map(h -> !h.isAlive()).orElse(true)) {
                tryRun(List.of("ip", "netns", "del", m.group()));
            }
        }
        for (String line : output("ip", "-o", "link", "show").split("\n")) {
            Matcher m = Pattern.compile("\\d+: (jcb(\\d+)m)[@:]").matcher(line);
            if (m.find() && ProcessHandle.of(Long.parseLong(m.group(2))).map(h -> !h.isAlive()).orElse(true)) {
                tryRun(List.of("ip", "link", "del", m.group(1)));
            }
        }
    }

    /** Removes what this instance made (the processes inside must have been stopped). Safe to call twice. */
    @Override
    public void close() {
        if (hostIfMade) {
            try {
                tryRun(List.of("ip", "link", "del", hostIf));
            } catch (IOException | InterruptedException ignored) {
                // best effort: removeStale catches it next time
            }
            hostIfMade = false;
        }
        for (int i = namespaces.size() - 1; i >= 0; i--) {
            try {
                tryRun(List.of("ip", "netns", "del", namespaces.get(i)));
            } catch (IOException | InterruptedException ignored) {
                // best effort
            }
        }
        namespaces.clear();
    }

    private static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("'" + String.join(" ", cmd) + "' did not finish in 30 s");
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException("--netns: '" + String.join(" ", cmd) + "' failed (" + p.exitValue() + "): " + out
                    + " (network namespaces need root and iproute2)");
        }
    }

    private static boolean tryRun(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    }

    private static String output(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        return out;
    }
}
