package dev.jmoe.model;

import dev.jmoe.tensor.Matrix;

/**
 * One routed expert's SwiGLU weights: {@code down(silu(gate·x) ⊙ up·x)}. gate and up are
 * [nFf × nEmbd], down is [nEmbd × nFf]. Where the bytes live (file mapping, a fast-memory slot, a
 * buffer just read from storage) is the {@link ExpertSource}'s business.
 */
public record ExpertWeights(int layer, int expert, Matrix gate, Matrix up, Matrix down) {
    public ExpertWeights {
        if (gate == null || up == null || down == null) throw new IllegalArgumentException("gate, up and down are required");
        if (gate.rows() != up.rows() || gate.cols() != up.cols() || down.cols() != gate.rows() || down.rows() != gate.cols()) {
            throw new IllegalArgumentException("expert " + layer + "/" + expert + " has inconsistent shapes: gate "
                    + gate.rows() + "x" + gate.cols() + ", up " + up.rows() + "x" + up.cols() + ", down " + down.rows() + "x" + down.cols());
        }
    }

    /** Bytes of the three matrices together. */
    public long byteSize() { return gate.byteSize() + up.byteSize() + down.byteSize(); }
}
