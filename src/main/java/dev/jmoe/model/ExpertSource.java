package dev.jmoe.model;

import dev.jmoe.tensor.Parallel;

/**
 * Where the MoE layer gets each expert's weights from. The forward pass only ever calls these
 * methods, so moving experts between memory tiers never touches it.
 * <p>
 * Per MoE layer and batch the forward pass calls {@link #willUse} once with every expert it is about
 * to compute, then {@link #acquire}/{@link #release} around each expert's compute, in the order it
 * chooses. Between acquire and release the weights must stay valid (the expert is pinned).
 */
public interface ExpertSource extends AutoCloseable {
    /** The layer is about to compute these experts (in this order); a source may start loading them. */
    default void willUse(int layer, int[] experts) {}

    /**
     * {@link #willUse(int, int[])} from a forward pass that lends its compute threads for the call (the resident
     * source packs first-used experts with them); sources that have no use for the threads ignore them.
     */
    default void willUse(int layer, int[] experts, Parallel pool) { willUse(layer, experts); }

    /**
     * The order in which to compute the experts just announced by {@link #willUse} (a permutation of them).
     * A source that is still loading some experts puts the ready ones first, so compute overlaps the loads;
     * the result does not depend on this order (each expert's output has its own slot).
     */
    default int[] order(int layer, int[] experts) { return experts; }

    /**
     * Whether every one of these just-announced experts can be acquired now without waiting and held together, so
     * the forward pass may compute them all in one step (a decode token's experts share one dispatch). Sources that
     * bring experts in keep the default: they overlap loading one expert with computing another instead.
     */
    default boolean allReady(int layer, int[] experts) { return false; }

    /** No experts. */
    int[] NO_EXPERTS = {};

    /**
     * Of the experts just announced by {@link #willUse}, those this source computes on a side of its own, in parallel with
     * the forward pass (SMoE's and Fiddler's slow side: a slower device computing from the store while the fast side
     * computes the rest). The pass hands their computation to {@link #runAside}, computes the others itself and waits
     * for both before it combines the outputs. Default: none.
     */
    default int[] aside(int layer) { return NO_EXPERTS; }

    /** Runs the aside experts' computation ({@link #aside}) on the source's side; the future completes when it has. */
    default java.util.concurrent.Future<?> runAside(Runnable work) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " computes no experts aside");
    }

    /**
     * How many of the experts {@link #order} returned come first because they were ready in fast memory when the layer
     * began (a single-token step's hits): the pass reports its partial output once it has computed them, for predictions
     * of the next layer made from it ({@link PartialOutputHook}). Default 0.
     */
    default int readyCount(int layer) { return 0; }

    /** The weights of (layer, expert), waiting for them if they are still being brought in. */
    ExpertWeights acquire(int layer, int expert);

    /** The forward pass is done with these weights. */
    default void release(ExpertWeights weights) {}

    @Override default void close() {}
}
