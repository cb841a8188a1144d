package dev.jmoe.engine;

import java.nio.file.Path;

/**
 * What an opened model is.
 *
 * @param path            the GGUF file
 * @param architecture    {@code general.architecture} (llama, qwen2moe, qwen3moe, olmoe, …)
 * @param layers          transformer blocks
 * @param embedding       hidden size
 * @param experts         routed experts per MoE layer (0 for a dense model)
 * @param expertsUsed     experts each token is routed to (k)
 * @param vocabulary      tokens in the vocabulary
 * @param trainedContext  the context length the model was trained with
 * @param contextSize     the context each session of this engine has
 * @param expertBytes     bytes of all routed experts
 * @param fileBytes       bytes of the file
 * @param hasChatTemplate whether the file carries a chat template (else ChatML is used)
 */
public record ModelInfo(Path path, String architecture, int layers, int embedding, int experts, int expertsUsed, int vocabulary,
                        int trainedContext, int contextSize, long expertBytes, long fileBytes, boolean hasChatTemplate) {
    /** Whether the model routes tokens to experts. */
    public boolean isMixtureOfExperts() { return experts > 0; }
}
