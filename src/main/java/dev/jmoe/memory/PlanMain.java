package dev.jmoe.memory;

import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.experts.store.FileAccess;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * bin/jmoe's "plan" mode: given jmoe's command line, prints the JVM options for the real run, one per line — the
 * heap from the same {@link MemoryPlanner} plan the run makes again inside the JVM, and the memory figure it was
 * planned with (so both plans agree). Exits with status 3 after printing the reason when the memory limit is too
 * small for the model, before a JVM that could not run is started. Anything it cannot make sense of (no model,
 * an unreadable file) gets the launcher's default heap, and the real run reports the problem.
 */
public final class PlanMain {
    private PlanMain() {}

    /** Commands whose expert memory the plan decides (they take --expert-memory). */
    static final Set<String> OFFLOADING = Set.of("generate", "chat", "perplexity", "logits", "eval", "fidelity", "serve");
    /** Other commands that run a model resident (or install offloading themselves). */
    static final Set<String> RUNNING = Set.of("bench", "offload-bench", "predict-bench", "predict-eval", "speed", "serve-bench");
    /** Slots of {@code jmoe serve} without --parallel (ServeCommand's default). */
    static final int SERVE_SLOTS = 4;

    public static void main(String[] args) {
        SystemMemory mem = SystemMemory.probe();
        List<String> out;
        try {
            out = options(args, mem.available(), mem.source(), home());
        } catch (MemoryPlanner.TooSmall e) {
            System.err.println("jmoe: error: " + e.getMessage());
            System.exit(3);
            return;
        }
        for (String o : out) System.out.println(o);
    }

    private static Path home() {
        String h = System.getProperty("jmoe.home");
        return Path.of(h != null ? h : ".");
    }

    /** The JVM options for {@code args}, planned within {@code available} bytes. */
    static List<String> options(String[] args, long available, String source, Path home) {
        List<String> out = new ArrayList<>();
        String command = null, model = null, expertMemory = null;
        Integer ctx = null, parallel = null, kvSize = null;
        boolean noPack = false;
        int models = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String next = i + 1 < args.length ? args[i + 1] : null;
            if (command == null && !a.startsWith("-")) {
                command = a;
            } else if (a.equals("-m") || a.equals("--model")) {
                model = next;
                models++;
                i++;
            } else if (a.startsWith("--model=")) {
                model = a.substring("--model=".length());
                models++;
            } else if (a.equals("-c") || a.equals("--ctx-size")) {
                ctx = intOrNull(next);
                i++;
            } else if (a.startsWith("--ctx-size=")) {
                ctx = intOrNull(a.substring("--ctx-size=".length()));
            } else if (a.equals("--expert-memory")) {
                expertMemory = next;
                i++;
            } else if (a.startsWith("--expert-memory=")) {
                expertMemory = a.substring("--expert-memory=".length());
            } else if (a.equals("-np") || a.equals("--parallel")) {
                parallel = intOrNull(next);
                i++;
            } else if (a.startsWith("--parallel=")) {
                parallel = intOrNull(a.substring("--parallel=".length()));
            } else if (a.equals("--kv-size")) {
                kvSize = intOrNull(next);
                i++;
            } else if (a.startsWith("--kv-size=")) {
                kvSize = intOrNull(a.substring("--kv-size=".length()));
            } else if (a.equals("--no-pack")) {
                noPack = true;
            }
        }
        boolean offloading = command != null && OFFLOADING.contains(command);
        boolean running = command != null && RUNNING.contains(command);
        if (model == null && (offloading || running)) {
            for (String p : new String[]{"models/qwen2moe-tiny-q8_0.gguf", "target/default-random-model.gguf"}) {
                if (Files.isRegularFile(home.resolve(p))) {
                    model = home.resolve(p).toString();
                    models = 1;
                    break;
                }
            }
        }
        if (available != Long.MAX_VALUE) {
            out.add("-D" + SystemMemory.AVAILABLE_PROPERTY + "=" + available);
            out.add("-D" + SystemMemory.SOURCE_PROPERTY + "=" + source);
        }
        MemoryPlan plan = null;
        if (model != null && models == 1 && (offloading || running) && Files.isRegularFile(Path.of(model))) {
            try (GgufFile f = GgufFile.open(Path.of(model))) {
                FileAccess.adviseRandom(f.mapping());
                Model m = Model.load(f);
                ModelFootprint fp = ModelFootprint.of(m);
                int c = ctx != null && ctx > 0 ? ctx : Math.min(4096, m.hyperparams().contextLength());
                // the server's KV memory holds every slot's context (or --kv-size positions): it lives on the heap too
                if ("serve".equals(command)) {
                    c = kvSize != null && kvSize > 0 ? kvSize : (int) Math.min(Integer.MAX_VALUE / 2, (long) (parallel != null && parallel > 0 ? parallel : SERVE_SLOTS) * c);
                }
                MemoryPlanner.Request r = MemoryPlanner.Request.of(offloading ? expertMemory : null, fp.budgetBase(noPack), c, noPack,
                        (spec, experts) -> OffloadConfig.parseBudget(spec, experts));
                plan = MemoryPlanner.plan(fp, r, available, source, -1);
            } catch (MemoryPlanner.TooSmall e) {
                if (offloading) throw e;
                plan = null; // a command that runs resident anyway gets the default heap
            } catch (Exception | Error e) {
                plan = null; // the real run reports what is wrong with the file or the flags
            }
        }
        if (plan == null) {
            // no model to plan for: the heap may take three quarters of what this process may use
            if (available != Long.MAX_VALUE) out.add("-XX:MaxRAM=" + available);
            out.add("-XX:MaxRAMPercentage=75");
            return out;
        }
        long heapMib = Math.max(16, plan.heapBytes() >> 20);
        out.add("-Xmx" + heapMib + "m");
        // A planned offloading heap holds the KV cache and long-lived copies; a small fixed eden keeps the old
        // generation large enough for them (ParallelGC would otherwise give a third of the heap to the young one).
        if (plan.offloads()) out.add("-Xmn" + (MemoryPlanner.YOUNG >> 20) + "m");
        out.add("-D" + ModelMemory.HEAP_PROPERTY + "=" + (heapMib << 20));
        return out;
    }

    private static Integer intOrNull(String s) {
        try {
            return s == null ? null : Integer.valueOf(s.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
