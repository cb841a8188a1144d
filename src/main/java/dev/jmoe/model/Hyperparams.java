package dev.jmoe.model;

import dev.jmoe.gguf.GgufFile;

/**
 * Shape and numeric settings of a model, read from {@code <arch>.*} metadata keys.
 *
 * @param nRot             dimensions of each head that RoPE rotates (≤ headDim)
 * @param ropeFreqScale    1 / linear scaling factor (1 = no scaling)
 * @param nFfExpert        rows of each routed expert's gate/up matrices (0 for dense models)
 * @param nFfShared        rows of the shared expert (0 if none)
 */
public record Hyperparams(String arch, int nEmbd, int nLayer, int nHead, int nHeadKv, int headDim, int nRot,
                          int nFf, int nFfExpert, int nFfShared, int nExpert, int nExpertUsed,
                          int nVocab, int contextLength, float rmsEps, float ropeTheta, float ropeFreqScale) {
    public Hyperparams {
        require(nEmbd > 0, "embedding_length must be positive, got " + nEmbd);
        require(nLayer > 0, "block_count must be positive, got " + nLayer);
        require(nHead > 0 && nHeadKv > 0, "head counts must be positive, got " + nHead + "/" + nHeadKv);
        require(nHead % nHeadKv == 0, "head_count " + nHead + " is not a multiple of head_count_kv " + nHeadKv);
        require(headDim > 0 && headDim % 2 == 0, "head dimension must be positive and even, got " + headDim);
        // Widths are products of two file values: they must fit the int indices the forward pass uses.
        require((long) nHead * headDim <= Integer.MAX_VALUE, "head_count " + nHead + " x head dimension " + headDim + " is too large");
        require(nRot > 0 && nRot <= headDim && nRot % 2 == 0, "rope.dimension_count " + nRot + " must be even and ≤ head dim " + headDim);
        require(nFf >= 0 && nFfExpert >= 0 && nFfShared >= 0, "feed-forward lengths must not be negative, got " + nFf + "/" + nFfExpert + "/" + nFfShared);
        require(nExpert >= 0 && nExpertUsed >= 0 && nExpertUsed <= nExpert, "expert_used_count " + nExpertUsed + " must be ≤ expert_count " + nExpert);
        require(nVocab > 0, "vocabulary size must be positive");
        require(contextLength > 0, "context_length must be positive, got " + contextLength);
        // Infinite or NaN settings pass "> 0" checks but turn every activation into NaN or garbage.
        require(Float.isFinite(rmsEps) && rmsEps > 0, "layer_norm_rms_epsilon must be a finite positive number, got " + rmsEps);
        require(Float.isFinite(ropeTheta) && ropeTheta > 0, "rope.freq_base must be a finite positive number, got " + ropeTheta);
        require(Float.isFinite(ropeFreqScale) && ropeFreqScale > 0, "rope frequency scale must be a finite positive number, got " + ropeFreqScale);
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new ModelException("bad hyperparameter: " + message);
    }

    public boolean hasExperts() { return nExpert > 0; }

    /** Width of all query heads together. */
    public int qDim() { return nHead * headDim; }

    /** Width of all key (and value) heads together. */
    public int kvDim() { return nHeadKv * headDim; }

    /** Reads the hyperparameters of {@code file}, whose vocabulary size comes from the token embedding. */
    public static Hyperparams read(GgufFile file, String arch, int nVocab) {
        String p = arch + ".";
        int nEmbd = requiredInt(file, p + "embedding_length");
        int nLayer = requiredInt(file, p + "block_count");
        int nHead = requiredInt(file, p + "attention.head_count");
        // Checked here, before the divisions and defaults below use them (the record checks the rest).
        if (nEmbd <= 0) throw new ModelException(file.path() + ": " + p + "embedding_length must be positive, got " + nEmbd);
        if (nHead <= 0) throw new ModelException(file.path() + ": " + p + "attention.head_count must be positive, got " + nHead);
        int nHeadKv = file.getInt(p + "attention.head_count_kv", nHead);
        int headDim = file.getInt(p + "attention.key_length", nEmbd / nHead);
        int valueDim = file.getInt(p + "attention.value_length", headDim);
        if (valueDim != headDim) {
            throw new ModelException(file.path() + ": " + p + "attention.value_length " + valueDim + " differs from key_length "
                    + headDim + "; jmoe needs them equal");
        }
        int nRot = file.getInt(p + "rope.dimension_count", headDim);
        int nExpert = file.getInt(p + "expert_count", 0);
        int nExpertUsed = file.getInt(p + "expert_used_count", 0);
        int nFf = file.getInt(p + "feed_forward_length", 0);
        int nFfExpert = file.getInt(p + "expert_feed_forward_length", nExpert > 0 ? nFf : 0);
        int nFfShared = file.getInt(p + "expert_shared_feed_forward_length", 0);
        int ctx = file.getInt(p + "context_length", 4096);
        float eps = (float) file.getDouble(p + "attention.layer_norm_rms_epsilon", 1e-5);
        float theta = (float) file.getDouble(p + "rope.freq_base", 10000.0);
        float freqScale = 1.0f;
        String scaling = file.getString(p + "rope.scaling.type", "none");
        switch (scaling) {
            case "none" -> { }
            case "linear" -> {
                double factor = file.getDouble(p + "rope.scaling.factor", 1.0);
                if (!(factor > 0) || Double.isInfinite(factor)) throw new ModelException(file.path() + ": rope.scaling.factor must be positive, got " + factor);
                freqScale = (float) (1.0 / factor);
            }
            default -> {
                double factor = file.getDouble(p + "rope.scaling.factor", 1.0);
                if (factor != 1.0) {
                    throw new ModelException(file.path() + ": rope.scaling.type '" + scaling + "' (factor " + factor
                            + ") is not supported yet; jmoe supports none and linear");
                }
            }
        }
        try {
            return new Hyperparams(arch, nEmbd, nLayer, nHead, nHeadKv, headDim, nRot, nFf, nFfExpert, nFfShared,
                    nExpert, nExpertUsed, nVocab, ctx, eps, theta, freqScale);
        } catch (ModelException e) {
            throw new ModelException(file.path() + ": " + e.getMessage(), e);
        }
    }

    private static int requiredInt(GgufFile file, String key) {
        if (!file.has(key)) throw new ModelException(file.path() + ": required metadata key '" + key + "' is missing");
        return file.getInt(key);
    }
}
