package dev.jmoe.model;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An architecture described as data: which optional tensors its blocks carry and which variant of
 * each step it uses. One forward pass ({@link Model}) interprets this table for every architecture, the
 * way llama.cpp's graph builders differ only in these switches for the families jmoe runs.
 *
 * @param name          value of {@code general.architecture}
 * @param rope          how RoPE pairs dimensions
 * @param qkvBias       q/k/v projections carry biases ({@code attn_q.bias} …)
 * @param qkNorm        RMSNorm applied to queries and keys before RoPE
 * @param moe           blocks have routed experts (else a dense SwiGLU FFN)
 * @param renormTopK    the k selected softmax weights are rescaled to sum to 1
 * @param sharedExpert  blocks have a shared expert gated by sigmoid({@code ffn_gate_inp_shexp}·x)
 */
public record ArchSpec(String name, RopeStyle rope, boolean qkvBias, QkNorm qkNorm, boolean moe,
                       boolean renormTopK, boolean sharedExpert) {

    /** Which dimensions RoPE rotates together. */
    public enum RopeStyle {
        /** adjacent pairs (2i, 2i+1) — llama.cpp's LLAMA_ROPE_TYPE_NORM */
        NORM,
        /** halves (i, i + n_rot/2) — LLAMA_ROPE_TYPE_NEOX */
        NEOX
    }

    /** Where queries and keys are RMS-normalised. */
    public enum QkNorm {
        NONE,
        /** per head, weights of length head_dim (qwen3, qwen3moe) */
        PER_HEAD,
        /** over the whole projection, weights of length n_head·head_dim (olmoe) */
        FULL
    }

    public ArchSpec {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("architecture name is required");
        if (rope == null || qkNorm == null) throw new IllegalArgumentException("rope and qkNorm are required");
        if (sharedExpert && !moe) throw new IllegalArgumentException(name + ": a shared expert needs an MoE block");
    }

    private static final Map<String, ArchSpec> KNOWN = new TreeMap<>();

    static {
        // llama with ffn_*_exps tensors is Mixtral; without them it is dense llama. Both route like Mixtral.
        register(new ArchSpec("llama", RopeStyle.NORM, false, QkNorm.NONE, true, true, false));
        register(new ArchSpec("mixtral", RopeStyle.NORM, false, QkNorm.NONE, true, true, false));
        register(new ArchSpec("qwen2moe", RopeStyle.NEOX, true, QkNorm.NONE, true, false, true));
        register(new ArchSpec("qwen3moe", RopeStyle.NEOX, false, QkNorm.PER_HEAD, true, true, false));
        register(new ArchSpec("olmoe", RopeStyle.NEOX, false, QkNorm.FULL, true, false, false));
        register(new ArchSpec("qwen3", RopeStyle.NEOX, false, QkNorm.PER_HEAD, false, false, false));
        register(new ArchSpec("qwen2", RopeStyle.NEOX, true, QkNorm.NONE, false, false, false));
    }

    private static void register(ArchSpec spec) { KNOWN.put(spec.name(), spec); }

    /** The spec for {@code general.architecture}, or an error listing the supported ones. */
    public static ArchSpec forName(String name) {
        ArchSpec spec = KNOWN.get(name);
        if (spec == null) {
            throw new ModelException("unsupported architecture '" + name + "'; jmoe runs: " + String.join(", ", KNOWN.keySet()));
        }
        return spec;
    }

    public static List<String> supported() { return List.copyOf(KNOWN.keySet()); }

    /** The same spec for a file whose blocks turn out to have no experts (dense llama, for instance). */
    public ArchSpec dense() {
        return new ArchSpec(name, rope, qkvBias, qkNorm, false, false, false);
    }
}
