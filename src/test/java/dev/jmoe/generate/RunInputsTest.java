package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Hyperparams;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue #24's findings about run settings and input files, as the reusable checks every front end calls. */
class RunInputsTest {
    @TempDir Path dir;

    private static Path bundled() {
        return Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
    }

    @Test
    void promptFileThatIsNotUtf8NamesTheByte() throws IOException {
        Path p = dir.resolve("latin1.txt");
        Files.write(p, "first line\ncaf\u00e9 au lait".getBytes(StandardCharsets.ISO_8859_1));
        IOException e = assertThrows(IOException.class, () -> TextFiles.readPromptFile(p));
        assertEquals("prompt file " + p + " is not UTF-8 text: byte 0xE9 at byte offset 14 (line 2) does not start a valid UTF-8"
                + " sequence; convert the file to UTF-8 (for example: iconv -f latin1 -t utf-8)", e.getMessage());
        Files.write(p, "\uFEFFcaf\u00e9 \uD83D\uDE42".getBytes(StandardCharsets.UTF_8));
        assertEquals("caf\u00e9 \uD83D\uDE42", TextFiles.readPromptFile(p), "valid UTF-8, byte-order mark dropped");
    }

    @Test
    void promptFileThatIsADirectoryOrFifoOrTooLarge() throws Exception {
        IOException e = assertThrows(IOException.class, () -> TextFiles.readPromptFile(dir));
        assertEquals(dir + " is a directory, not a prompt file (jmoe reads prompt files from regular files)", e.getMessage());
        assertTrue(assertThrows(java.nio.file.NoSuchFileException.class, () -> TextFiles.readPromptFile(dir.resolve("absent.txt")))
                .getMessage().contains("absent.txt"));
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        e = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(IOException.class, () -> TextFiles.readPromptFile(fifo)));
        assertTrue(e.getMessage().contains("is a FIFO (named pipe), not a prompt file"), e.getMessage());
        Path big = dir.resolve("big.txt");
        try (RandomAccessFile raf = new RandomAccessFile(big.toFile(), "rw")) {
            raf.setLength(TextFiles.MAX_BYTES + 1); // sparse: nothing is written
        }
        e = assertThrows(IOException.class, () -> TextFiles.readPromptFile(big));
        assertTrue(e.getMessage().contains("jmoe reads text files of up to 256 MiB"), e.getMessage());
    }

    @Test
    void countsAndThreads() {
        assertEquals(-1, RunChecks.nPredict(-1));
        assertEquals(0, RunChecks.nPredict(0));
        assertEquals("-n/--n-predict must be -1 (generate until the end of the text or a full context) or a count of at least 0, got -5",
                assertThrows(IllegalArgumentException.class, () -> RunChecks.nPredict(-5)).getMessage());
        assertEquals(8, RunChecks.threads(8, 2));
        assertEquals("-t/--threads 1000 is more than 4 per core of the 2 this machine gives jmoe; use at most 8 (the default is one per core)",
                assertThrows(IllegalArgumentException.class, () -> RunChecks.threads(1000, 2)).getMessage());
        assertEquals("-t/--threads must be at least 1 (or 0: every available core), got -3",
                assertThrows(IllegalArgumentException.class, () -> RunChecks.threads(-3, 2)).getMessage());
    }

    @Test
    void contextAboveTrainingIsNotedAndBeyondTheHeapRefused() throws IOException {
        try (GgufFile f = GgufFile.open(bundled())) {
            Hyperparams hp = dev.jmoe.model.Model.load(f).hyperparams();
            int train = hp.contextLength();
            assertNull(RunChecks.contextSize(train, hp));
            String note = RunChecks.contextSize(train + 1, hp);
            assertNotNull(note, "-c above the training context is not silent");
            assertTrue(note.contains("above the " + train + " positions this model was trained on"), note);
            String m = assertThrows(IllegalArgumentException.class, () -> RunChecks.contextSize(Integer.MAX_VALUE / 2, hp)).getMessage();
            assertTrue(m.startsWith("-c/--ctx-size 1073741823 needs a KV cache of"), m);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> RunChecks.contextSize(0, hp)).getMessage().contains("at least 1"));
        }
    }

    @Test
    void outputFilesAreCheckedBeforeTheRun() throws IOException {
        Path ok = dir.resolve("stats.json");
        RunChecks.outputFile(ok, "--stats-json");
        assertFalse(Files.exists(ok), "the check leaves no file behind");
        Path existing = Files.writeString(dir.resolve("kept.json"), "old");
        RunChecks.outputFile(existing, "--trace");
        assertEquals("old", Files.readString(existing), "an existing file is not truncated by the check");
        Path notADir = Files.writeString(dir.resolve("plain"), "x");
        assertEquals("--stats-json " + notADir.resolve("s.json") + " cannot be written: directory " + notADir + " does not exist",
                assertThrows(IllegalArgumentException.class, () -> RunChecks.outputFile(notADir.resolve("s.json"), "--stats-json")).getMessage());
        assertEquals("--trace " + dir + " is a directory; give a file name",
                assertThrows(IllegalArgumentException.class, () -> RunChecks.outputFile(dir, "--trace")).getMessage());
        // sysfs lets nobody, root included, create a file: the check opens the file for real, so it sees that.
        Path sys = Path.of("/sys/jmoe-stats.json");
        if (Files.isDirectory(sys.getParent())) {
            String m = assertThrows(IllegalArgumentException.class, () -> RunChecks.outputFile(sys, "--stats-json")).getMessage();
            assertTrue(m.startsWith("--stats-json /sys/jmoe-stats.json cannot be written: "), m);
        }
    }

    @Test
    void samplerErrorsNameTheFlags() {
        assertEquals("--top-p must be in [0, 1] (1 disables it), got 1.5",
                assertThrows(IllegalArgumentException.class, () -> SamplerConfig.greedy().withTopP(1.5f)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SamplerConfig.greedy().withTopK(-1)).getMessage().startsWith("--top-k "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SamplerConfig.greedy().withTemperature(Float.NaN)).getMessage().startsWith("--temp "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SamplerConfig.greedy().withRepeatPenalty(1, -2)).getMessage().startsWith("--repeat-last-n "));
    }

    @Test
    void theBundledModelPassesTheInspectChecks() throws IOException {
        try (GgufFile f = GgufFile.open(bundled())) {
            ModelCheck.Report r = ModelCheck.check(f);
            assertTrue(r.runnable(), r.problems().toString());
            assertNotNull(r.model());
            assertNotNull(r.tokenizer());
        }
    }
}
