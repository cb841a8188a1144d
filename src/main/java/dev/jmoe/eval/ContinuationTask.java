package dev.jmoe.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Builds a multiple-choice task from plain text, reproducibly: at positions drawn with a fixed seed, the context is
 * {@code contextWords} words of the text and the true choice the next {@code choiceWords} words; the three wrong
 * choices are equally long word runs from elsewhere in the text, so every choice is fluent and only the fit to the
 * context tells them apart. Same text + seed ⇒ same task.
 */
public final class ContinuationTask {
    private ContinuationTask() {}

    public static List<MultipleChoice.Item> build(String text, int items, int contextWords, int choiceWords, int nChoices, long seed) {
        if (items < 1 || contextWords < 1 || choiceWords < 1 || nChoices < 2) {
            throw new IllegalArgumentException("items, context words and choice words must be at least 1 and choices at least 2");
        }
        String[] words = text.trim().split("\\s+");
        int span = contextWords + choiceWords;
        if (words.length < span * (nChoices + 1)) {
            throw new IllegalArgumentException("the text has " + words.length + " words, too few for contexts of " + contextWords + " and choices of " + choiceWords + " words");
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        List<MultipleChoice.Item> out = new ArrayList<>();
        int maxStart = words.length - span;
        for (int i = 0; i < items; i++) {
            int start = rnd.nextInt(maxStart + 1);
            String context = join(words, start, contextWords);
            String truth = " " + join(words, start + contextWords, choiceWords);
            List<String> choices = new ArrayList<>();
            choices.add(truth);
            int guard = 0;
            while (choices.size() < nChoices) {
                int s = rnd.nextInt(words.length - choiceWords + 1);
                String c = " " + join(words, s, choiceWords);
                // a distractor must not overlap the true span and must differ from every other choice
                if (Math.abs(s - (start + contextWords)) >= choiceWords && !choices.contains(c)) choices.add(c);
                if (++guard > 1000) throw new IllegalArgumentException("the text is too repetitive to find distinct distractors");
            }
            int gold = rnd.nextInt(nChoices);
            choices.set(0, choices.get(gold));
            choices.set(gold, truth);
            out.add(new MultipleChoice.Item(context, choices, gold));
        }
        return out;
    }

    private static String join(String[] w, int from, int n) {
        return String.join(" ", java.util.Arrays.asList(w).subList(from, from + n));
    }
}
