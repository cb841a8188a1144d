package dev.jmoe.net;

import dev.jmoe.cli.Main;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Worker and shadow nodes as separate JVMs on 127.0.0.1 (any free port), for the multi-process tests. Each node is
 * `jmoe worker` or `jmoe shadow` run from the test classpath; {@link #close} kills whatever is still running, and a
 * shutdown hook does the same should the test JVM end first.
 */
final class Nodes implements AutoCloseable {

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

    /** Starts a node and waits (at most 90 s) for its "listening on" line. */
    Node start(List<String> args, List<String> jvmFlags) throws IOException, InterruptedException {
        List<String> flags = new ArrayList<>(List.of("-XX:TieredStopAtLevel=4"));
        flags.addAll(jvmFlags);
        NodeProcess.Started started = NodeProcess.start("node " + args, NodeProcess.javaCommand(List.of(), flags, Main.class.getName(), args),
                Duration.ofSeconds(90));
        Node n = new Node(started.process(), started.port());
        synchronized (nodes) {
            nodes.add(n);
        }
        return n;
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
