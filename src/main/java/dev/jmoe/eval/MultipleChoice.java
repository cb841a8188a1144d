package dev.jmoe.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.model.InferenceState;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Multiple choice by log-likelihood, as lm-evaluation-harness scores it: each choice's continuation log-likelihood
 * given the context; accuracy picks the highest sum, normalised accuracy the highest sum per byte of the choice.
 * The context is prefilled once per item; each choice's tokens are then fed one at a time from there (a decode,
 * so that runtime approximations that act on decode steps are part of what is measured).
 */
public final class MultipleChoice {
    private MultipleChoice() {}

    /** One question: the choices continue the context directly (give them their leading space). */
    public record Item(String context, List<String> choices, int gold) {
        public Item {
            if (choices.size() < 2) throw new IllegalArgumentException("an item needs at least two choices");
            if (gold < 0 || gold >= choices.size()) throw new IllegalArgumentException("gold index " + gold + " is outside the " + choices.size() + " choices");
            choices = List.copyOf(choices);
        }
    }

    /** @param predictions per item, the index the (unnormalised) log-likelihood picks */
    public record Result(int items, double accuracy, double accuracyNorm, int[] predictions) {}

    /** Reads a task: one JSON object per line, {"context": …, "choices": […], "gold": i}; blank lines are skipped. */
    public static List<Item> read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("task file not found: " + file);
        ObjectMapper om = new ObjectMapper();
        List<Item> items = new ArrayList<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).trim();
            if (line.isEmpty()) continue;
            String where = file + " line " + (i + 1);
            JsonNode n;
            try {
                n = om.readTree(line);
            } catch (IOException e) {
                throw new IllegalArgumentException(where + ": not JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
            }
            if (n == null || !n.isObject()) throw new IllegalArgumentException(where + ": expected a JSON object");
            JsonNode ctx = n.get("context"), ch = n.get("choices"), gold = n.get("gold");
            if (ctx == null || !ctx.isTextual()) throw new IllegalArgumentException(where + ": missing text field \"context\"");
            if (ch == null || !ch.isArray()) throw new IllegalArgumentException(where + ": missing array field \"choices\"");
            if (gold == null || !gold.canConvertToInt()) throw new IllegalArgumentException(where + ": missing integer field \"gold\"");
            List<String> choices = new ArrayList<>();
            for (JsonNode c : ch) {
                if (!c.isTextual()) throw new IllegalArgumentException(where + ": every choice must be a string");
                choices.add(c.asText());
            }
            try {
                items.add(new Item(ctx.asText(), choices, gold.asInt()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage());
            }
        }
        if (items.isEmpty()) throw new IllegalArgumentException("task file " + file + " has no items");
        return items;
    }

    /** Scores every item (the first {@code limit} if > 0). */
    public static Result evaluate(InferenceState st, Tokenizer tok, List<Item> items, int limit, int batch, IntConsumer onItem) {
        int n = limit > 0 ? Math.min(limit, items.size()) : items.size();
        int vocab = st.model().hyperparams().nVocab();
        int correct = 0, correctNorm = 0;
        int[] predictions = new int[n];
        for (int i = 0; i < n; i++) {
            Item it = items.get(i);
            int[] ctx = tok.encode(it.context(), true, false);
            if (ctx.length == 0) throw new IllegalArgumentException("item " + (i + 1) + ": the context encodes to no tokens");
            st.rewind(0);
            float[] ctxLogits = st.eval(ctx, 0, ctx.length, batch);
            int best = -1, bestNorm = -1;
            double bestLl = Double.NEGATIVE_INFINITY, bestLlNorm = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < it.choices().size(); c++) {
                String choice = it.choices().get(c);
                int[] ct = tok.encode(choice, false, false);
                if (ct.length == 0) throw new IllegalArgumentException("item " + (i + 1) + ": choice " + c + " encodes to no tokens");
                if (ctx.length + ct.length > st.kv().capacity()) {
                    throw new IllegalArgumentException("item " + (i + 1) + ": context + choice (" + (ctx.length + ct.length) + " tokens) exceed --ctx-size " + st.kv().capacity());
                }
                st.rewind(ctx.length);
                double ll = 0;
                float[] logits = ctxLogits;
                for (int t = 0; t < ct.length; t++) {
                    ll += Perplexity.logSoftmaxAt(logits, 0, vocab, ct[t]);
                    if (t + 1 < ct.length) logits = st.next(ct[t]);
                }
                double norm = ll / Math.max(1, choice.getBytes(StandardCharsets.UTF_8).length);
                if (ll > bestLl) {
                    bestLl = ll;
                    best = c;
                }
                if (norm > bestLlNorm) {
                    bestLlNorm = norm;
                    bestNorm = c;
                }
            }
            predictions[i] = best;
            if (best == it.gold()) correct++;
            if (bestNorm == it.gold()) correctNorm++;
            if (onItem != null) onItem.accept(i + 1);
        }
        st.rewind(0);
        return new Result(n, (double) correct / n, (double) correctNorm / n, predictions);
    }
}
