package dev.jmoe.engine;

/**
 * What a generation produced.
 *
 * @param text         the generated text (without a stop string that ended it)
 * @param tokens       the generated token ids (an end-of-generation token that ended it is not among them)
 * @param finishReason why it ended
 * @param stats        its timings and the expert runtime's counters
 */
public record GenerationResult(String text, int[] tokens, FinishReason finishReason, GenerationStats stats) {}
