package dev.jmoe.gguf;

/** Metadata value types, numbered as in the GGUF specification. */
public enum GgufValueType {
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

    public int id() { return ordinal(); }

    public static GgufValueType fromId(int id) {
        return id >= 0 && id < values().length ? values()[id] : null;
    }
}
