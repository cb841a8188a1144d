package dev.jmoe.generate;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.util.Map;
import java.util.TreeMap;

/**
 * Python's {@code json.dumps} output format, which is what the {@code tojson} filter produces where chat
 * templates are normally rendered (Hugging Face transformers, llama.cpp): ", " and ": " separators without
 * indent, no HTML escaping, non-ASCII kept as is unless ensure_ascii.
 */
final class PyJson {
    private PyJson() {}

    static String dumps(Object value, Integer indent, boolean sortKeys, boolean ensureAscii) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, indent, sortKeys, ensureAscii, 0);
        return sb.toString();
    }

    private static void newline(StringBuilder sb, Integer indent, int depth) {
        sb.append('\n');
        sb.append(" ".repeat(indent * depth));
    }

    private static void write(StringBuilder sb, Object v, Integer indent, boolean sort, boolean ascii, int depth) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof CharSequence || v instanceof Character) {
            string(sb, v.toString(), ascii);
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : pyFloat(d));
        } else if (v instanceof BigDecimal bd) {
            sb.append(bd.stripTrailingZeros().scale() <= 0 ? bd.toBigInteger().toString() : bd.toPlainString());
        } else if (v instanceof Number n) {
            sb.append(n.toString());
        } else if (v instanceof Map<?, ?> m) {
            Map<?, ?> map = sort ? new TreeMap<>(m.entrySet().stream().collect(
                    java.util.stream.Collectors.toMap(e -> String.valueOf(e.getKey()), Map.Entry::getValue, (a, b) -> b))) : m;
            if (map.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) {
                    sb.append(indent == null ? ", " : ",");
                }
                first = false;
                if (indent != null) {
                    newline(sb, indent, depth + 1);
                }
                string(sb, String.valueOf(e.getKey()), ascii);
                sb.append(": ");
                write(sb, e.getValue(), indent, sort, ascii, depth + 1);
            }
            if (indent != null) {
                newline(sb, indent, depth);
            }
            sb.append('}');
        } else if (v instanceof Iterable<?> || v.getClass().isArray()) {
            java.util.List<Object> items = new java.util.ArrayList<>();
            if (v instanceof Iterable<?> it) {
                it.forEach(items::add);
            } else {
                for (int i = 0; i < Array.getLength(v); i++) {
                    items.add(Array.get(v, i));
                }
            }
            if (items.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) {
                    sb.append(indent == null ? ", " : ",");
                }
                if (indent != null) {
                    newline(sb, indent, depth + 1);
                }
                write(sb, items.get(i), indent, sort, ascii, depth + 1);
            }
            if (indent != null) {
                newline(sb, indent, depth);
            }
            sb.append(']');
        } else {
            string(sb, v.toString(), ascii);
        }
    }

    /** Python's repr of a float: shortest round-trip digits, ".0" for whole numbers, "e+XX" exponents. */
    private static String pyFloat(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e16) {
            return new BigDecimal(d).toPlainString() + ".0";
        }
        String s = Double.toString(d);
        int e = s.indexOf('E');
        if (e < 0) {
            return s;
        }
        String mant = s.substring(0, e);
        if (mant.endsWith(".0")) {
            mant = mant.substring(0, mant.length() - 2);
        }
        int exp = Integer.parseInt(s.substring(e + 1));
        return mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
    }

    private static void string(StringBuilder sb, String s, boolean ascii) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ascii && c > 0x7F)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
