package dev.jmoe.net;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A worker or shadow node started as a child JVM of this one (cluster-bench, the multi-process tests): the command
 * line every node needs, and the wait for the "listening on HOST:PORT" line the node prints once it serves (with
 * port 0 the node picks its port, and that line is the only way to learn it).
 */
public final class NodeProcess {
    private NodeProcess() {}

    /** The line {@code jmoe worker} and {@code jmoe shadow} print once they serve. */
    static final Pattern LISTENING = Pattern.compile("listening on ([^\\s]+):(\\d+)");
    /** Output kept for the error of a node that does not start. */
    private static final int LOG_CHARS = 100_000;

    /** A node that printed its listening line: its process and the port it serves on. */
    public record Started(Process process, int port) {}

    /**
     * This JVM's java with the modules and access every node needs and a serial collector (nodes are small and many),
     * then {@code jvmFlags}, then {@code mainClass} with {@code args}, all after {@code prefix} (e.g. {@code ip netns
     * exec NS}).
     */
    public static List<String> javaCommand(List<String> prefix, List<String> jvmFlags, String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC"));
        cmd.addAll(jvmFlags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(args);
        return cmd;
    }

    /**
     * Starts {@code command} and waits at most {@code wait} for its listening line. A node that ends first or does not
     * listen in time is killed, and the exception carries what it printed.
     */
    public static Started start(String role, List<String> command, Duration wait) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        CompletableFuture<Integer> port = new CompletableFuture<>();
        StringBuilder log = new StringBuilder();
        Thread.ofPlatform().daemon().name("jmoe-node-output").start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    synchronized (log) {
                        if (log.length() < LOG_CHARS) log.append(line).append('\n');
                    }
                    Matcher m = LISTENING.matcher(line);
                    if (m.find()) port.complete(Integer.parseInt(m.group(2)));
                }
            } catch (IOException ignored) {
                // the process ended
            }
            port.complete(-1);
        });
        int got;
        try {
            got = port.get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            got = -2;
        }
        if (got < 0) {
            p.destroyForcibly();
            String printed;
            synchronized (log) {
                printed = log.toString().strip();
            }
            throw new IllegalStateException(role + (got == -1 ? " ended before listening" : " did not start listening within " + wait.toSeconds() + " s")
                    + (printed.isEmpty() ? "" : ":\n" + printed));
        }
        return new Started(p, got);
    }
}
