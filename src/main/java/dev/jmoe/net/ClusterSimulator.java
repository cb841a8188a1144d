package dev.jmoe.net;

import java.util.Locale;

/**
 * Predicts the decode speed of a distributed OD-MoE cluster by replaying the schedule of {@link RemoteExperts} as
 * discrete events: per (token, layer) the main node computes attention and the router ({@code mainLayerSeconds}),
 * sends the token's hidden state to the k workers of group (layer mod groups) over its network interface (messages
 * one after another on the wire, then latency), each worker computes its expert once the expert is loaded and its
 * processor is free, and the layer ends when the last output is back. Each worker has one link to its own slow memory
 * and one processor, used independently (it loads one expert while computing another: two slots). A predicted expert
 * starts loading {@code lookahead} layers early, when the main node reaches the layer the prediction is made at; a
 * fraction {@code 1 − recall} of the uses (spread evenly over the run) was not predicted and is loaded on demand when
 * the hidden state arrives. The first token is not timed (it starts cold).
 *
 * @param layers          MoE layers per token
 * @param k               experts per token and layer
 * @param workers         worker nodes
 * @param groupSize       workers per group
 * @param mainLayerSeconds main node's time per layer (attention, router, combining the outputs)
 * @param expertSeconds   one expert's computation on a worker, for one token
 * @param expertBytes     bytes a worker loads per expert
 * @param linkBytesPerSecond each worker's slow-memory-to-compute link
 * @param linkLatencySeconds its latency per load
 * @param netBytesPerSecond  the network (each node's interface)
 * @param netLatencySeconds  one-way latency per message
 * @param messageBytes    one hidden-state message (request or reply)
 * @param lookahead       layers ahead the predictions are made
 * @param recall          share of expert uses that were predicted
 */
public record ClusterSimulator(int layers, int k, int workers, int groupSize, double mainLayerSeconds, double expertSeconds, double expertBytes,
                               double linkBytesPerSecond, double linkLatencySeconds, double netBytesPerSecond, double netLatencySeconds,
                               double messageBytes, int lookahead, double recall) {
    public ClusterSimulator {
        if (layers < 1 || k < 1 || workers < 1 || groupSize < 1 || groupSize > workers || lookahead < 0) {
            throw new IllegalArgumentException("simulate needs layers, k, workers >= 1, 1 <= group size <= workers, lookahead >= 0");
        }
        if (!(recall >= 0 && recall <= 1)) throw new IllegalArgumentException("recall must be in [0, 1], got " + recall);
        if (!(linkBytesPerSecond > 0) || !(netBytesPerSecond > 0)) throw new IllegalArgumentException("bandwidths must be positive");
    }

    /** The result: decode tokens per second, and the share of expert uses that waited for a load. */
    public record Result(double tokensPerSecond, double stallShare, double secondsPerToken) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%.2f tok/s (%.1f ms/token, %.0f%% of expert uses waited for a load)", tokensPerSecond,
                    secondsPerToken * 1e3, stallShare * 100);
        }
    }

    /** Decode speed of a fully resident single node with the same per-layer and per-expert times (no network, no loads). */
    public double residentTokensPerSecond() {
        return 1 / (layers * (mainLayerSeconds + k * expertSeconds));
    }

    public Result run(int tokens) {
        int groups = (workers + groupSize - 1) / groupSize;
        double load = expertBytes / linkBytesPerSecond + linkLatencySeconds;
        double wire = messageBytes / netBytesPerSecond;
        double[] linkFree = new double[workers], cpuFree = new double[workers];
        int steps = (tokens + 1) * layers;
        double[][] ready = new double[steps + lookahead + 1][k]; // NaN: not predicted (loaded on demand)
        for (double[] r : ready) java.util.Arrays.fill(r, Double.NaN);
        double clock = 0, timedFrom = 0, predictedCredit = 0;
        long uses = 0, stalls = 0;
        for (int s = 0; s < steps; s++) {
            int layer = s % layers;
            if (s == layers) {
                timedFrom = clock;
                uses = 0;
                stalls = 0;
            }
            // the prediction for step s + lookahead is made now: its group starts loading
            int target = s + lookahead;
            if (lookahead > 0 && target < steps) {
                int g = (target % layers) % groups;
                for (int i = 0; i < k; i++) {
                    predictedCredit += recall;
                    if (predictedCredit < 1 - 1e-9) continue;
                    predictedCredit -= 1;
                    int w = member(g, i, groups);
                    double start = Math.max(clock + netLatencySeconds + wire, linkFree[w]);
                    linkFree[w] = start + load;
                    ready[target][i] = linkFree[w];
                }
            }
            double routed = clock + mainLayerSeconds;
            int g = layer % groups;
            double end = routed, upFree = routed, downFree = 0;
            double[] back = new double[k];
            for (int i = 0; i < k; i++) {
                int w = member(g, i, groups);
                upFree += wire;
                double arrive = upFree + netLatencySeconds;
                double loaded = ready[s][i];
                if (Double.isNaN(loaded)) { // not predicted: loaded on demand once the request arrives
                    double start = Math.max(arrive, linkFree[w]);
                    linkFree[w] = start + load;
                    loaded = linkFree[w];
                }
                uses++;
                if (loaded > arrive) stalls++;
                double begin = Math.max(Math.max(arrive, loaded), cpuFree[w]);
                cpuFree[w] = begin + expertSeconds;
                back[i] = cpuFree[w];
            }
            java.util.Arrays.sort(back);
            for (double b : back) {
                downFree = Math.max(downFree, b) + wire;
                end = Math.max(end, downFree + netLatencySeconds);
            }
            clock = end;
        }
        double perToken = (clock - timedFrom) / tokens;
        return new Result(1 / perToken, uses == 0 ? 0 : (double) stalls / uses, perToken);
    }

    /** The i-th expert of a layer in group g goes to the group's (i mod size)-th worker. */
    private int member(int g, int i, int groups) {
        int first = g * groupSize, size = Math.min(groupSize, workers - first);
        return first + i % size;
    }
}
