package dev.jmoe.experts.predict;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How often the shadow is re-aligned with the main model (OD-MoE's two mechanisms). Token alignment: at
 * positions that are multiples of {@code tokenPeriod} the shadow takes the main model's token (redoing the
 * position if it had guessed another); elsewhere it keeps its own guess. KV alignment: once {@code kvPeriod}
 * positions have completed since the last alignment, the shadow's KV entries for them are overwritten with
 * the main model's, for every layer. A period of 0 turns that alignment off.
 */
public record Alignment(int tokenPeriod, int kvPeriod) {
    public static final Alignment EVERY_TOKEN = new Alignment(1, 1);

    public Alignment {
        if (tokenPeriod < 0 || kvPeriod < 0) {
            throw new IllegalArgumentException("--align-period values must be >= 0 (0 = off), got " + tokenPeriod + "," + kvPeriod);
        }
    }

    private static final Pattern SPEC = Pattern.compile("\\s*(\\d+)\\s*(?:,\\s*(\\d+)\\s*)?");

    /** Parses {@code TOKENS[,KV]}; KV defaults to TOKENS. */
    public static Alignment parse(String spec) {
        Matcher m = spec == null ? null : SPEC.matcher(spec);
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException("cannot parse --align-period '" + spec + "': expected TOKENS[,KV] such as 1 or 1,4 (0 = off)");
        }
        try {
            int t = Integer.parseInt(m.group(1));
            int kv = m.group(2) != null ? Integer.parseInt(m.group(2)) : t;
            return new Alignment(t, kv);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--align-period '" + spec + "' is out of range");
        }
    }

    /** Whether the shadow takes the main model's token at {@code pos}. */
    public boolean alignsToken(int pos) {
        return tokenPeriod > 0 && pos % tokenPeriod == 0;
    }

    /** Whether the KV entries of positions [alignedTo, completeTo) are due to be overwritten with the main model's. */
    public boolean kvDue(int alignedTo, int completeTo) {
        return kvPeriod > 0 && completeTo - alignedTo >= kvPeriod;
    }

    @Override
    public String toString() { return tokenPeriod + "," + kvPeriod; }
}
