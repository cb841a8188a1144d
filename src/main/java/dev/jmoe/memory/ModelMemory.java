package dev.jmoe.memory;

import dev.jmoe.experts.store.FileAccess;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.util.function.ToLongBiFunction;

/**
 * Loads a model the way its memory plan says: the plan is made from the loaded shapes, the memory this process may
 * use ({@link SystemMemory#forThisProcess}) and the JVM's heap limit; an offloaded run gets its non-expert weights
 * copied out of the mapping, and packed copies are made only where the plan has room for them.
 */
public final class ModelMemory {
    private ModelMemory() {}

    /** The system property through which bin/jmoe hands over the heap it planned (bytes). */
    public static final String HEAP_PROPERTY = "jmoe.memory.heap";

    /**
     * A model loaded under a plan.
     *
     * @param ctx    the context size the plan counted the KV cache for
     * @param status one line for the user (the plan's explanation) when there is something to say, else null
     */
    public record Loaded(Model model, MemoryPlan plan, int ctx, String status) {}

    /**
     * Loads {@code file}'s model.
     *
     * @param expertMemory  --expert-memory (null: not given; "auto"; or a budget {@code parse} understands)
     * @param ctxOption     --ctx-size, or null for the model's (at most 4096)
     * @param offloadable   whether the command offloads per the plan (a command without --expert-memory just runs resident)
     * @param parse         budget parser: (spec, expert bytes) to bytes
     */
    public static Loaded load(GgufFile file, String expertMemory, Integer ctxOption, boolean noPack, boolean offloadable,
                              ToLongBiFunction<String, Long> parse) {
        // No read-around while the loader reads the norm vectors: on a disk with a large read_ahead_kb each of them
        // would pull megabytes of neighbouring expert bytes into the page cache.
        FileAccess.adviseRandom(file.mapping());
        Model model = Model.load(file);
        ModelFootprint fp = ModelFootprint.of(model);
        int ctx = ctxOption != null ? ctxOption : Math.min(4096, model.hyperparams().contextLength());
        if (ctx < 1) throw new IllegalArgumentException("--ctx-size must be at least 1, got " + ctx);
        SystemMemory.Figure mem = SystemMemory.forThisProcess();
        MemoryPlan plan;
        try {
            plan = MemoryPlanner.plan(fp, MemoryPlanner.Request.of(offloadable ? expertMemory : null, fp.budgetBase(noPack), ctx, noPack, parse),
                    mem.available(), mem.source(), runtimeHeap());
        } catch (MemoryPlanner.TooSmall e) {
            // A command that cannot offload runs resident as it always did; only runs that could offload are refused.
            if (offloadable) throw e;
            plan = new MemoryPlan(MemoryPlan.Mode.RESIDENT, mem.available(), mem.source(), runtimeHeap(), 0, 0, !noPack, false, 0,
                    java.util.List.of(e.getMessage()), "memory plan: none fits; running resident as asked (" + e.getMessage() + ")");
        }
        boolean offloading = offloadable && plan.offloads();
        if (offloading) model = NonExpertWeights.copy(model, null);
        // Whatever still reads through the mapping (a resident run's weights, a resident reference run next to an
        // offloaded one, the mmap store) gets the kernel's read-around again.
        FileAccess.adviseNormal(file.mapping());
        boolean pack = !noPack && (offloadable ? plan.pack() : true);
        if (pack) model = model.withPackedWeights();
        String status = offloading || (offloadable && !plan.notes().isEmpty()) ? plan.explanation() : null;
        return new Loaded(model, plan, ctx, status);
    }

    /**
     * The expert budget of {@code --expert-memory auto} for a model already loaded (and a KV cache of {@code ctx}
     * positions), planned as {@link #load} plans it; for callers that install offloading themselves.
     */
    public static MemoryPlan autoPlan(Model model, int ctx) {
        ModelFootprint fp = ModelFootprint.of(model);
        SystemMemory.Figure mem = SystemMemory.forThisProcess();
        return MemoryPlanner.plan(fp, new MemoryPlanner.Request(MemoryPlanner.Ask.AUTO, 0, ctx, !model.packsWeights()), mem.available(), mem.source(),
                runtimeHeap());
    }

    /** The heap limit a plan inside this JVM counts: what bin/jmoe planned, else the JVM's own limit. */
    static long runtimeHeap() {
        long planned = Long.getLong(HEAP_PROPERTY, -1L);
        return planned > 0 ? planned : Runtime.getRuntime().maxMemory();
    }
}
