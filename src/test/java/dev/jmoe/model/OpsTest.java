package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class OpsTest {
    private static final jdk.incubator.vector.VectorSpecies<Float> S = Ops.S; // the references run at Ops' width

    /** y += a·x the way attention used to accumulate value rows: fused per vector lane, then the tail. */
    private static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        var av = jdk.incubator.vector.FloatVector.broadcast(S, a);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            jdk.incubator.vector.FloatVector.fromArray(S, x, xOff + i).fma(av, jdk.incubator.vector.FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) y[yOff + i] += a * x[xOff + i];
    }

    @Test
    void firstNonFiniteFindsTheFirstNaNOrInfinityAnywhereInTheRange() {
        Random r = new Random(5);
        for (int n : new int[] {0, 1, 7, 8, 9, 31, 64, 100}) {
            float[] x = new float[n + 6];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 1e30); // large but finite
            assertEquals(-1, Ops.firstNonFinite(x, 3, n), "all finite, n=" + n);
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                for (int at = 0; at < n; at++) {
                    float[] y = x.clone();
                    y[3 + at] = bad;
                    if (at + 2 < n) y[3 + at + 2] = Float.NaN; // a later one must not win
                    assertEquals(at, Ops.firstNonFinite(y, 3, n), bad + " at " + at + " of " + n);
                }
                // just outside the range on either side: not seen
                float[] y = x.clone();
                y[2] = bad;
                y[3 + n] = bad;
                assertEquals(-1, Ops.firstNonFinite(y, 3, n), bad + " outside " + n);
            }
        }
    }

    @Test
    void fourDotsAtOnceMatchOneByOne() {
        Random r = new Random(3);
        for (int n : new int[] {1, 3, 4, 8, 31, 32, 64, 80, 128, 130}) {
            for (int stride : new int[] {n, n + 5, 3 * n + 1}) {
                float[] q = new float[n + 7], k = new float[2 + 4 * stride + n], out = new float[6];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                for (int i = 0; i < k.length; i++) k[i] = (float) r.nextGaussian();
                Ops.dot4(q, 3, k, 2, stride, n, out, 1);
                for (int row = 0; row < 4; row++) {
                    double want = 0;
                    for (int i = 0; i < n; i++) want += (double) q[3 + i] * k[2 + row * stride + i];
                    assertEquals(want, out[1 + row], 1e-4 * Math.max(1, Math.sqrt(n)), "n=" + n + " stride=" + stride + " row " + row);
                }
                assertEquals(0f, out[0]);
                assertEquals(0f, out[5]);
            }
        }
    }

    @Test
    void weightedRowsIsTheSameArithmeticAsAxpyIntoZeros() {
        Random r = new Random(4);
        for (int n : new int[] {1, 7, 8, 32, 64, 72, 128, 131}) {
            for (int count : new int[] {1, 2, 5, 40}) {
                int stride = n + 3;
                float[] w = new float[count], v = new float[5 + count * stride];
                for (int j = 0; j < count; j++) w[j] = r.nextFloat();
                for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
                float[] want = new float[n + 2], got = new float[n + 2];
                for (int j = 0; j < count; j++) axpy(w[j], v, 5 + j * stride, want, 1, n);
                java.util.Arrays.fill(got, -7f);
                Ops.weightedRows(w, count, v, 5, stride, n, got, 1);
                for (int d = 0; d < n; d++) {
                    assertEquals(want[1 + d], got[1 + d], "n=" + n + " count=" + count + " d=" + d); // bit for bit
                }
                assertEquals(-7f, got[0]);
                assertEquals(-7f, got[n + 1]);
            }
        }
    }

    @Test
    void fourHeadsSharingKeysMatchOneHeadAtATime() {
        Random r = new Random(5);
        for (int n : new int[] {8, 64, 72, 128}) {
            int count = 37, kStride = 3 * n, qStride = n;
            float[] q = new float[2 + 4 * qStride], k = new float[1 + count * kStride], v = new float[1 + count * kStride];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) r.nextGaussian();
                v[i] = (float) r.nextGaussian();
            }
            float[][] sc = new float[4][count + 3];
            Ops.scores4(q, 2, qStride, k, 1, kStride, count, n, 0.5f, sc);
            float[] att4 = new float[4 * qStride], att1 = new float[4 * qStride];
            for (int g = 0; g < 4; g++) {
                for (int j = 0; j < count; j++) {
                    double want = 0;
                    for (int i = 0; i < n; i++) want += (double) q[2 + g * qStride + i] * k[1 + j * kStride + i];
                    assertEquals(want * 0.5, sc[g][j], 1e-4 * Math.sqrt(n), "n=" + n + " head " + g + " key " + j);
                }
                Ops.softmax(sc[g], 0, count);
                Ops.weightedRows(sc[g], count, v, 1, kStride, n, att1, g * qStride);
            }
            Ops.weightedRows4(sc, count, v, 1, kStride, n, att4, 0, qStride);
            assertEquals(java.util.Arrays.toString(att1), java.util.Arrays.toString(att4), "n=" + n + ": same arithmetic, bit for bit");
        }
    }

    @Test
    void expIsWithinTwoUlpsOfMathExpAndTheVectorLanesMatchTheScalar() {
        Random r = new Random(6);
        int n = 4099;
        float[] x = new float[n + 2];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 170 - 86); // [-86, 84]
        x[5] = 0f;
        x[6] = -1e-30f;
        float shift = 1.25f;
        float[] v = x.clone();
        Ops.expShifted(v, 1, n, shift);
        for (int i = 1; i <= n; i++) {
            float arg = x[i] - shift;
            double want = Math.exp(arg);
            float ulp = Math.ulp((float) want);
            assertEquals(want, v[i], 2 * ulp, "e^" + arg);
            assertEquals(Ops.exp(arg), v[i], "lane " + i + ": scalar twin, bit for bit");
        }
        assertEquals(x[0], v[0]);
        assertEquals(x[n + 1], v[n + 1]);
        assertEquals(0.0, Ops.exp(-200f), 1e-37, "far below: a tiny normal, not garbage");
        assertTrue(Float.isFinite(Ops.exp(500f)), "far above: clamped, finite");
    }

    @Test
    void siluTimesFollowsTheExactSiluAndTheVectorLanesMatchTheScalar() {
        Random r = new Random(7);
        int n = 1027; // whole vectors and a tail
        float[] g = new float[n + 2], u = new float[n + 1];
        for (int i = 0; i < g.length; i++) g[i] = (float) (r.nextGaussian() * 12);
        for (int i = 0; i < u.length; i++) u[i] = (float) r.nextGaussian();
        g[3] = 0f;
        g[4] = -100f; // e^100 is past the clamp: silu is a tiny negative, not NaN
        g[5] = 120f;
        float[] out = g.clone();
        Ops.siluTimes(out, 1, u, 0, n);
        for (int i = 1; i <= n; i++) {
            double x = g[i], want = x / (1 + Math.exp(-x)) * u[i - 1];
            assertEquals(want, out[i], 4 * Math.ulp((float) want) + 1e-30, "silu(" + x + ")·" + u[i - 1]);
            assertEquals(Ops.silu(g[i]) * u[i - 1], out[i], "lane " + i + ": scalar twin, bit for bit");
        }
        assertEquals(g[0], out[0]);
        assertEquals(g[n + 1], out[n + 1]);
    }

    @Test
    void attentionSoftmaxSumsToOneAndFollowsTheExactSoftmax() {
        Random r = new Random(8);
        float[] a = new float[300], b;
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian() * 4;
        b = a.clone();
        Ops.softmax(a, 0, a.length);
        Ops.attentionSoftmax(b, 0, b.length);
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], 4 * Math.ulp(a[i]) + 1e-12);
            sum += b[i];
        }
        assertEquals(1.0, sum, 1e-5);
    }
}
