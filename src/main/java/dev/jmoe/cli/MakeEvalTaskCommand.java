package dev.jmoe.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.eval.ContinuationTask;
import dev.jmoe.eval.MultipleChoice;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe make-eval-task}: a reproducible "pick the true continuation" task from held-out text (see {@link ContinuationTask}). */
@Command(name = "make-eval-task", description = "Build a multiple-choice continuation task (JSONL for jmoe eval) from a text, deterministically from a seed.")
final class MakeEvalTaskCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "held-out text") Path textFile;
    @Option(names = {"-o", "--out"}, required = true, paramLabel = "FILE", description = "task file to write (.jsonl)") Path out;
    @Option(names = "--items", paramLabel = "COUNT", defaultValue = "200", description = "questions (default: ${DEFAULT-VALUE})") int items;
    @Option(names = "--context-words", paramLabel = "WORDS", defaultValue = "40", description = "words of context (default: ${DEFAULT-VALUE})") int contextWords;
    @Option(names = "--choice-words", paramLabel = "WORDS", defaultValue = "6", description = "words per choice (default: ${DEFAULT-VALUE})") int choiceWords;
    @Option(names = "--choices", paramLabel = "COUNT", defaultValue = "4", description = "choices per question (default: ${DEFAULT-VALUE})") int choices;
    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "1", description = "random seed (default: ${DEFAULT-VALUE})") long seed;

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(textFile)) throw new IllegalArgumentException("text file not found: " + textFile);
        List<MultipleChoice.Item> task = ContinuationTask.build(Files.readString(textFile, StandardCharsets.UTF_8), items, contextWords, choiceWords, choices, seed);
        ObjectMapper om = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (MultipleChoice.Item it : task) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("context", it.context());
            m.put("choices", it.choices());
            m.put("gold", it.gold());
            sb.append(om.writeValueAsString(m)).append('\n');
        }
        Files.writeString(out, sb.toString(), StandardCharsets.UTF_8);
        spec.commandLine().getOut().printf("wrote %d items to %s (seed %d, %d context words, %d choices of %d words)%n", task.size(), out, seed, contextWords,
                choices, choiceWords);
        return 0;
    }
}
