package dev.jmoe.generate;

import dev.jmoe.gguf.GgufException;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.model.ModelException;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything a model file must pass before it can run, gathered for {@code jmoe inspect}: the model loads (hyperparameters,
 * every tensor), a tokenizer can be built from its vocabulary and agrees with the model's, and the chat template renders.
 * Problems mean a run would fail (inspect exits non-zero); notes are things a user should know but that do not stop a run.
 */
public final class ModelCheck {
    private ModelCheck() {}

    /** The outcome; {@code model} and {@code tokenizer} are null when they could not be built. */
    public record Report(List<String> problems, List<String> notes, Model model, Tokenizer tokenizer) {
        public boolean runnable() { return problems.isEmpty(); }
    }

    public static Report check(GgufFile file) {
        List<String> problems = new ArrayList<>(), notes = new ArrayList<>();
        Model model = null;
        Tokenizer tok = null;
        try {
            model = Model.load(file);
        } catch (ModelException | GgufException | IllegalArgumentException e) {
            problems.add("model: " + e.getMessage());
        }
        try {
            tok = Tokenizer.fromGguf(file);
        } catch (GgufException | IllegalArgumentException e) {
            problems.add("tokenizer: " + e.getMessage());
        }
        if (model != null && tok != null) {
            int mv = model.hyperparams().nVocab(), tv = tok.vocabSize();
            if (tv > mv) {
                problems.add("tokenizer: the vocabulary has " + tv + " tokens but the model only " + mv
                        + " embedding rows: text would encode to ids the model cannot take");
            } else if (tv < mv) {
                notes.add("the model has " + mv + " embedding rows for a vocabulary of " + tv + " tokens (padding rows; they are never sampled)");
            }
            if (tok.endOfGenerationTokens().length == 0) {
                notes.add("the vocabulary names no end-of-generation token: generation stops only at -n or a full context");
            }
            if (tok.addBos() && tok.bos() < 0) problems.add("tokenizer: adds a BOS token but has none");
        }
        if (tok != null && tok.chatTemplate().isPresent()) {
            try {
                ChatTemplate.forTokenizer(tok).render(List.of(ChatMessage.system("You are brief."), ChatMessage.user("Hello"),
                        new ChatMessage("assistant", "Hi."), ChatMessage.user("Bye")), true);
            } catch (ChatTemplateException e) {
                notes.add("chat template: " + e.getMessage() + " (jmoe chat would fail with this model's template)");
            }
        }
        return new Report(List.copyOf(problems), List.copyOf(notes), model, tok);
    }
}
