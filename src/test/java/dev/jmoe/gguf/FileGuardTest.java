package dev.jmoe.gguf;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model file that is not a regular file is refused without opening it, and one that changes while it is open ends
 * the use of its mapping with one sentence instead of a SIGBUS (the end-to-end case, a child JVM generating while the
 * file is truncated, is TruncatedWhileRunningTest).
 */
class FileGuardTest {
    @TempDir Path dir;

    private Path model() throws IOException {
        Path p = dir.resolve("m.gguf");
        Path bundled = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("models/qwen2moe-tiny-q8_0.gguf");
        Files.copy(bundled, p, StandardCopyOption.REPLACE_EXISTING);
        return p;
    }

    @Test
    void fifoIsRefusedWithoutBlocking() throws Exception {
        Path fifo = dir.resolve("pipe.gguf");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        IOException e = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(IOException.class, () -> GgufFile.open(fifo)));
        assertEquals(fifo + " is a FIFO (named pipe), not a model file (jmoe reads model files from regular files)", e.getMessage());
        e = assertThrows(IOException.class, () -> ModelFiles.checkModelFile(fifo));
        assertTrue(e.getMessage().contains("FIFO"), e.getMessage());
    }

    @Test
    void devicesDirectoriesAndEmptyFilesAreNamed() throws IOException {
        assertTrue(assertThrows(IOException.class, () -> GgufFile.open(Path.of("/dev/zero"))).getMessage()
                .contains("/dev/zero is a character device"));
        assertTrue(assertThrows(IOException.class, () -> GgufFile.open(dir)).getMessage().contains("is a directory"));
        Path empty = Files.createFile(dir.resolve("empty.gguf"));
        assertTrue(assertThrows(IOException.class, () -> ModelFiles.checkModelFile(empty)).getMessage().contains("is empty (0 bytes)"));
        assertEquals(model().toFile().length(), ModelFiles.checkModelFile(model()));
    }

    @Test
    void truncationByAnotherOpenerIsHeldUntilTheMappingIsClosed() throws Exception {
        Path p = model();
        try (GgufFile f = GgufFile.open(p)) {
            assumeLeased(f);
            GgufTensorInfo t = f.tensors().get(f.tensors().size() - 1);
            assertNull(f.fileChange());
            // The truncation below blocks in the kernel until the guard gives the lease up, after closing the mapping.
            CompletableFuture<Void> cut = CompletableFuture.runAsync(() -> setLength(p, 1000));
            cut.get(10, TimeUnit.SECONDS);
            assertEquals(1000, Files.size(p));
            String change = f.fileChange();
            assertNotNull(change);
            assertTrue(change.contains("was opened for writing or truncated by another process"), change);
            // The lost pages are never touched: the read throws instead of faulting.
            assertThrows(IllegalStateException.class, () -> f.tensorData(t).get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void withoutALeaseTheWatchdogSeesTheFileShrink() throws Exception {
        Path p = model();
        FileGuard.leasesEnabled = false;
        try (GgufFile f = GgufFile.open(p)) {
            assertTrue(f.protectionNote().contains("switched off"), f.protectionNote());
            setLength(p, 2000);
            long until = System.nanoTime() + 5_000_000_000L;
            while (f.fileChange() == null && System.nanoTime() < until) Thread.sleep(20);
            String change = f.fileChange();
            assertNotNull(change);
            assertTrue(change.contains("shrank from " + Files.size(model()) + " to 2000 bytes"), change);
        } finally {
            FileGuard.leasesEnabled = true;
        }
    }

    @Test
    void replacingThePathDoesNotChangeWhatIsRead() throws IOException {
        Path p = model();
        try (GgufFile f = GgufFile.open(p)) {
            byte[] before = Files.readAllBytes(f.stablePath());
            // A new file moved over the path (rename: the old inode stays open and unchanged).
            Path other = Files.writeString(dir.resolve("other"), "not a model");
            Files.move(other, p, StandardCopyOption.REPLACE_EXISTING);
            assertArrayEquals(before, Files.readAllBytes(f.stablePath()), "the stable path reads the file that was opened");
            assertNull(f.fileChange(), "a rename does not change the open file");
        }
    }

    private static void assumeLeased(GgufFile f) {
        org.junit.jupiter.api.Assumptions.assumeTrue(f.protectionNote() == null, "no lease here: " + f.protectionNote());
    }

    private static void setLength(Path p, long n) {
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            raf.setLength(n);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
