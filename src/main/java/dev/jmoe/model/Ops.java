package dev.jmoe.model;

import dev.jmoe.tensor.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Small float-array operations of the forward pass (norms, attention dots, activations). */
final class Ops {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private Ops() {}

    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc);
        }
        float sum = Lanes.sum(acc);
        for (; i < n; i++) sum += a[aOff + i] * b[bOff + i];
        return sum;
    }

    /** y[yOff..] += a · x[xOff..] */
    static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        FloatVector av = FloatVector.broadcast(S, a);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, xOff + i).fma(av, FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) y[yOff + i] += a * x[xOff + i];
    }

    /** out = x / sqrt(mean(x²) + eps) · w, with the sum of squares in double as ggml does. */
    static void rmsNorm(float[] x, int xOff, float[] w, float eps, float[] out, int outOff, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            sum += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt((float) (sum / n) + eps));
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * scale * w[i];
    }

    static float silu(float x) {
        return (float) (x / (1.0 + Math.exp(-x)));
    }

    static float sigmoid(float x) {
        return (float) (1.0 / (1.0 + Math.exp(-x)));
    }

    /** In-place softmax of x[off..off+n). */
    static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) x[off + i] *= inv;
    }
}
