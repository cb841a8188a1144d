package dev.jmoe.generate;

/** A chat template failed to render: a syntax error, or the template itself rejected the conversation. */
public class ChatTemplateException extends RuntimeException {
    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
