package dev.jmoe.model;

import dev.jmoe.tensor.Matrix;

/**
 * One layer's experts as stored in GGUF: stacked 3-D tensors whose e-th slab is expert e.
 * {@code gate}/{@code up} are [nExpert·nFf × nEmbd], {@code down} is [nExpert·nEmbd × nFf].
 * Also used to describe where each expert's bytes sit, for sources that read them from storage.
 */
public record StackedExperts(int layer, int nExpert, int nFf, int nEmbd, Matrix gate, Matrix up, Matrix down) {
    public StackedExperts {
        if (gate.rows() != nExpert * nFf || up.rows() != nExpert * nFf || down.rows() != nExpert * nEmbd
                || gate.cols() != nEmbd || up.cols() != nEmbd || down.cols() != nFf) {
            throw new IllegalArgumentException("layer " + layer + ": expert tensors do not match " + nExpert + " experts of "
                    + nFf + "x" + nEmbd);
        }
    }

    /** Expert e's slices of the stacked tensors, sharing their memory. */
    public ExpertWeights expert(int e) {
        if (e < 0 || e >= nExpert) throw new IndexOutOfBoundsException("layer " + layer + " has no expert " + e);
        return new ExpertWeights(layer, e, gate.rows(e * nFf, nFf), up.rows(e * nFf, nFf), down.rows(e * nEmbd, nEmbd));
    }

    /** Bytes of one expert (all three matrices). */
    public long expertBytes() {
        return (gate.byteSize() + up.byteSize() + down.byteSize()) / nExpert;
    }
}
