package dev.jmoe.model;

import dev.jmoe.tensor.Matrix;

/**
 * One transformer block's non-expert weights (always resident) plus a description of its experts.
 * Optional parts are null when the architecture does not have them.
 */
public record LayerWeights(
        float[] attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
        float[] bq, float[] bk, float[] bv,
        float[] qNorm, float[] kNorm,
        float[] ffnNorm,
        // dense FFN
        Matrix ffnGate, Matrix ffnUp, Matrix ffnDown,
        // routed experts
        Matrix router, StackedExperts experts,
        // shared expert
        float[] sharedGateInp, Matrix sharedGate, Matrix sharedUp, Matrix sharedDown) {

    public boolean isMoe() { return router != null; }

    /** Every weight matrix of the block, the stacked experts included, in a fixed order (absent parts skipped). */
    public java.util.List<Matrix> matrices() {
        java.util.List<Matrix> out = new java.util.ArrayList<>();
        for (Matrix m : new Matrix[] {wq, wk, wv, wo, ffnGate, ffnUp, ffnDown, router, sharedGate, sharedUp, sharedDown}) {
            if (m != null) out.add(m);
        }
        if (experts != null) {
            out.add(experts.gate());
            out.add(experts.up());
            out.add(experts.down());
        }
        return out;
    }
}
