package dev.jmoe.experts.trace;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Routing;
import dev.jmoe.model.RoutingHook;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A {@link RoutingTrace} on disk, as JSON Lines (documented in docs/trace-format.md): a header object
 * ({@code "format": "jmoe-routing-trace"}, version, model, shape), then one object per MoE layer step with the
 * layer, the position of its first token, the token count, the router's top-k choice and all router probabilities
 * (token-major). The router's choice is recorded before any substitution, so policies replay the true routing.
 */
public final class RoutingTraceFile {
    public static final String FORMAT = "jmoe-routing-trace";
    public static final int VERSION = 1;

    private RoutingTraceFile() {}

    /** What a trace file says about the run that made it, and its steps. */
    public record Loaded(String model, String architecture, boolean renormalize, RoutingTrace trace, int[] positions) {}

    /** Streams every routing decision of a state to a file; installed in front of hooks installed later. */
    public static final class Recorder implements RoutingHook, AutoCloseable {
        private final InferenceState state;
        private final RoutingHook previous;
        private final BufferedWriter w;
        private final int nExpert, k;
        private long steps;

        public Recorder(InferenceState state, Path file, String modelName) throws IOException {
            Model m = state.model();
            if (!m.hyperparams().hasExperts()) throw new IllegalArgumentException("--trace needs a mixture-of-experts model; this one has no routed experts");
            this.state = state;
            this.nExpert = m.hyperparams().nExpert();
            this.k = m.hyperparams().nExpertUsed();
            this.w = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
            var header = new java.util.LinkedHashMap<String, Object>();
            header.put("format", FORMAT);
            header.put("version", VERSION);
            header.put("model", modelName);
            header.put("architecture", m.spec().name());
            header.put("n_layer", m.hyperparams().nLayer());
            header.put("n_expert", nExpert);
            header.put("k", k);
            header.put("renormalize", m.spec().renormTopK());
            w.write(new ObjectMapper().writeValueAsString(header));
            w.write('\n');
            this.previous = state.routingHook();
            state.setRoutingHook(this);
        }

        @Override
        public void onRouting(int layer, int pos, int n, float[] probs, Routing routing) {
            if (previous != null) previous.onRouting(layer, pos, n, probs, routing);
            StringBuilder sb = new StringBuilder(32 + n * (k * 3 + nExpert * 12));
            sb.append("{\"layer\":").append(layer).append(",\"pos\":").append(pos).append(",\"n\":").append(n).append(",\"selected\":[");
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < k; j++) {
                    if (t + j > 0) sb.append(',');
                    sb.append(routing.expert(t, j));
                }
            }
            sb.append("],\"probs\":[");
            for (int i = 0; i < n * nExpert; i++) {
                if (i > 0) sb.append(',');
                sb.append(probs[i]); // Float.toString: the shortest text that reads back to the same float
            }
            sb.append("]}\n");
            try {
                w.write(sb.toString());
            } catch (IOException e) {
                throw new UncheckedIOException("writing the routing trace failed", e);
            }
            steps++;
        }

        public long steps() { return steps; }

        @Override
        public void close() throws IOException {
            if (state.routingHook() == this) state.setRoutingHook(previous);
            w.close();
        }
    }

    /** Reads a trace file; errors name the file and line. */
    public static Loaded read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("trace file not found: " + file);
        ObjectMapper om = new ObjectMapper();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line = r.readLine();
            if (line == null) throw new IllegalArgumentException(file + ": empty trace file");
            JsonNode h = parse(om, line, file, 1);
            if (!FORMAT.equals(h.path("format").asText())) throw new IllegalArgumentException(file + " line 1: not a jmoe routing trace (format is not \"" + FORMAT + "\")");
            if (h.path("version").asInt() != VERSION) throw new IllegalArgumentException(file + " line 1: trace version " + h.path("version") + ", this jmoe reads " + VERSION);
            int nLayer = positive(h, "n_layer", file), nExpert = positive(h, "n_expert", file), k = positive(h, "k", file);
            RoutingTrace trace = new RoutingTrace(nLayer, nExpert, k);
            java.util.List<Integer> positions = new java.util.ArrayList<>();
            int no = 1;
            while ((line = r.readLine()) != null) {
                no++;
                if (line.isBlank()) continue;
                JsonNode s = parse(om, line, file, no);
                int n = s.path("n").asInt(0), layer = s.path("layer").asInt(-1);
                JsonNode sel = s.path("selected"), pr = s.path("probs");
                if (n < 1 || layer < 0 || layer >= nLayer || sel.size() != n * k || pr.size() != n * nExpert) {
                    throw new IllegalArgumentException(file + " line " + no + ": a step needs layer in [0," + nLayer + "), n ≥ 1, n·k selected and n·n_expert probs");
                }
                int[] selected = new int[n * k];
                for (int i = 0; i < selected.length; i++) {
                    selected[i] = sel.get(i).asInt();
                    if (selected[i] < 0 || selected[i] >= nExpert) throw new IllegalArgumentException(file + " line " + no + ": expert " + selected[i] + " out of range");
                }
                float[] probs = new float[n * nExpert];
                for (int i = 0; i < probs.length; i++) probs[i] = (float) pr.get(i).asDouble();
                trace.add(new RoutingTrace.Step(layer, n, probs, selected));
                positions.add(s.path("pos").asInt(-1));
            }
            return new Loaded(h.path("model").asText(null), h.path("architecture").asText(""), h.path("renormalize").asBoolean(true), trace,
                    positions.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    private static JsonNode parse(ObjectMapper om, String line, Path file, int no) {
        try {
            JsonNode n = om.readTree(line);
            if (n == null || !n.isObject()) throw new IllegalArgumentException(file + " line " + no + ": expected a JSON object");
            return n;
        } catch (IOException e) {
            throw new IllegalArgumentException(file + " line " + no + ": not JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
    }

    private static int positive(JsonNode h, String field, Path file) {
        int v = h.path(field).asInt(0);
        if (v < 1) throw new IllegalArgumentException(file + " line 1: header field \"" + field + "\" must be a positive integer");
        return v;
    }
}
