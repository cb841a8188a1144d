package dev.jmoe.experts.store;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.cache.OffloadRuntime;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.ModelException;
import dev.jmoe.tensor.Parallel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #24: the model file truncated by another process while a run reads it. Before, the JVM died of SIGBUS (hs_err
 * file) with --store mmap and threw "InternalError: a fault occurred in an unsafe memory access operation" with the
 * others. Now the file's lease holds the truncation until the mapping is closed, and the run ends with one line.
 */
class TruncatedWhileRunningTest {
    @TempDir Path dir;

    /** The run in the child JVM: decode until told otherwise; exit 3 with the error line, 2 if the change went unnoticed. */
    public static void main(String[] args) throws Exception {
        Path p = Path.of(args[0]);
        String store = args[1];
        try (GgufFile f = GgufFile.open(p); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f); // not packed: every product reads the mapping
            InferenceState st = m.newState(4096, pool);
            OffloadRuntime rt = store.equals("resident") ? null
                    : OffloadRuntime.install(st, OffloadConfig.preset("lru-ondemand", "1/2", store, Link.UNLIMITED), null);
            st.eval(new int[] {1, 2, 3}, 0, 3, 3);
            System.out.println("ready");
            System.out.flush();
            int tok = 4;
            for (int i = 0; i < 4000; i++) {
                float[] logits = st.next(tok);
                tok = 0;
                for (int v = 1; v < logits.length; v++) if (logits[v] > logits[tok]) tok = v;
            }
            if (rt != null) rt.close();
            System.out.println("finished without noticing");
            System.exit(2);
        } catch (ModelException e) {
            System.err.println("jmoe: error: " + e.getMessage());
            System.exit(3);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"resident", "mmap", "direct"})
    void truncatedModelEndsTheRunWithOneLine(String store) throws Exception {
        Path model = dir.resolve("m.gguf");
        Files.copy(Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf"), model);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g",
                "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"),
                "-cp", System.getProperty("java.class.path"), TruncatedWhileRunningTest.class.getName(), model.toString(), store));
        Process child = new ProcessBuilder(cmd).directory(dir.toFile()).start();
        child.getOutputStream().close();
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(child.getErrorStream()));
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder outText = new StringBuilder();
        String line;
        while ((line = out.readLine()) != null) {
            outText.append(line).append('\n');
            if (line.equals("ready")) break;
        }
        assertEquals("ready\n", outText.toString(), "the child started decoding; stderr: " + (child.isAlive() ? "" : err.join()));
        Thread.sleep(300);
        try (RandomAccessFile raf = new RandomAccessFile(model.toFile(), "rw")) {
            raf.setLength(Files.size(model) / 2); // held by the child's lease until it has stopped reading
        }
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child stopped");
        outText.append(read(child.getInputStream()));
        String e = err.join();
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith("hs_err")), "no JVM crash; stderr: " + e);
        }
        assertEquals(3, child.exitValue(), "stdout: " + outText + " stderr: " + e);
        List<String> lines = e.lines().filter(l -> !l.startsWith("WARNING")).toList();
        assertEquals(1, lines.size(), "one line: " + e);
        assertTrue(lines.get(0).startsWith("jmoe: error: model file " + model + " was opened for writing or truncated by another process"), e);
    }

    private static String read(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException x) {
            return "";
        }
    }
}
