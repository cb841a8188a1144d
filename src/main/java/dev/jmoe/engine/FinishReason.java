package dev.jmoe.engine;

/** Why a generation ended. */
public enum FinishReason {
    /** The model produced an end-of-generation token (end of text, end of turn). */
    END_OF_GENERATION("stop"),
    /** The text reached one of the request's stop strings (which is not part of the result). */
    STOP_STRING("stop"),
    /** The request's token limit was reached. */
    MAX_TOKENS("length"),
    /** The session's context is full. */
    CONTEXT_FULL("length"),
    /** {@link Session#cancel()} was called. */
    CANCELLED("cancelled");

    private final String openAi;

    FinishReason(String openAi) { this.openAi = openAi; }

    /** The reason as OpenAI's API names it ("stop", "length"). */
    public String openAiName() { return openAi; }
}
