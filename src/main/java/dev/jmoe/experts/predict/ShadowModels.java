package dev.jmoe.experts.predict;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.model.Requantizer;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Parallel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Shadow models made or opened for one main model: re-encoded copies ({@link #copy}) and other files of the same
 * model ({@link #file}), each made once and reused by every predictor that runs one; {@link #close} closes the
 * files. Thread-safe.
 */
public final class ShadowModels implements AutoCloseable {
    private final Model main;
    private final Parallel pool;
    private final Map<String, Model> models = new LinkedHashMap<>();
    private final List<GgufFile> files = new ArrayList<>();

    public ShadowModels(Model main, Parallel pool) {
        this.main = main;
        this.pool = pool;
    }

    /** The main model re-encoded in {@code type} (made once). */
    public synchronized Model copy(GgmlType type) {
        if (!Requantizer.canEncode(type)) throw new IllegalArgumentException("--shadow " + type + ": jmoe cannot encode " + type + " weights");
        return models.computeIfAbsent("shadow-" + type.name().toLowerCase(Locale.ROOT), n -> Requantizer.copyAs(main, type, pool));
    }

    /** Another file of the same model, checked to have the same shape (opened once). */
    public synchronized Model file(Path path) throws IOException {
        String name = "file:" + path.toAbsolutePath().normalize();
        Model m = models.get(name);
        if (m != null) return m;
        if (!Files.isRegularFile(path)) throw new IllegalArgumentException("--shadow-model file not found: " + path);
        GgufFile f = GgufFile.open(path);
        try {
            m = Model.load(f);
            Requantizer.requireSameShape(main, m, path.toString());
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
        files.add(f);
        models.put(name, m);
        return m;
    }

    /** How many shadow models are open. */
    public synchronized int count() {
        return models.size();
    }

    @Override
    public synchronized void close() {
        for (GgufFile f : files) f.close();
        files.clear();
        models.clear();
    }
}
