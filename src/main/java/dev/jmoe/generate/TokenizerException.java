package dev.jmoe.generate;

/**
 * A vocabulary jmoe cannot build a tokenizer from (missing or inconsistent {@code tokenizer.*} keys, a special token id
 * outside the vocabulary); the message names the key. An IllegalArgumentException, as such errors always were, so
 * existing handlers keep working; the fuzz targets accept this type and no other.
 */
public final class TokenizerException extends IllegalArgumentException {
    public TokenizerException(String message) { super(message); }
}
