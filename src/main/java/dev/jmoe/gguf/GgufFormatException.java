package dev.jmoe.gguf;

/** A GGUF file that cannot be read: the message names the file, the field and the byte offset. */
public final class GgufFormatException extends java.io.IOException {
    public GgufFormatException(String message) { super(message); }
    public GgufFormatException(String message, Throwable cause) { super(message, cause); }
}
