package dev.jmoe.generate;

import dev.jmoe.model.Hyperparams;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Checks of run settings that every front end (command line, server) makes before a run starts, each failing with a
 * message that names the flag the user typed. They live here rather than in an option parser so that each is written
 * once and tested on its own.
 */
public final class RunChecks {
    private RunChecks() {}

    /** {@code -n}: -1 means "until end of generation or a full context"; other negative counts are mistakes. */
    public static int nPredict(int n) {
        if (n < -1) {
            throw new IllegalArgumentException("-n/--n-predict must be -1 (generate until the end of the text or a full context) or a count"
                    + " of at least 0, got " + n);
        }
        return n;
    }

    /** Most threads accepted per core: more only add switching (the compute threads spin between dispatches). */
    public static final int MAX_THREADS_PER_CORE = 4;

    /** {@code -t} other than 0 (which callers take as every core): at least 1 and at most {@link #MAX_THREADS_PER_CORE} per core the JVM can use. */
    public static int threads(int t) {
        return threads(t, Runtime.getRuntime().availableProcessors());
    }

    /** {@code -t} as every command takes it: not given or 0 is every available core, anything else {@link #threads(int)}. */
    public static int threadsOrEveryCore(Integer t) {
        return t == null || t == 0 ? Runtime.getRuntime().availableProcessors() : threads(t);
    }

    static int threads(int t, int cores) {
        int max = MAX_THREADS_PER_CORE * Math.max(1, cores);
        if (t < 1) throw new IllegalArgumentException("-t/--threads must be at least 1 (or 0: every available core), got " + t);
        if (t > max) {
            throw new IllegalArgumentException("-t/--threads " + t + " is more than " + MAX_THREADS_PER_CORE + " per core of the " + cores
                    + " this machine gives jmoe; use at most " + max + " (the default is one per core)");
        }
        return t;
    }

    /**
     * {@code -c}: at least 1; above the model's training context it still runs (llama.cpp allows it too) but the
     * returned note says so, since positions past training are where output degrades; null when there is nothing to say.
     * A context whose KV cache cannot fit the heap is refused with the size it needs.
     */
    public static String contextSize(int ctx, Hyperparams hp) {
        if (ctx < 1) throw new IllegalArgumentException("-c/--ctx-size must be at least 1, got " + ctx);
        long kvBytes = 2L * hp.nLayer() * ctx * hp.kvDim() * Float.BYTES;
        long heap = Runtime.getRuntime().maxMemory();
        if ((long) ctx * hp.kvDim() > Integer.MAX_VALUE - 16 || kvBytes > heap) {
            throw new IllegalArgumentException("-c/--ctx-size " + ctx + " needs a KV cache of " + (kvBytes >> 20) + " MiB, more than the "
                    + (heap >> 20) + " MiB Java heap; lower -c (the model was trained on " + hp.contextLength() + " positions)");
        }
        if (ctx > hp.contextLength()) {
            return "-c/--ctx-size " + ctx + " is above the " + hp.contextLength() + " positions this model was trained on;"
                    + " output past position " + hp.contextLength() + " is likely to degrade";
        }
        return null;
    }

    /**
     * Checks up front that an output file ({@code --stats-json}, {@code --trace}, {@code --json}) can be written, so that a
     * run does not fail only after all its work. The file is really opened for appending (the one test that also
     * holds for root and read-only filesystems); a file created by the check is removed again.
     */
    public static void outputFile(Path path, String flag) {
        if (Files.isDirectory(path)) throw new IllegalArgumentException(flag + " " + path + " is a directory; give a file name");
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new IllegalArgumentException(flag + " " + path + " cannot be written: directory " + parent + " does not exist");
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) || Files.exists(path)) {
            if (!Files.isRegularFile(path)) throw new IllegalArgumentException(flag + " " + path + " is not a regular file");
        }
        boolean existed = Files.exists(path);
        try (OutputStream o = Files.newOutputStream(path, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            o.flush();
        } catch (IOException | SecurityException e) {
            throw new IllegalArgumentException(flag + " " + path + " cannot be written: " + reason(e));
        } finally {
            if (!existed) {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException ignored) {
                    // the run writes it later anyway
                }
            }
        }
    }

    private static String reason(Exception e) {
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied";
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) return f.getReason();
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }
}
