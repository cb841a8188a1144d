package dev.jmoe.memory;

import java.util.Locale;

/** Byte counts as people read them in plans and reports. */
final class Bytes {
    private Bytes() {}

    static final long MIB = 1L << 20;

    /** "381.5 MiB", "1.20 GiB", "unlimited" for Long.MAX_VALUE. */
    static String format(long b) {
        if (b == Long.MAX_VALUE) return "unlimited";
        if (Math.abs(b) < 1024) return b + " B";
        if (Math.abs(b) < MIB) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        if (Math.abs(b) < (1L << 30)) return String.format(Locale.ROOT, "%.1f MiB", b / (double) MIB);
        return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
    }

    /** Rounds up to whole MiB (JVM flags take sizes in MiB here). */
    static long ceilMib(long b) {
        return (b + MIB - 1) / MIB * MIB;
    }
}
