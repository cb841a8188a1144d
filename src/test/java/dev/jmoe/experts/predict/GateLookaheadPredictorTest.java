package dev.jmoe.experts.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.model.InferenceState;
import dev.jmoe.model.LayerWeights;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import dev.jmoe.tensor.Parallel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Gate lookahead against the real routers, and against a by-hand norm + router product. */
class GateLookaheadPredictorTest {
    @Test
    void aLayersOwnGateOnItsOwnInputIsItsRouting() {
        Model m = PredictTestModels.qwen2moeF16();
        int nLayer = m.hyperparams().nLayer(), k = m.hyperparams().nExpertUsed();
        try (Parallel pool = new Parallel(1)) {
            InferenceState st = m.newState(16, pool);
            GateLookaheadPredictor gate = new GateLookaheadPredictor(m);
            List<int[]> predicted = new ArrayList<>(), real = new ArrayList<>();
            // distance nLayer from layer l names layer l of the next token; applied to layer l's own residual it
            // must reproduce layer l's router exactly (same norm arithmetic, same product)
            st.setLayerHook((layer, pos, n, residual, normed) -> {
                gate.onLayer(layer, pos, residual, normed);
                int[] out = new int[k];
                assertEquals(k, gate.predict(pos, layer, nLayer, out));
                predicted.add(out);
            });
            st.setRoutingHook((layer, pos, n, probs, routing) -> {
                int[] r = new int[k];
                for (int j = 0; j < k; j++) r[j] = routing.expert(0, j);
                real.add(r);
            });
            for (int t : PredictTestModels.tokens(6, 9, m.hyperparams().nVocab())) st.next(t);
            assertEquals(6 * nLayer, real.size());
            for (int i = 0; i < real.size(); i++) assertArrayEquals(real.get(i), predicted.get(i), "step " + i);
        }
    }

    @Test
    void laterLayersGateMatchesAHandComputation() {
        Model m = PredictTestModels.qwen2moeF16();
        int e = m.hyperparams().nEmbd(), nExp = m.hyperparams().nExpert();
        float[] residual = new float[e];
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        for (int i = 0; i < e; i++) residual[i] = (float) r.nextGaussian();
        GateLookaheadPredictor gate = new GateLookaheadPredictor(m);
        gate.onLayer(0, 3, residual, null);
        for (int d = 1; d <= 3; d++) {
            LayerWeights target = m.layer(d);
            double ss = 0;
            for (float v : residual) ss += (double) v * v;
            double scale = 1 / Math.sqrt(ss / e + m.hyperparams().rmsEps());
            Matrix router = target.router();
            float[] row = new float[e];
            double[] logit = new double[nExp];
            for (int x = 0; x < nExp; x++) {
                Kernels.forType(router.type()).dequantizeRow(router.data(), x * router.rowBytes(), row, 0, e);
                for (int i = 0; i < e; i++) logit[x] += row[i] * residual[i] * scale * target.ffnNorm()[i];
            }
            Integer[] order = new Integer[nExp];
            for (int x = 0; x < nExp; x++) order[x] = x;
            Arrays.sort(order, (a, b) -> Double.compare(logit[b], logit[a]));
            int[] want = {order[0], order[1], order[2], order[3]};
            int[] got = new int[4];
            assertEquals(4, gate.predict(3, 0, d, got));
            assertArrayEquals(want, got, "lookahead " + d);
            assertTrue(logit[order[3]] - logit[order[4]] > 1e-4, "the hand computation is not a near tie");
        }
        assertEquals(0, gate.predict(4, 0, 1, new int[4]), "no residual seen for position 4");
    }
}
