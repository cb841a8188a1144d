package dev.jmoe.model;

/**
 * Rotary position embedding with cos/sin tables precomputed per position, for NORM (adjacent pairs) or
 * NEOX (halves) pairing. θ_i = pos · freqScale · base^(−2i/nRot) / freqFactor_i.
 */
final class Rope {
    private final ArchSpec.RopeStyle style;
    private final int nRot;
    private final float[] cos;
    private final float[] sin;
    private final int maxPos;

    Rope(Hyperparams hp, ArchSpec.RopeStyle style, float[] freqFactors, int maxPos) {
        this.style = style;
        this.nRot = hp.nRot();
        this.maxPos = maxPos;
        int half = nRot / 2;
        cos = new float[maxPos * half];
        sin = new float[maxPos * half];
        for (int i = 0; i < half; i++) {
            double invFreq = Math.pow(hp.ropeTheta(), -2.0 * i / nRot);
            if (freqFactors != null) invFreq /= freqFactors[i];
            for (int p = 0; p < maxPos; p++) {
                double theta = p * hp.ropeFreqScale() * invFreq;
                cos[p * half + i] = (float) Math.cos(theta);
                sin[p * half + i] = (float) Math.sin(theta);
            }
        }
    }

    /** Positions the tables cover. */
    int maxPositions() { return maxPos; }

    /** Rotates one head's first nRot dimensions, x[off..off+headDim), at position pos. */
    void apply(float[] x, int off, int pos) {
        int half = nRot / 2, base = pos * half;
        if (style == ArchSpec.RopeStyle.NORM) {
            for (int i = 0; i < half; i++) {
                float c = cos[base + i], s = sin[base + i];
                float a = x[off + 2 * i], b = x[off + 2 * i + 1];
                x[off + 2 * i] = a * c - b * s;
                x[off + 2 * i + 1] = a * s + b * c;
            }
        } else {
            for (int i = 0; i < half; i++) {
                float c = cos[base + i], s = sin[base + i];
                float a = x[off + i], b = x[off + i + half];
                x[off + i] = a * c - b * s;
                x[off + i + half] = a * s + b * c;
            }
        }
    }
}
