package dev.jmoe.memory;

import java.util.List;

/**
 * How a run uses the memory it may use: resident or offloaded, the Java heap, the expert budget, and whether
 * packed copies are made and non-expert weights copied out of the file mapping.
 *
 * @param mode          RESIDENT: every weight read through the file mapping; OFFLOAD: experts in budgeted slots
 * @param available     bytes the process may use, as planned with
 * @param source        where {@code available} comes from ("cgroup v1 /x limit 400 MB", "MemAvailable 21 GiB")
 * @param heapBytes     the Java heap limit
 * @param expertBudget  bytes of expert slots (OFFLOAD), else 0
 * @param slots         slots that budget holds (OFFLOAD), else 0
 * @param pack          whether packed copies are made (heap)
 * @param copyNonExpert whether non-expert weights are copied to anonymous memory (OFFLOAD)
 * @param margin        bytes left unplanned for safety
 * @param notes         what was skipped or warned about
 * @param explanation   one status line: what was chosen and why
 */
public record MemoryPlan(Mode mode, long available, String source, long heapBytes, long expertBudget, int slots, boolean pack,
                         boolean copyNonExpert, long margin, List<String> notes, String explanation) {
    public enum Mode { RESIDENT, OFFLOAD }

    public MemoryPlan {
        notes = List.copyOf(notes);
    }

    public boolean offloads() { return mode == Mode.OFFLOAD; }
}
