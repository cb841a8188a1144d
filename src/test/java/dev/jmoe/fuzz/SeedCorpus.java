package dev.jmoe.fuzz;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The committed seed corpus of the fuzz targets, made by the targets themselves. Every fuzz target class in this
 * package implements {@link Seeded}; its seeds live in {@code src/test/resources/dev/jmoe/fuzz/<Class>Inputs/<method>/}
 * as {@code seed-<name>} (Jazzer replays every file there as a regression test in {@code bin/test}). Inputs a fuzzing
 * campaign found are kept there too, under the {@code crash-…}/{@code timeout-…} name Jazzer gave them or a
 * {@code regress-<what>} name. {@code SeedCorpusTest} fails when a seed is missing or stale; this class's main writes them:
 * {@code bin/fuzz seeds} (docs/hardening.md).
 */
public final class SeedCorpus {
    private SeedCorpus() {}

    /** A fuzz target class: for each {@code @FuzzTest} method, named seed inputs. */
    interface Seeded {
        Map<String, Map<String, byte[]>> seeds();
    }

    /** Every target class of this package (found on the test class path, so adding a target is adding its class). */
    static List<Class<?>> targets() throws IOException {
        Path dir;
        try {
            dir = Path.of(SeedCorpus.class.getResource("SeedCorpus.class").toURI()).getParent();
        } catch (java.net.URISyntaxException e) {
            throw new IOException(e);
        }
        List<Class<?>> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : files.sorted().toList()) {
                String n = p.getFileName().toString();
                if (!n.endsWith("FuzzTest.class")) continue;
                try {
                    Class<?> c = Class.forName(SeedCorpus.class.getPackageName() + "." + n.substring(0, n.length() - 6));
                    if (Seeded.class.isAssignableFrom(c)) out.add(c);
                    else throw new IllegalStateException(c.getName() + " has fuzz tests but does not implement SeedCorpus.Seeded");
                } catch (ClassNotFoundException e) {
                    throw new IOException(e);
                }
            }
        }
        return out;
    }

    static Seeded instance(Class<?> c) {
        try {
            var ctor = c.getDeclaredConstructor();
            ctor.setAccessible(true);
            return (Seeded) ctor.newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The fuzz methods of a target class. */
    static List<String> fuzzMethods(Class<?> c) {
        List<String> names = new ArrayList<>();
        for (Method m : c.getDeclaredMethods()) {
            if (m.isAnnotationPresent(com.code_intelligence.jazzer.junit.FuzzTest.class)) names.add(m.getName());
        }
        names.sort(null);
        return names;
    }

    /** Where the corpus of {@code method} of {@code c} lives under {@code resources} (src/test/resources). */
    static Path dir(Path resources, Class<?> c, String method) {
        return resources.resolve(c.getPackageName().replace('.', '/')).resolve(c.getSimpleName() + "Inputs").resolve(method);
    }

    /** Writes every target's seeds into {@code args[0]} (default src/test/resources); other files there are kept. */
    public static void main(String[] args) throws IOException {
        Path resources = Path.of(args.length > 0 ? args[0] : "src/test/resources");
        for (Class<?> c : targets()) {
            for (Map.Entry<String, Map<String, byte[]>> e : instance(c).seeds().entrySet()) {
                Path d = dir(resources, c, e.getKey());
                Files.createDirectories(d);
                for (Map.Entry<String, byte[]> s : e.getValue().entrySet()) Files.write(d.resolve("seed-" + s.getKey()), s.getValue());
                System.out.println(d + ": " + e.getValue().size() + " seeds");
            }
        }
    }
}
