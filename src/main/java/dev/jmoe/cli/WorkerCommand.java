package dev.jmoe.cli;

import dev.jmoe.experts.store.Link;
import dev.jmoe.net.WorkerNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe worker}: a worker node of distributed OD-MoE (see {@link WorkerNode}). */
@Command(name = "worker", description = {"Serves routed-expert computation to a main node (distributed OD-MoE, docs/distributed.md).",
        "Loads experts just in time from its own copy of the model into a small fast memory, computes, evicts."})
final class WorkerCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--listen", required = true, paramLabel = "HOST:PORT", description = "address to serve on (port 0: any free port, printed)")
    String listen;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE", description = "this worker's own copy of the model (GGUF)")
    Path model;

    @Option(names = "--expert-memory", paramLabel = "BYTES", description = "fast memory for experts (default: two experts' worth)")
    String expertMemory;

    @Option(names = "--store", paramLabel = "NAME", description = "where experts are read from (default: direct):%n${jmoe.stores}")
    String store;

    @Option(names = "--link", paramLabel = "LINK", description = "this worker's emulated store-to-memory link (default: unlimited):%n${jmoe.links}")
    String link;

    @Option(names = "--slow-compute", paramLabel = "RATIO", description = "stretch compute by this ratio to emulate a slower node (default: 1x)")
    String slowCompute;

    @Option(names = {"-t", "--threads"}, paramLabel = "COUNT", description = "compute threads (default 1)")
    int threads = 1;

    @ArgGroup(validate = false, exclusive = false, heading = "%nNode security:%n") NodeOptions node = new NodeOptions();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Listen at = Listen.parse(listen);
        Link l = Link.parse(link != null ? link : "unlimited");
        l = l.withSlowCompute(slowCompute != null ? Link.parseRatio(slowCompute) : 1);
        WorkerNode w = WorkerNode.start(new WorkerNode.Settings(model, at.host(), at.port(), expertMemory, store, l, threads, node.security()));
        Runtime.getRuntime().addShutdownHook(new Thread(w::close));
        out.println("jmoe worker: listening on " + at.host() + ":" + w.port());
        out.println("jmoe worker: " + w.describe());
        out.flush();
        w.awaitTermination();
        return 0;
    }

    /** A --listen address: HOST:PORT where port 0 means any free port. */
    record Listen(String host, int port) {
        static Listen parse(String spec) {
            String s = spec == null ? "" : spec.trim();
            int colon = s.lastIndexOf(':');
            if (colon <= 0) throw new IllegalArgumentException("--listen '" + spec + "' is not HOST:PORT");
            String host = s.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
            int port;
            try {
                port = Integer.parseInt(s.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--listen '" + spec + "': port is not a number");
            }
            if (port < 0 || port > 65535) throw new IllegalArgumentException("--listen '" + spec + "': port is outside 0..65535");
            return new Listen(host, port);
        }
    }
}
