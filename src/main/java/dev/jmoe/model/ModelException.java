package dev.jmoe.model;

/** A model file jmoe cannot run as it is: the message says what is wrong and, where it can, where. */
public final class ModelException extends RuntimeException {
    public ModelException(String message) { super(message); }
    public ModelException(String message, Throwable cause) { super(message, cause); }
}
