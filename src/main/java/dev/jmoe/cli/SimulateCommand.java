package dev.jmoe.cli;

import dev.jmoe.experts.store.Link;
import dev.jmoe.net.ClusterSimulator;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe simulate}: the cluster simulator ({@link ClusterSimulator}) on given times and sizes, or on the paper's
 * testbed ({@code --preset od-moe-paper}), over a range of worker counts.
 */
@Command(name = "simulate", description = {"Predicts the decode speed of a distributed OD-MoE cluster (docs/distributed.md).",
        "cluster-bench calibrates it from a measured run; --preset od-moe-paper sets the paper's Mixtral-8x7B testbed."})
final class SimulateCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--preset", paramLabel = "NAME", description = "od-moe-paper: Mixtral-8x7B (32 layers, top-2, FP16 experts of 352 MB), 3090-class"
            + " nodes, PCIe 3.0 x16 host-to-device links, 1 GbE")
    String preset;

    @Option(names = "--layers", paramLabel = "COUNT", description = "MoE layers (default: the preset's)") Integer layers;
    @Option(names = "--k", paramLabel = "EXPERTS", description = "experts per token (default: the preset's)") Integer k;
    @Option(names = "--workers", paramLabel = "N[,N…]", split = ",", description = "worker counts to simulate (default 8)") int[] workers;
    @Option(names = "--group-size", paramLabel = "WORKERS") Integer groupSize;
    @Option(names = "--main-ms", paramLabel = "MS", description = "main node time per layer (attention, router, combine)") Double mainMs;
    @Option(names = "--expert-ms", paramLabel = "MS", description = "one expert's compute on a worker, one token") Double expertMs;
    @Option(names = "--expert-bytes", paramLabel = "BYTES") Double expertBytes;
    @Option(names = "--link", paramLabel = "LINK", description = "each worker's load link (a preset or BANDWIDTH,LATENCY)") String link;
    @Option(names = "--net", paramLabel = "BANDWIDTH,LATENCY", description = "the network, e.g. 1Gb/s,200us") String net;
    @Option(names = "--message-bytes", paramLabel = "BYTES", description = "one hidden-state message") Double messageBytes;
    @Option(names = "--lookahead", paramLabel = "LAYERS") Integer lookahead;
    @Option(names = "--recall", paramLabel = "FRACTION", description = "share of expert uses predicted (0..1)") Double recall;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", description = "decode tokens simulated (default ${DEFAULT-VALUE})") int tokens = 128;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        boolean paper = preset != null;
        if (paper && !preset.equals("od-moe-paper")) throw new IllegalArgumentException("unknown --preset '" + preset + "'; known: od-moe-paper");
        // The paper's testbed, as far as the paper states it; compute times are estimates for 3090-class GPUs (documented).
        int L = or(layers, paper ? 32 : null, "--layers"), K = or(k, paper ? 2 : null, "--k");
        int G = groupSize != null ? groupSize : K;
        double main = orD(mainMs, paper ? 2.0 : null, "--main-ms") / 1e3, expert = orD(expertMs, paper ? 0.6 : null, "--expert-ms") / 1e3;
        double bytes = orD(expertBytes, paper ? 3.0 * 4096 * 14336 * 2 : null, "--expert-bytes");
        Link l = Link.parse(link != null ? link : paper ? "pcie3x16" : "nvme");
        Link n = Link.parse(net != null ? net : "1Gb/s,200us");
        double msg = messageBytes != null ? messageBytes : paper ? 4096 * 2 + 64 : 4096;
        Integer la0 = lookahead; // default: as far as the schedule needs, the number of groups (at least 2, at most the layers)
        double r = recall != null ? recall : paper ? 0.9994 : 1.0;
        int[] ns = workers != null ? workers : new int[]{8};
        out.printf(Locale.ROOT, "layers %d, k %d, group size %d, main %.2f ms/layer, expert %.2f ms, expert %.0f MB over %s, network %s, lookahead %s,"
                + " recall %.4f%n", L, K, G, main * 1e3, expert * 1e3, bytes / 1e6, l, n, la0 == null ? "groups" : la0, r);
        out.printf(Locale.ROOT, "%8s %8s %12s %12s %10s%n", "workers", "groups", "tok/s", "resident", "ratio");
        for (int w : ns) {
            int la = la0 != null ? la0 : Math.min(L, Math.max(2, (w + G - 1) / G));
            ClusterSimulator sim = new ClusterSimulator(L, K, w, Math.min(G, w), main, expert, bytes, l.bytesPerSecond(), l.latencyNanos() / 1e9,
                    n.bytesPerSecond(), n.latencyNanos() / 1e9, msg, la, r);
            ClusterSimulator.Result res = sim.run(tokens);
            double resident = sim.residentTokensPerSecond();
            out.printf(Locale.ROOT, "%8d %8d %12.2f %12.2f %9.1f%%   (%.0f%% of uses waited for a load)%n", w, (w + G - 1) / G, res.tokensPerSecond(), resident,
                    100 * res.tokensPerSecond() / resident, 100 * res.stallShare());
        }
        return 0;
    }

    private static int or(Integer v, Integer def, String flag) {
        if (v != null) return v;
        if (def == null) throw new IllegalArgumentException(flag + " is required without --preset");
        return def;
    }

    private static double orD(Double v, Double def, String flag) {
        if (v != null) return v;
        if (def == null) throw new IllegalArgumentException(flag + " is required without --preset");
        return def;
    }
}
