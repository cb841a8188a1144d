package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.engine.EngineConfig;
import dev.jmoe.engine.EngineListener;
import dev.jmoe.engine.ExpertRuntimeConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** Opening an engine from a command's flags, with its progress and notices printed on stderr. */
final class Runs {
    private Runs() {}

    /** The expert runtime the flags describe. */
    static ExpertRuntimeConfig experts(ExpertMemoryOptions memory, PredictionOptions prediction) {
        ExpertRuntimeConfig.Builder b = ExpertRuntimeConfig.builder();
        if (memory != null) memory.apply(b);
        if (prediction != null) prediction.apply(b);
        return b.build();
    }

    /**
     * Opens the engine the flags describe; {@code defaultContext} applies when -c is not given (0: the model's, at most 4096).
     * A command with expert-memory flags offloads a model that does not fit on its own ({@code --expert-memory auto}); a
     * measuring command without them (null) keeps its resident baseline resident.
     */
    static Engine open(ModelOptions model, ExpertMemoryOptions memory, PredictionOptions prediction, int defaultContext, PrintWriter err)
            throws IOException {
        EngineConfig cfg = model.config(experts(memory, prediction), defaultContext).toBuilder().autoExpertMemory(memory != null).build();
        return Engine.open(cfg, listener(model.quiet, err));
    }

    /** Status lines for long steps (unless quiet) and notices as "jmoe: note: …" lines. */
    static EngineListener listener(boolean quiet, PrintWriter err) {
        return new EngineListener() {
            private final Map<String, Status> open = new HashMap<>();

            @Override
            public synchronized void progress(String step, long done, long total, String unit) {
                open.computeIfAbsent(step, s -> new Status(s, quiet)).update(done, total, unit);
            }

            @Override
            public synchronized void stepDone(String step) {
                Status s = open.remove(step);
                if (s != null) s.close();
            }

            @Override
            public void notice(String message) {
                err.println("jmoe: note: " + message);
                err.flush();
            }

            @Override
            public void warning(String message) {
                err.println("jmoe: warning: " + message);
                err.flush();
            }
        };
    }

    /** Fails now, before any work, if {@code file} cannot be written later (dev.jmoe.generate.RunChecks#outputFile). */
    static void checkWritable(Path file, String flag) {
        if (file != null) dev.jmoe.generate.RunChecks.outputFile(file, flag);
    }
}
