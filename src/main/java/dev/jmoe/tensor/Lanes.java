package dev.jmoe.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Horizontal sums in a fixed order. {@code reduceLanes(ADD)} on floats may add the lanes in any order,
 * and the interpreter and the JIT-compiled intrinsic do use different orders — so the same product
 * could round differently before and after a method is compiled, and two runs of the same model in one
 * JVM would not be bit-identical. Halving with fixed shuffles gives one order everywhere, at about the
 * cost of the intrinsic.
 */
public final class Lanes {
    private Lanes() {}

    private static final VectorSpecies<Float> S256 = FloatVector.SPECIES_256;
    /*
     * The three halving steps are visible so the large row kernels can write the tree inline:
     *   h = v.add(v.rearrange(HALF_256)); h = h.add(h.rearrange(QUARTER_256));
     *   sum = h.add(h.rearrange(PAIR_256)).lane(0);
     * A call to sum() from a kernel whose compiled body is already big is refused by C2's inliner
     * (NodeCountInliningCutoff), and then the accumulator is boxed and the call made once per row,
     * which cost 20-30% of a decode step. The vector methods used inline are force-inlined by the JDK.
     * Smaller methods (FloatGemm's tiles, Ops.dot) do get sum() inlined and keep calling it.
     */
    static final VectorShuffle<Float> HALF_256 = VectorShuffle.fromValues(S256, 4, 5, 6, 7, 0, 1, 2, 3);
    static final VectorShuffle<Float> QUARTER_256 = VectorShuffle.fromValues(S256, 2, 3, 0, 1, 6, 7, 4, 5);
    static final VectorShuffle<Float> PAIR_256 = VectorShuffle.fromValues(S256, 1, 0, 3, 2, 5, 4, 7, 6);

    /** The sum of all lanes of {@code v}, added in the same order on every path. */
    public static float sum(FloatVector v) {
        if (v.length() == 8) { // 8 floats = the 256-bit species
            FloatVector h = v.add(v.rearrange(HALF_256));
            FloatVector q = h.add(h.rearrange(QUARTER_256));
            return q.add(q.rearrange(PAIR_256)).lane(0);
        }
        float s = 0;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }
}
