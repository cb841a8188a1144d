package dev.jmoe.experts.store;

import dev.jmoe.experts.OffloadStats;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fits a fast-memory budget for experts to the model and the machine before anything is allocated from it.
 * Expert memory is one native allocation (zeroed by the OS page by page as it is touched), so a budget far above
 * what the model needs wastes gigabytes, and one above what the machine has ends in an OutOfMemoryError from the
 * allocator. Both are decided here, where the budget, the model's expert sizes and the machine meet.
 */
public final class MemoryBudget {
    private MemoryBudget() {}

    /** Slots are rounded up to this (as the expert memory does) for vector loads. */
    private static final long SLOT_ALIGN = 64;

    /**
     * The budget to allocate: {@code requested} bytes, lowered (with a note) to what holds every expert of the model
     * plus {@code scratchSlots} transient slots.
     *
     * @param spec the budget as the user wrote it, for messages
     * @throws IllegalArgumentException when the budget is above what this machine can give, saying how much it can
     */
    public static Fit fit(long requested, String spec, ExpertLayout layout, int scratchSlots) {
        return fit(requested, spec, layout, scratchSlots, available());
    }

    /** Like {@link #fit(long, String, ExpertLayout, int)} with the memory available given (tests). */
    static Fit fit(long requested, String spec, ExpertLayout layout, int scratchSlots, long available) {
        long slot = (layout.maxExpertBytes() + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
        return fit(requested, spec, layout, slot, slot * Math.max(0, scratchSlots), available);
    }

    /**
     * Like {@link #fit(long, String, ExpertLayout, int)} for slots of {@code slotBytes} each (an expert in the form fast
     * memory holds it: packed copies, page-aligned placement) and {@code transientBytes} set aside besides them.
     */
    public static Fit fit(long requested, String spec, ExpertLayout layout, long slotBytes, long transientBytes) {
        return fit(requested, spec, layout, slotBytes, transientBytes, available());
    }

    static Fit fit(long requested, String spec, ExpertLayout layout, long slotBytes, long transientBytes, long available) {
        long slot = slotBytes;
        long experts = 0;
        for (int l = 0; l < layout.layerCount(); l++) if (layout.hasExperts(l)) experts += layout.nExpert(l);
        long needed = slot * experts + Math.max(0, transientBytes);
        if (requested > needed) {
            return new Fit(Math.min(needed, checked(needed, spec, available)), "--expert-memory " + spec.trim() + " is more than the "
                    + OffloadStats.bytes(needed) + " that hold all " + experts + " experts of this model; using "
                    + OffloadStats.bytes(needed) + " (every expert stays in fast memory)");
        }
        return new Fit(checked(requested, spec, available), null);
    }

    private static long checked(long bytes, String spec, long available) {
        if (available > 0 && bytes > available) {
            throw new IllegalArgumentException("--expert-memory " + spec.trim() + " (" + OffloadStats.bytes(bytes)
                    + ") is more than this machine can give: about " + OffloadStats.bytes(available)
                    + " of memory is available; choose a smaller budget or a fraction such as 1/4");
        }
        return bytes;
    }

    /** A budget that fits, and the note to show when it was lowered (null if not). */
    public record Fit(long bytes, String note) {}

    /**
     * Bytes of memory this process could still get: the kernel's MemAvailable (free memory plus page cache it can drop)
     * where there is one, else the JVM's free-memory figure; never more than the JVM's total, which honours a
     * container's limit. -1 when unknown.
     */
    public static long available() {
        long best = -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    best = Long.parseLong(line.substring("MemAvailable:".length()).trim().split("\\s+")[0]) * 1024;
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or an unreadable /proc: the JVM's figure below
        }
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            if (best < 0) best = os.getFreeMemorySize();
            long total = os.getTotalMemorySize();
            if (total > 0 && best > total) best = total;
        }
        return best;
    }
}
