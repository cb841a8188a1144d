package dev.jmoe.gguf;

/** Metadata value types, numbered as in the GGUF specification. */
public enum GgufValueType {
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

    public int id() { return ordinal(); }

    public static GgufValueType fromId(int id) {
        return id >= 0 && id < values().length ? values()[id] : null;
    }

    /** Encoded size in bytes, or -1 for the variable-length STRING and ARRAY. */
    public int fixedSize() {
        return switch (this) {
            case UINT8, INT8, BOOL -> 1;
            case UINT16, INT16 -> 2;
            case UINT32, INT32, FLOAT32 -> 4;
            case UINT64, INT64, FLOAT64 -> 8;
            case STRING, ARRAY -> -1;
        };
    }

    /** Smallest possible encoding of one value; used to reject absurd counts before allocating. */
    int minEncodedSize() {
        return switch (this) {
            case STRING -> 8;          // u64 length, empty body
            case ARRAY -> 12;          // u32 element type + u64 count, no elements
            default -> fixedSize();
        };
    }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    public boolean isUnsigned() {
        return this == UINT8 || this == UINT16 || this == UINT32 || this == UINT64;
    }

    public boolean isNumeric() {
        return isInteger() || this == FLOAT32 || this == FLOAT64;
    }

    /** The boxed Java class that holds a value of this type (unsigned types hold their raw bits). */
    public Class<?> javaClass() {
        return switch (this) {
            case UINT8, INT8 -> Byte.class;
            case UINT16, INT16 -> Short.class;
            case UINT32, INT32 -> Integer.class;
            case UINT64, INT64 -> Long.class;
            case FLOAT32 -> Float.class;
            case FLOAT64 -> Double.class;
            case BOOL -> Boolean.class;
            case STRING -> String.class;
            case ARRAY -> GgufArray.class;
        };
    }
}
