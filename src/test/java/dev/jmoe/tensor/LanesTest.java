package dev.jmoe.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** Lanes.sum adds in one documented order, whatever the JIT does, so results are reproducible bit for bit. */
class LanesTest {
    @Test
    void sumsEightLanesAsAFixedPairwiseTree() {
        SplittableRandom rnd = new SplittableRandom(3);
        float[] a = new float[8];
        for (int rep = 0; rep < 10_000; rep++) {
            for (int i = 0; i < 8; i++) a[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(-6, 7)));
            FloatVector v = FloatVector.fromArray(FloatVector.SPECIES_256, a, 0);
            float h0 = a[0] + a[4], h1 = a[1] + a[5], h2 = a[2] + a[6], h3 = a[3] + a[7];
            float expected = (h0 + h2) + (h1 + h3);
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(Lanes.sum(v)), "rep " + rep);
        }
    }

    @Test
    void otherShapesSumInLaneOrder() {
        float[] a = {1e8f, 1f, -1e8f, 1f};
        FloatVector v = FloatVector.fromArray(FloatVector.SPECIES_128, a, 0);
        assertEquals(((1e8f + 1f) + -1e8f) + 1f, Lanes.sum(v));
    }
}
