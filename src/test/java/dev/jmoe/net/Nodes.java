package dev.jmoe.net;

import dev.jmoe.cli.Main;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Worker and shadow nodes as separate JVMs on 127.0.0.1 (any free port), for the multi-process tests. Each node is
 * `jmoe worker` or `jmoe shadow` run from the test classpath; {@link #close} kills whatever is still running, and a
 * shutdown hook does the same should the test JVM end first.
 */
final class Nodes implements AutoCloseable {
    private static final Pattern LISTENING = Pattern.compile("listening on ([^\\s]+):(\\d+)");

    /** One running node. */
    static final class Node {
        final Process process;
        final int port;
        final StringBuilder log = new StringBuilder();

        Node(Process process, int port) {
            this.process = process;
            this.port = port;
        }

        String address() { return "127.0.0.1:" + port; }

        /** kill -9. */
        void kill() throws InterruptedException {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private final List<Node> nodes = new ArrayList<>();
    private final Thread hook = new Thread(this::killAll);

    Nodes() {
        Runtime.getRuntime().addShutdownHook(hook);
    }

    Node worker(Path model, String... extra) throws IOException, InterruptedException {
        return worker(List.of(), model, extra);
    }

    /** A worker JVM with extra JVM flags (e.g. another vector width). */
    Node worker(List<String> jvmFlags, Path model, String... extra) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("worker", "--listen", "127.0.0.1:0", "-m", model.toString()));
        args.addAll(List.of(extra));
        List<String> flags = new ArrayList<>(List.of("-Xmx256m"));
        flags.addAll(jvmFlags);
        return start(args, flags);
    }

    Node shadow(Path model, String... extra) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("shadow", "--listen", "127.0.0.1:0", "-m", model.toString()));
        args.addAll(List.of(extra));
        return start(args, List.of("-Xmx512m"));
    }

    /** Starts a node and waits (at most 60 s) for its "listening on" line. */
    Node start(List<String> args, List<String> jvmFlags) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=4"));
        cmd.addAll(jvmFlags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        CompletableFuture<Integer> port = new CompletableFuture<>();
        StringBuilder log = new StringBuilder();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    synchronized (log) {
                        if (log.length() < 100_000) log.append(line).append('\n');
                    }
                    Matcher m = LISTENING.matcher(line);
                    if (m.find()) port.complete(Integer.parseInt(m.group(2)));
                }
            } catch (IOException ignored) {
                // the process ended
            }
            port.complete(-1);
        });
        try {
            int got = port.get(90, TimeUnit.SECONDS);
            if (got < 0) throw new AssertionError("node " + args + " ended before listening:\n" + log);
            Node n = new Node(p, got);
            synchronized (nodes) {
                nodes.add(n);
            }
            return n;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            p.destroyForcibly();
            throw new AssertionError("node " + args + " did not start listening within 90 s:\n" + log);
        }
    }

    static String addresses(List<Node> ns) {
        return String.join(",", ns.stream().map(Node::address).toList());
    }

    private void killAll() {
        synchronized (nodes) {
            for (Node n : nodes) n.process.destroyForcibly();
            for (Node n : nodes) {
                try {
                    n.process.waitFor(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    @Override
    public void close() {
        killAll();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // shutting down already
        }
    }
}
