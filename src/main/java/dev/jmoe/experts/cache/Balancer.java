package dev.jmoe.experts.cache;

/**
 * The split of a decode layer's misses between the two sides, from measured costs: each miss is either loaded into fast
 * memory over the link (then computed on the fast side) or computed on the slow side straight from the store. Both
 * sides start when the layer's routing is known; the layer ends when both are done.
 *
 * <p>Two cost models, after where the slow side runs:
 * <ul>
 *   <li>serial (Fiddler as jmoe first built it): the compute thread runs the hits, then the slow-side experts; the link
 *       runs the loads meanwhile, and the loaded experts are computed after them.
 *       End = max(hits·c + slows·s, (inflight + loads)·l) + loads·c.</li>
 *   <li>overlapped (SMoE): the slow side is a device of its own and computes its experts while the fast side computes the
 *       hits and the loaded experts. End = max(max(hits·c, (inflight + loads)·l) + loads·c, slows·s).</li>
 * </ul>
 * And two orders in which misses are assigned:
 * <ul>
 *   <li>{@link #slowSide}: each miss in the order given (expert id), to the side that ends the layer sooner then.</li>
 *   <li>{@link #scoreSplit}: SMoE's two-pointer split over the misses sorted by router score: the highest-scoring misses
 *       are loaded from the front (they are the most likely to be used again, and loading caches them), the lowest are
 *       computed on the slow side from the back, each step moving the pointer of the side that ends the layer sooner,
 *       until the pointers meet.</li>
 * </ul>
 * Ties go to loading (it also warms the cache).
 */
final class Balancer {
    private Balancer() {}

    /** When the layer ends with this assignment (see the class comment), in the unit of the costs. */
    static double finish(int hits, int slows, int inflight, int loads, double compute, double slow, double load, boolean overlap) {
        if (overlap) return Math.max(Math.max(hits * compute, (inflight + loads) * load) + loads * compute, slows * slow);
        return Math.max(hits * compute + slows * slow, (inflight + loads) * load) + loads * compute;
    }

    /**
     * Whether the next miss (in id order) should be computed on the slow side, given the assignment so far (serial model).
     *
     * @param hits     experts already resident (compute only)
     * @param slows    misses already put on the slow side
     * @param inflight loads already under way (prefetches)
     * @param loads    misses already put on the load side
     * @param compute  fast-side compute time of one expert
     * @param slow     slow-side time of one expert (its stretched compute, plus the read where the store needs one)
     * @param load     time to load one expert
     */
    static boolean slowSide(int hits, int slows, int inflight, int loads, double compute, double slow, double load) {
        return slowSide(hits, slows, inflight, loads, compute, slow, load, false);
    }

    /** As above, under the serial or the overlapped model. */
    static boolean slowSide(int hits, int slows, int inflight, int loads, double compute, double slow, double load, boolean overlap) {
        double viaLoad = finish(hits, slows, inflight, loads + 1, compute, slow, load, overlap);
        double viaSlow = finish(hits, slows + 1, inflight, loads, compute, slow, load, overlap);
        return viaSlow < viaLoad;
    }

    /**
     * SMoE's two-pointer split of {@code misses} misses sorted by score (best first): returns how many of them, from the
     * front, are loaded; the rest are computed on the slow side.
     */
    static int scoreSplit(int hits, int inflight, int misses, double compute, double slow, double load, boolean overlap) {
        int front = 0, back = misses - 1, loads = 0, slows = 0;
        while (front <= back) {
            double viaLoad = finish(hits, slows, inflight, loads + 1, compute, slow, load, overlap);
            double viaSlow = finish(hits, slows + 1, inflight, loads, compute, slow, load, overlap);
            if (viaLoad <= viaSlow) {
                loads++;
                front++;
            } else {
                slows++;
                back--;
            }
        }
        return loads;
    }
}
