package dev.jmoe.gguf;

import java.util.List;
import java.util.Objects;

/**
 * A typed metadata value. {@code value} is a boxed Java value of the natural width (Byte/Short/Integer/Long
 * holding the raw bits of unsigned types, Float, Double, Boolean, String) or, for ARRAY, a {@link GgufArray}.
 * The {@code as...} conversions throw {@link GgufException} when the value has an incompatible type or range.
 */
public record GgufValue(GgufValueType type, Object value) {

    public GgufValue {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        if (!type.javaClass().isInstance(value)) {
            throw new IllegalArgumentException("a GGUF " + type + " value must be a " + type.javaClass().getSimpleName()
                    + ", got " + value.getClass().getSimpleName());
        }
    }

    public static GgufValue ofU8(int v) { return new GgufValue(GgufValueType.UINT8, (byte) checkRange(v, 0, 0xFF, "UINT8")); }
    public static GgufValue ofI8(int v) { return new GgufValue(GgufValueType.INT8, (byte) checkRange(v, Byte.MIN_VALUE, Byte.MAX_VALUE, "INT8")); }
    public static GgufValue ofU16(int v) { return new GgufValue(GgufValueType.UINT16, (short) checkRange(v, 0, 0xFFFF, "UINT16")); }
    public static GgufValue ofI16(int v) { return new GgufValue(GgufValueType.INT16, (short) checkRange(v, Short.MIN_VALUE, Short.MAX_VALUE, "INT16")); }
    public static GgufValue ofU32(long v) { return new GgufValue(GgufValueType.UINT32, (int) checkRange(v, 0, 0xFFFF_FFFFL, "UINT32")); }
    public static GgufValue ofI32(int v) { return new GgufValue(GgufValueType.INT32, v); }
    /** {@code bits} is the raw 64-bit pattern: negative longs stand for values above Long.MAX_VALUE. */
    public static GgufValue ofU64(long bits) { return new GgufValue(GgufValueType.UINT64, bits); }
    public static GgufValue ofI64(long v) { return new GgufValue(GgufValueType.INT64, v); }
    public static GgufValue ofF32(float v) { return new GgufValue(GgufValueType.FLOAT32, v); }
    public static GgufValue ofF64(double v) { return new GgufValue(GgufValueType.FLOAT64, v); }
    public static GgufValue ofBool(boolean v) { return new GgufValue(GgufValueType.BOOL, v); }
    public static GgufValue ofString(String v) { return new GgufValue(GgufValueType.STRING, v); }
    public static GgufValue ofArray(GgufArray a) { return new GgufValue(GgufValueType.ARRAY, a); }
    /** Elements must be boxed as described on {@link GgufValue#value()}. */
    public static GgufValue ofArray(GgufValueType elementType, List<?> elements) {
        @SuppressWarnings("unchecked") List<Object> list = (List<Object>) elements;
        return ofArray(new GgufArray(elementType, list));
    }
    public static GgufValue ofStringArray(List<String> v) { return ofArray(GgufArray.ofStrings(v)); }
    public static GgufValue ofI32Array(int... v) { return ofArray(GgufArray.ofInt32(v)); }
    public static GgufValue ofF32Array(float... v) { return ofArray(GgufArray.ofFloat32(v)); }

    private static long checkRange(long v, long min, long max, String type) {
        if (v < min || v > max) throw new IllegalArgumentException(v + " is outside the " + type + " range " + min + ".." + max);
        return v;
    }

    public String asString() {
        if (value instanceof String s) return s;
        throw wrongType("STRING");
    }

    public boolean asBool() {
        if (value instanceof Boolean b) return b;
        throw wrongType("BOOL");
    }

    public GgufArray asArray() {
        if (value instanceof GgufArray a) return a;
        throw wrongType("ARRAY");
    }

    /** Any integer type, widened (unsigned types as unsigned); a UINT64 above Long.MAX_VALUE is an error. */
    public long asLong() {
        if (!type.isInteger()) throw wrongType("an integer type");
        long v = rawLong();
        if (type == GgufValueType.UINT64 && v < 0) {
            throw new GgufException("UINT64 value " + Long.toUnsignedString(v) + " does not fit in a long");
        }
        return v;
    }

    /** Any integer type whose value fits in an int. */
    public int asInt() {
        long v = asLong();
        if (v != (int) v) throw new GgufException(type + " value " + v + " does not fit in an int");
        return (int) v;
    }

    /** Any numeric type, as double. */
    public double asDouble() {
        return switch (type) {
            case FLOAT32 -> (Float) value;
            case FLOAT64 -> (Double) value;
            case UINT64 -> ElementList.unsignedToDouble((Long) value);
            default -> {
                if (!type.isInteger()) throw wrongType("a numeric type");
                yield rawLong();
            }
        };
    }

    private long rawLong() {
        return switch (type) {
            case UINT8 -> Byte.toUnsignedLong((Byte) value);
            case UINT16 -> Short.toUnsignedLong((Short) value);
            case UINT32 -> Integer.toUnsignedLong((Integer) value);
            default -> ((Number) value).longValue();
        };
    }

    private GgufException wrongType(String wanted) {
        return new GgufException("value has type " + type + ", expected " + wanted);
    }

    /** Readable form: numbers (unsigned shown as unsigned), quoted strings, abbreviated arrays. */
    @Override
    public String toString() { return format(type, value); }

    static String format(GgufValueType type, Object value) {
        return switch (type) {
            case UINT8 -> Integer.toString(Byte.toUnsignedInt((Byte) value));
            case UINT16 -> Integer.toString(Short.toUnsignedInt((Short) value));
            case UINT32 -> Integer.toUnsignedString((Integer) value);
            case UINT64 -> Long.toUnsignedString((Long) value);
            case STRING -> quote((String) value);
            default -> String.valueOf(value);
        };
    }

    private static final int MAX_SHOWN_CHARS = 60;

    private static String quote(String s) {
        StringBuilder sb = new StringBuilder(Math.min(s.length(), MAX_SHOWN_CHARS) + 8).append('"');
        int n = Math.min(s.length(), MAX_SHOWN_CHARS);
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                case '\r' -> sb.append("\\r");
                default -> {
                    if (c < 0x20 || c == 0x7f) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
        if (s.length() > n) sb.append("... (").append(s.length()).append(" chars)");
        return sb.toString();
    }
}
