package dev.jmoe.experts.cache;

/**
 * Fiddler/SMoE's split of a decode layer's misses between the two sides, from measured costs. Both sides start
 * when the layer's routing is known: the compute thread runs the hits, then the slow-side experts (computed
 * straight from the store); the link runs the loads (prefetches in flight first). The layer ends when both are
 * done and the loaded experts are computed. Each miss, in order, goes to the side that makes that end earliest,
 * so the two sides finish together; ties go to loading (it also warms the cache).
 */
final class Balancer {
    private Balancer() {}

    /**
     * @param hits     experts already resident (compute only)
     * @param slows    misses already put on the slow side
     * @param inflight loads already under way (prefetches)
     * @param loads    misses already put on the load side
     * @param compute  fast-side compute time of one expert
     * @param slow     slow-side time of one expert (its stretched compute, plus the read where the store needs one)
     * @param load     time to load one expert
     * @return whether the next miss should be computed on the slow side
     */
    static boolean slowSide(int hits, int slows, int inflight, int loads, double compute, double slow, double load) {
        double viaLoad = Math.max(hits * compute + slows * slow, (inflight + loads + 1) * load) + (loads + 1) * compute;
        double viaSlow = Math.max(hits * compute + (slows + 1) * slow, (inflight + loads) * load) + loads * compute;
        return viaSlow < viaLoad;
    }
}
