package dev.jmoe.gguf;

import java.util.List;

/** An ARRAY value: element type plus elements (which are themselves GgufArray for nested arrays). */
public record GgufArray(GgufValueType elementType, List<Object> elements) {}
