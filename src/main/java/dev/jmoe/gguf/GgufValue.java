package dev.jmoe.gguf;

/**
 * A typed metadata value. {@code value} is a boxed Java value of the natural width (Byte/Short/Integer/Long
 * holding the raw bits of unsigned types, Float, Double, Boolean, String) or, for ARRAY, a {@link GgufArray}.
 */
public record GgufValue(GgufValueType type, Object value) {
    // helper constructors such as ofString/ofU32/ofArray are added by the implementation
}
