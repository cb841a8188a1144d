package dev.jmoe.cli;

import java.math.BigDecimal;
import java.math.MathContext;

/** Prints floats the way C's {@code printf("%.9g")} does, which is how llama.cpp's reference logits are written (9 significant digits round-trip a float32 exactly). */
public final class FloatFormat {
    private FloatFormat() {}

    public static String g9(float f) {
        if (Float.isNaN(f)) return "nan";
        if (Float.isInfinite(f)) return f > 0 ? "inf" : "-inf";
        if (f == 0f) return (1f / f < 0) ? "-0" : "0";
        BigDecimal d = new BigDecimal(f).round(new MathContext(9));
        int exponent = d.precision() - d.scale() - 1; // decimal exponent of the leading digit
        if (exponent < -4 || exponent >= 9) {
            BigDecimal mantissa = d.movePointLeft(exponent).stripTrailingZeros();
            String m = mantissa.toPlainString();
            String sign = exponent < 0 ? "-" : "+";
            int ae = Math.abs(exponent);
            return m + "e" + sign + (ae < 10 ? "0" : "") + ae;
        }
        return d.stripTrailingZeros().toPlainString();
    }
}
