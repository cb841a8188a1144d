package dev.jmoe.model;

import dev.jmoe.tensor.GgmlType;
import java.util.Arrays;
import java.util.Locale;

/**
 * A whole-file quantization recipe ({@code general.file_type}) and the per-tensor type it implies,
 * following the shape of llama.cpp's choices: norms, biases and routers stay F32; the output and some
 * value/down projections get more bits in the mixed K-quant recipes; with 8 or more experts attention
 * k/v are kept at 8 bits (they are tiny next to the experts and matter for quality).
 */
public enum FileType {
    F32(0, GgmlType.F32),
    F16(1, GgmlType.F16),
    Q4_0(2, GgmlType.Q4_0),
    Q4_1(3, GgmlType.Q4_1),
    Q8_0(7, GgmlType.Q8_0),
    Q5_0(8, GgmlType.Q5_0),
    Q5_1(9, GgmlType.Q5_1),
    Q4_K_S(14, GgmlType.Q4_K),
    Q4_K_M(15, GgmlType.Q4_K),
    Q5_K_S(16, GgmlType.Q5_K),
    Q5_K_M(17, GgmlType.Q5_K),
    Q6_K(18, GgmlType.Q6_K),
    BF16(32, GgmlType.BF16);

    private final int id;
    private final GgmlType base;

    FileType(int id, GgmlType base) {
        this.id = id;
        this.base = base;
    }

    /** Value of {@code general.file_type}. */
    public int id() { return id; }

    public GgmlType base() { return base; }

    public static FileType parse(String s) {
        String norm = s.trim().toUpperCase(Locale.ROOT).replace('-', '_');
        for (FileType t : values()) if (t.name().equals(norm)) return t;
        throw new IllegalArgumentException("unknown tensor type '" + s + "'; choose one of " + Arrays.toString(values()));
    }

    /**
     * The type of a weight matrix whose rows have {@code cols} values.
     *
     * @param role   tensor name without the {@code blk.N.} prefix and {@code .weight} suffix (e.g. "attn_v", "ffn_down_exps", "output")
     * @param layer  block index, or −1 for tensors outside blocks
     */
    public GgmlType matrixType(String role, int layer, int nLayer, int nExpert, long cols) {
        GgmlType t = base;
        boolean legacyOrK = this != F32 && this != F16 && this != BF16 && this != Q8_0;
        if (legacyOrK) {
            boolean moreBits = layer >= 0 && useMoreBits(layer, nLayer);
            if (role.equals("output")) t = GgmlType.Q6_K;
            else if ((role.equals("attn_k") || role.equals("attn_v")) && nExpert >= 8) t = GgmlType.Q8_0;
            else if (this == Q4_K_M || this == Q5_K_M) {
                if (role.equals("attn_v") && moreBits) t = GgmlType.Q6_K;
                if (role.startsWith("ffn_down") && moreBits) t = GgmlType.Q6_K;
            }
        }
        return fallback(t, cols);
    }

    /** K-quants need rows that are a multiple of 256 values; other blocked types of 32. */
    private static GgmlType fallback(GgmlType t, long cols) {
        if (cols % t.blockSize() == 0) return t;
        GgmlType alt = switch (t) {
            case Q4_K -> GgmlType.Q5_0;
            case Q5_K -> GgmlType.Q5_1;
            case Q6_K -> GgmlType.Q8_0;
            default -> GgmlType.F16;
        };
        return cols % alt.blockSize() == 0 ? alt : GgmlType.F16;
    }

    /** The layers llama.cpp's mixed recipes give extra bits: the first and last eighth, and every third between. */
    static boolean useMoreBits(int layer, int nLayer) {
        return layer < nLayer / 8 || layer >= 7 * nLayer / 8 || (layer - nLayer / 8) % 3 == 2;
    }
}
