package dev.jmoe.experts.cache;

import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.store.DirectStore;
import dev.jmoe.experts.store.Link;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Parallel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Child-JVM side of {@link OffloadRssTest}: prints the process's resident memory before the model is opened,
 * then runs a prompt and greedy decode (offloaded with {@code store budget}, or resident with "resident") and
 * prints the peak. Lines: {@code BASE rssKiB}, {@code PEAK hwmKiB anonKiB fileKiB}, {@code SIZES nonExpert kv}.
 */
public final class RssHarness {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        String store = args[1];
        String budget = args.length > 2 ? args[2] : null;
        System.out.println("BASE " + status("VmRSS") + " " + status("RssAnon") + " " + status("RssFile"));
        try (GgufFile f = GgufFile.open(model); Parallel pool = new Parallel(2)) {
            Model m = Model.load(f);
            InferenceState st = m.newState(64, pool);
            OffloadRuntime rt = store.equals("resident") ? null
                    : OffloadRuntime.install(st, OffloadConfig.preset("exact-smoe", budget, store, Link.UNLIMITED), null);
            int tok = 1;
            st.eval(new int[]{1, 5, 9, 13, 17, 21, 25, 29}, 0, 8, 8);
            for (int i = 0; i < 16; i++) {
                float[] logits = st.next(tok);
                tok = ExactnessHarness.argmax(logits);
            }
            long total = 0;
            for (var t : f.tensors()) total += t.byteSize();
            long kv = 2L * m.hyperparams().nLayer() * 64 * m.hyperparams().kvDim() * Float.BYTES;
            System.out.println("SIZES " + (total - m.expertBytes()) + " " + kv + " " + m.expertBytes());
            System.out.println("PEAK " + status("VmHWM") + " " + status("RssAnon") + " " + status("RssFile"));
            if (rt != null) {
                System.out.println("STATS peak_resident=" + rt.stats().peakResidentBytes() + " loads=" + rt.stats().total(OffloadStats.Counter.LOADS)
                        + " direct=" + (rt.store() instanceof DirectStore d && d.isDirect()));
                rt.close();
            }
        }
    }

    /** A /proc/self/status field in KiB. */
    static long status(String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) return Long.parseLong(line.substring(field.length() + 1).trim().split("\\s+")[0]);
        }
        throw new IllegalStateException("/proc/self/status has no " + field);
    }
}
