package dev.jmoe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The package structure the design promises: the data path imports downwards, and the command line only parses and prints. */
class StructureTest {
    private static final Path MAIN = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("src/main/java/dev/jmoe");

    private static List<Path> sources(String pkg) throws IOException {
        try (Stream<Path> s = Files.walk(MAIN.resolve(pkg))) {
            return s.filter(p -> p.toString().endsWith(".java")).toList();
        }
    }

    private static List<String> violations(String pkg, String... forbidden) throws IOException {
        List<String> out = new ArrayList<>();
        for (Path p : sources(pkg)) {
            for (String line : Files.readAllLines(p)) {
                for (String f : forbidden) {
                    if ((line.startsWith("import " + f + ".") || line.startsWith("import static " + f + ".")) || line.contains(" " + f + ".")
                            && line.matches(".*\\b" + f.replace(".", "\\.") + "\\.[a-z]+\\.[A-Z].*") && !line.trim().startsWith("*")) {
                        out.add(MAIN.relativize(p) + ": " + line.trim());
                    }
                }
            }
        }
        return out;
    }

    @Test
    void theDataPathImportsDownwardsOnly() throws IOException {
        assertEquals(List.of(), violations("model", "dev.jmoe.experts", "dev.jmoe.engine", "dev.jmoe.cli"), "model must not reach up");
        assertEquals(List.of(), violations("tensor", "dev.jmoe.model", "dev.jmoe.experts", "dev.jmoe.engine", "dev.jmoe.cli"));
        // gguf names tensor types with tensor's GgmlType table, and nothing above it
        assertEquals(List.of(), violations("gguf", "dev.jmoe.model", "dev.jmoe.experts", "dev.jmoe.engine", "dev.jmoe.cli"));
        assertEquals(List.of(), violations("tensor", "dev.jmoe.gguf"), "no cycle between gguf and tensor");
        assertEquals(List.of(), violations("experts", "dev.jmoe.engine", "dev.jmoe.cli"));
        assertEquals(List.of(), violations("engine", "dev.jmoe.cli"));
    }

    @Test
    void theCommandLineHoldsCommandsOptionsAndPrintingOnly() throws IOException {
        // what a model run needs (opening it, the decode loop, the expert runtime, predictors) lives in the engine; cli's
        // classes are commands, option groups and printing helpers, none of which builds an expert runtime itself
        List<String> bad = new ArrayList<>();
        for (Path p : sources("cli")) {
            String src = Files.readString(p);
            for (String built : List.of("OffloadRuntime.install", "OdMoeRuntime.install", "new PredictorHooks", "new ShadowPredictor",
                    "new Parallel(")) {
                if (src.contains(built)) bad.add(MAIN.relativize(p) + " calls " + built);
            }
        }
        assertEquals(List.of(), bad);
        for (String gone : List.of("LoadedModel", "Generation", "GenerationStats", "PredictiveOffload", "OffloadOptions", "PredictOptions")) {
            assertTrue(!Files.exists(MAIN.resolve("cli/" + gone + ".java")), gone + " moved to the engine");
        }
    }
}
