package dev.jmoe.gguf;

/**
 * Unchecked error for a well-formed file whose content is not what the caller asked for: a missing
 * metadata key, a value of the wrong type, a number out of range. The message names the file and key.
 * Malformed files are reported earlier, by {@link GgufFile#open}, as the checked {@link GgufFormatException}.
 */
public final class GgufException extends RuntimeException {
    public GgufException(String message) { super(message); }
    public GgufException(String message, Throwable cause) { super(message, cause); }
}
