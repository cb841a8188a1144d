package dev.jmoe.net;

import dev.jmoe.experts.store.Link;
import java.util.ArrayList;
import java.util.List;

/**
 * A main node's view of its cluster ({@code --workers}, {@code --shadow-node}, {@code --group-size}, the security
 * flags and {@code --net}): where the workers and the shadow node listen, how workers are grouped, how calls are timed
 * out and how the network between the nodes is emulated.
 *
 * @param workers     HOST:PORT of each worker, in schedule order (group g is workers [g·G, (g+1)·G))
 * @param shadowNode  HOST:PORT of the shadow node, or null to run the shadow in the main process
 * @param groupSize   workers per group (null: the model's k)
 * @param security    how node links are authenticated
 * @param net         emulated network between the main node and the others (null: the real one, unthrottled)
 * @param callTimeout deadline of one expert computation, its load included (seconds)
 * @param leaseTimeout a worker that has not answered a health check for this long loses its lease (seconds)
 * @param miniBatch   rows per message when a prompt step sends an expert's rows in mini-batches (0: one message per
 *                    expert); applied only where the parts' products give the whole product's bits
 *                    ({@link dev.jmoe.tensor.Kernels#splitKeepsBits})
 * @param shadowToWorkers the shadow node sends its load commands straight to the workers (it is told the schedule)
 *                    instead of through this node
 */
public record ClusterConfig(List<Endpoint> workers, Endpoint shadowNode, Integer groupSize, NodeSecurity security, Link net,
                            double callTimeout, double leaseTimeout, int miniBatch, boolean shadowToWorkers) {
    public static final double DEFAULT_CALL_TIMEOUT = 120, DEFAULT_LEASE_TIMEOUT = 3;
    public static final int DEFAULT_MINI_BATCH = 16;

    /** Mini-batches of {@link #DEFAULT_MINI_BATCH} rows, load commands through this node. */
    public ClusterConfig(List<Endpoint> workers, Endpoint shadowNode, Integer groupSize, NodeSecurity security, Link net,
                         double callTimeout, double leaseTimeout) {
        this(workers, shadowNode, groupSize, security, net, callTimeout, leaseTimeout, DEFAULT_MINI_BATCH, false);
    }

    public ClusterConfig withMiniBatch(int rows) {
        return new ClusterConfig(workers, shadowNode, groupSize, security, net, callTimeout, leaseTimeout, rows, shadowToWorkers);
    }

    public ClusterConfig withShadowToWorkers(boolean on) {
        return new ClusterConfig(workers, shadowNode, groupSize, security, net, callTimeout, leaseTimeout, miniBatch, on);
    }

    /** A node's address. */
    public record Endpoint(String host, int port) {
        public Endpoint {
            if (host == null || host.isBlank()) throw new IllegalArgumentException("a node address needs a host");
            if (port < 1 || port > 65535) throw new IllegalArgumentException("port " + port + " of " + host + " is outside 1..65535");
        }

        /** Parses HOST:PORT ([v6]:PORT for IPv6). */
        public static Endpoint parse(String spec, String flag) {
            String s = spec == null ? "" : spec.trim();
            int colon = s.lastIndexOf(':');
            if (colon <= 0 || colon == s.length() - 1) throw new IllegalArgumentException(flag + " '" + spec + "' is not HOST:PORT");
            String host = s.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
            try {
                return new Endpoint(host, Integer.parseInt(s.substring(colon + 1)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " '" + spec + "': port is not a number");
            }
        }

        @Override public String toString() { return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port; }
    }

    public ClusterConfig {
        workers = List.copyOf(workers == null ? List.of() : workers);
        if (workers.isEmpty()) throw new IllegalArgumentException("--workers needs at least one HOST:PORT");
        if (workers.size() > 1024) throw new IllegalArgumentException("--workers lists " + workers.size() + " workers; at most 1024");
        if (groupSize != null && (groupSize < 1 || groupSize > workers.size())) {
            throw new IllegalArgumentException("--group-size must be between 1 and the " + workers.size() + " workers, got " + groupSize);
        }
        if (security == null) security = NodeSecurity.NONE;
        if (!(callTimeout > 0) || !(leaseTimeout > 0)) throw new IllegalArgumentException("timeouts must be positive");
        if (miniBatch != 0 && (miniBatch < 2 || miniBatch > WorkerNode.MAX_ROWS)) {
            throw new IllegalArgumentException("--mini-batch must be 0 (off) or between 2 and " + WorkerNode.MAX_ROWS + " rows, got " + miniBatch);
        }
        if (shadowToWorkers && shadowNode == null) throw new IllegalArgumentException("--shadow-to-workers needs --shadow-node");
    }

    /** Parses {@code HOST:PORT[,HOST:PORT…]}. */
    public static List<Endpoint> parseList(String spec, String flag) {
        List<Endpoint> out = new ArrayList<>();
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException(flag + " needs HOST:PORT[,HOST:PORT…]");
        for (String part : spec.split(",")) out.add(Endpoint.parse(part, flag));
        return out;
    }

    /** Workers per group for a model routing to {@code k} experts per token. */
    public int groupSizeFor(int k) {
        return groupSize != null ? groupSize : Math.max(1, Math.min(k, workers.size()));
    }
}
