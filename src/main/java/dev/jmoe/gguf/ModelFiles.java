package dev.jmoe.gguf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Checks that a path names a regular file before anything opens it. Opening a FIFO for reading blocks until a
 * writer appears (a run that hangs forever), a directory or a device has no size a reader can trust
 * ({@code /dev/zero} reports 0 bytes and reads forever), so each of these gets one clear sentence instead.
 * Only metadata is read here: nothing in this class can block on the file itself.
 */
public final class ModelFiles {
    private ModelFiles() {}

    // S_IFMT bits of st_mode, as the "unix:mode" attribute reports them.
    private static final int S_IFMT = 0170000, S_IFIFO = 0010000, S_IFCHR = 0020000, S_IFDIR = 0040000,
            S_IFBLK = 0060000, S_IFSOCK = 0140000;

    /**
     * Checks that {@code path} is a non-empty regular file (symbolic links followed) and returns its size.
     *
     * @throws NoSuchFileException when nothing is there
     * @throws IOException naming the path and what it is instead (FIFO, device, directory, socket, empty file)
     */
    public static long checkModelFile(Path path) throws IOException {
        long size = checkRegularFile(path, "model file");
        if (size == 0) throw new IOException(path + " is empty (0 bytes), not a GGUF model file");
        return size;
    }

    /**
     * Checks that {@code path} is a regular file (symbolic links followed), without opening it; {@code what}
     * names its role in messages ("model file", "prompt file"). Returns its size.
     */
    public static long checkRegularFile(Path path, String what) throws IOException {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(path, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(path.toString(), null, what + " not found");
        }
        if (a.isRegularFile()) return a.size();
        throw new IOException(path + " is " + kind(path, a) + ", not a " + what + " (jmoe reads " + what + "s from regular files)");
    }

    /** "a directory", "a FIFO (named pipe)", "a character device", … for a path that is not a regular file. */
    static String kind(Path path, BasicFileAttributes a) {
        if (a.isDirectory()) return "a directory";
        int mode = -1;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode");
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
            // No unix view (not a POSIX system): fall back to the generic wording below.
        }
        return switch (mode & S_IFMT) {
            case S_IFIFO -> "a FIFO (named pipe)";
            case S_IFCHR -> "a character device";
            case S_IFBLK -> "a block device";
            case S_IFSOCK -> "a socket";
            case S_IFDIR -> "a directory";
            default -> "something other than a regular file";
        };
    }
}
