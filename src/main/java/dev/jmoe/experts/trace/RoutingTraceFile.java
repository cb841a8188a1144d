package dev.jmoe.experts.trace;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jmoe.model.InferenceState;
import dev.jmoe.model.Model;
import dev.jmoe.model.Routing;
import dev.jmoe.model.RoutingHook;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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
    /**
     * What a trace file says about the run that made it, and its steps. {@code format}: "jmoe", "jsonl" or "text"
     * (recorded elsewhere: no model, ids and maybe weights only); {@code notes}: what the reader had to infer.
     */
    public record Loaded(String model, String architecture, boolean renormalize, RoutingTrace trace, int[] positions, String format,
                         List<String> notes, RecordedPredictions predictions) {
        public Loaded(String model, String architecture, boolean renormalize, RoutingTrace trace, int[] positions, String format, List<String> notes) {
            this(model, architecture, renormalize, trace, positions, format, notes, null);
        }
    }

    /**
     * A predictor's predictions recorded beside the routing ({@code jmoe predict-eval --trace}): at decode step i, the experts
     * it named for the layer steps 1 … depth ahead ({@code sets[i][d − 1]}, null where it named none; {@code sets[i]} null on
     * steps it was not asked at).
     *
     * @param predictor what made them (the predictor's name and how the run was driven)
     */
    public record RecordedPredictions(String predictor, int depth, int[][][] sets) {}

    /** Streams every routing decision of a state to a file; installed in front of hooks installed later. */
    public static final class Recorder implements RoutingHook, AutoCloseable {
        private final InferenceState state;
        private final RoutingHook previous;
        private final BufferedWriter w;
        private final int nExpert, k;
        private long steps;
        private final int depth;
        private int predictedLayer = -1, predictedPos = -1;
        private int[][] predicted;

        public Recorder(InferenceState state, Path file, String modelName) throws IOException {
            this(state, file, modelName, null, 0);
        }

        /**
         * A recorder that also writes a predictor's predictions at each decode step ({@link #predicted}); {@code predictor}
         * names it in the header, {@code depth} is the farthest distance it is asked.
         */
        public Recorder(InferenceState state, Path file, String modelName, String predictor, int depth) throws IOException {
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
            this.depth = predictor == null ? 0 : depth;
            if (predictor != null) {
                if (depth < 1) throw new IllegalArgumentException("recorded predictions need a depth of at least 1, got " + depth);
                header.put("predictor", predictor);
                header.put("prediction_depth", depth);
                predicted = new int[depth][];
            }
            w.write(new ObjectMapper().writeValueAsString(header));
            w.write('\n');
            this.previous = state.routingHook();
            state.setRoutingHook(this);
        }

        /**
         * The predictor named {@code experts[0..count)} at step ({@code pos}, {@code layer}) for the layer step
         * {@code distance} ahead; written with that step's routing (call before the step's router runs).
         */
        public void predicted(int pos, int layer, int distance, int[] experts, int count) {
            if (depth == 0) throw new IllegalStateException("this recorder was not made to record predictions");
            if (distance < 1 || distance > depth) throw new IllegalArgumentException("distance " + distance + " outside 1.." + depth);
            if (pos != predictedPos || layer != predictedLayer) {
                java.util.Arrays.fill(predicted, null);
                predictedPos = pos;
                predictedLayer = layer;
            }
            predicted[distance - 1] = java.util.Arrays.copyOf(experts, count);
        }

        @Override
        public void onRouting(int layer, int pos, int n, float[] probs, Routing routing) {
            if (previous != null) previous.onRouting(layer, pos, n, probs, routing);
            boolean withPredictions = depth > 0 && n == 1 && pos == predictedPos && layer == predictedLayer;
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
            sb.append(']');
            if (withPredictions) {
                sb.append(",\"predicted\":[");
                for (int d = 0; d < depth; d++) {
                    if (d > 0) sb.append(',');
                    int[] p = predicted[d];
                    sb.append('[');
                    for (int i = 0; p != null && i < p.length; i++) {
                        if (i > 0) sb.append(',');
                        sb.append(p[i]);
                    }
                    sb.append(']');
                }
                sb.append(']');
                predictedPos = -1;
            }
            sb.append("}\n");
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

    /**
     * Reads a trace file in any form docs/trace-format.md describes: jmoe's own (a header line with {@code "format":
     * "jmoe-routing-trace"}), or one recorded elsewhere — JSON Lines or plain text with one line per token and layer,
     * expert ids in rank order, optionally with the selected experts' weights. Errors name the file and line.
     */
    public static Loaded read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("trace file not found: " + file);
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IllegalArgumentException(file + ": not a text file (not UTF-8)");
        }
        int first = 0;
        while (first < lines.size() && (lines.get(first).isBlank() || (lines.get(first).strip().startsWith("#") && !lines.get(first).strip().startsWith("{")))) first++;
        if (first == lines.size()) throw new IllegalArgumentException(file + ": empty trace file");
        ObjectMapper om = new ObjectMapper();
        if (lines.get(first).strip().startsWith("{")) {
            JsonNode h = parse(om, lines.get(first), file, first + 1);
            if (h.has("format")) return readNative(om, lines, first, h, file);
            return readForeign(om, lines, file, true);
        }
        return readForeign(om, lines, file, false);
    }

    /** Largest shapes a trace may declare (the arrays a replay allocates are n_layer × n_expert). */
    private static final int MAX_LAYERS = 1 << 12, MAX_EXPERTS = 1 << 14, MAX_BATCH = 1 << 16;

    private static Loaded readNative(ObjectMapper om, List<String> lines, int first, JsonNode h, Path file) {
        int hl = first + 1;
        if (!FORMAT.equals(h.path("format").asText())) {
            throw new IllegalArgumentException(file + " line " + hl + ": not a jmoe routing trace (format is not \"" + FORMAT + "\")");
        }
        if (h.path("version").asInt() != VERSION) throw new IllegalArgumentException(file + " line " + hl + ": trace version " + h.path("version") + ", this jmoe reads " + VERSION);
        int nLayer = positive(h, "n_layer", file, hl, MAX_LAYERS), nExpert = positive(h, "n_expert", file, hl, MAX_EXPERTS), k = positive(h, "k", file, hl, nExpert);
        RoutingTrace trace = new RoutingTrace(nLayer, nExpert, k);
        List<Integer> positions = new ArrayList<>();
        String predictor = h.path("predictor").isTextual() ? h.path("predictor").asText() : null;
        int depth = predictor == null ? 0 : h.path("prediction_depth").asInt(0);
        if (predictor != null && (depth < 1 || depth > 2 * nLayer)) {
            throw new IllegalArgumentException(file + " line " + hl + ": prediction_depth must be between 1 and 2·n_layer (" + 2 * nLayer + "), got " + h.path("prediction_depth"));
        }
        List<int[][]> sets = new ArrayList<>();
        for (int i = first + 1; i < lines.size(); i++) {
            int no = i + 1;
            String line = lines.get(i);
            if (line.isBlank()) continue;
            JsonNode s = parse(om, line, file, no);
            int n = s.path("n").asInt(0), layer = s.path("layer").asInt(-1);
            JsonNode sel = s.path("selected"), pr = s.path("probs"), wt = s.path("weights");
            if (n < 1 || n > MAX_BATCH || layer < 0 || layer >= nLayer || sel.size() != n * k || (!pr.isMissingNode() && pr.size() != n * nExpert)
                    || (!wt.isMissingNode() && wt.size() != n * k)) {
                throw new IllegalArgumentException(file + " line " + no + ": a step needs layer in [0," + nLayer + "), n ≥ 1, n·k selected and, if given,"
                        + " n·n_expert probs and n·k weights");
            }
            int[] selected = ids(sel, nExpert, file, no);
            trace.add(new RoutingTrace.Step(layer, n, pr.isMissingNode() ? null : floats(pr, file, no), selected, wt.isMissingNode() ? null : floats(wt, file, no)));
            positions.add(s.path("pos").asInt(-1));
            JsonNode pd = s.path("predicted");
            if (pd.isMissingNode() || predictor == null) {
                sets.add(null);
            } else {
                if (!pd.isArray() || pd.size() != depth) {
                    throw new IllegalArgumentException(file + " line " + no + ": \"predicted\" must hold prediction_depth (" + depth + ") lists of expert ids");
                }
                int[][] byDistance = new int[depth][];
                for (int d = 0; d < depth; d++) {
                    if (!pd.get(d).isArray() || pd.get(d).size() > nExpert) {
                        throw new IllegalArgumentException(file + " line " + no + ": \"predicted\" entry " + (d + 1) + " must be a list of at most n_expert ids");
                    }
                    byDistance[d] = pd.get(d).isEmpty() ? null : ids(pd.get(d), nExpert, file, no);
                }
                sets.add(byDistance);
            }
        }
        RecordedPredictions recorded = predictor == null ? null : new RecordedPredictions(predictor, depth, sets.toArray(new int[0][][]));
        return new Loaded(h.path("model").asText(null), h.path("architecture").asText(""), h.path("renormalize").asBoolean(true), trace,
                positions.stream().mapToInt(Integer::intValue).toArray(), "jmoe", List.of(), recorded);
    }

    /** One line of a trace recorded elsewhere: one token (or n, JSON with "n") at one layer. */
    private record Row(int line, int layer, int pos, int n, int[] ids, float[] weights, float[] probs) {}

    /**
     * A trace recorded elsewhere, JSON Lines or text. Consecutive rows of one layer at consecutive positions are one batch
     * step (a prompt batch); anything else starts a new step. The shape comes from a header (JSON: an object without
     * "layer"; text: a comment {@code # n_layer=L n_expert=E k=K}) or, where absent, from the rows: layers and experts
     * seen, ids per token.
     */
    private static Loaded readForeign(ObjectMapper om, List<String> lines, Path file, boolean json) {
        int nLayer = 0, nExpert = 0, k = 0;
        List<Row> rows = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            int no = i + 1;
            String line = lines.get(i).strip();
            if (line.isEmpty()) continue;
            if (!json || line.startsWith("#")) {
                if (line.startsWith("#")) {
                    for (String kv : line.substring(1).trim().split("[\\s,]+")) {
                        String[] e = kv.split("=", 2);
                        if (e.length != 2) continue;
                        switch (e[0]) {
                            case "n_layer" -> nLayer = headerInt(e[1], "n_layer", file, no, MAX_LAYERS);
                            case "n_expert" -> nExpert = headerInt(e[1], "n_expert", file, no, MAX_EXPERTS);
                            case "k" -> k = headerInt(e[1], "k", file, no, MAX_EXPERTS);
                            default -> { }
                        }
                    }
                    continue;
                }
                rows.add(textRow(line, file, no));
                continue;
            }
            JsonNode o = parse(om, line, file, no);
            if (!o.has("layer")) {
                if (o.has("n_layer")) nLayer = positive(o, "n_layer", file, no, MAX_LAYERS);
                if (o.has("n_expert")) nExpert = positive(o, "n_expert", file, no, MAX_EXPERTS);
                if (o.has("k")) k = positive(o, "k", file, no, MAX_EXPERTS);
                if (!o.has("n_layer") && !o.has("n_expert") && !o.has("k")) {
                    throw new IllegalArgumentException(file + " line " + no + ": a step needs \"layer\" (a header line gives n_layer, n_expert or k)");
                }
                continue;
            }
            rows.add(jsonRow(o, file, no));
        }
        if (rows.isEmpty()) throw new IllegalArgumentException(file + ": the trace has no steps");
        int maxLayer = 0, maxId = 0;
        for (Row r : rows) {
            maxLayer = Math.max(maxLayer, r.layer());
            for (int id : r.ids()) maxId = Math.max(maxId, id);
        }
        if (nLayer == 0) {
            nLayer = maxLayer + 1;
            notes.add("n_layer " + nLayer + " inferred from the layers seen (a header line can give it)");
        }
        if (nExpert == 0) {
            nExpert = maxId + 1;
            notes.add("n_expert " + nExpert + " inferred from the largest expert id seen: experts never chosen are not counted (a header line can give it)");
        }
        if (k == 0) {
            Row r0 = rows.get(0);
            k = r0.ids().length / r0.n();
        }
        if (maxLayer >= nLayer) throw new IllegalArgumentException(file + ": layer " + maxLayer + " is outside the header's n_layer " + nLayer);
        if (maxId >= nExpert) throw new IllegalArgumentException(file + ": expert " + maxId + " is outside the header's n_expert " + nExpert);
        if (k < 1 || k > nExpert) throw new IllegalArgumentException(file + ": k = " + k + " experts per token does not fit " + nExpert + " experts");
        for (Row r : rows) {
            if (r.ids().length != r.n() * k) {
                throw new IllegalArgumentException(file + " line " + r.line() + ": " + r.ids().length + " expert ids for " + r.n() + " token(s), expected "
                        + r.n() + " x " + k + " (k from the header or the first step)");
            }
            if (r.probs() != null && r.probs().length != r.n() * nExpert) {
                throw new IllegalArgumentException(file + " line " + r.line() + ": probs must hold n x n_expert = " + r.n() * nExpert + " values");
            }
        }
        RoutingTrace trace = new RoutingTrace(nLayer, nExpert, k);
        List<Integer> positions = new ArrayList<>();
        for (int i = 0; i < rows.size(); ) {
            Row r = rows.get(i);
            int j = i + 1, n = r.n();
            // rows of one layer at consecutive positions, one token each, are one batch
            while (r.pos() >= 0 && r.n() == 1 && j < rows.size() && rows.get(j).layer() == r.layer() && rows.get(j).n() == 1
                    && rows.get(j).pos() == r.pos() + n && sameDetail(r, rows.get(j)) && n < MAX_BATCH) {
                n++;
                j++;
            }
            int[] ids = new int[n * k];
            float[] w = r.weights() == null ? null : new float[n * k];
            float[] p = r.probs() == null ? null : new float[n * nExpert];
            int at = 0;
            for (int x = i; x < j; x++) {
                Row q = rows.get(x);
                System.arraycopy(q.ids(), 0, ids, at * k, q.ids().length);
                if (w != null) System.arraycopy(q.weights(), 0, w, at * k, q.weights().length);
                if (p != null) System.arraycopy(q.probs(), 0, p, at * nExpert, q.probs().length);
                at += q.n();
            }
            trace.add(new RoutingTrace.Step(r.layer(), n, p, ids, w));
            positions.add(r.pos());
            i = j;
        }
        return new Loaded(null, "", true, trace, positions.stream().mapToInt(Integer::intValue).toArray(), json ? "jsonl" : "text", notes);
    }

    private static boolean sameDetail(Row a, Row b) {
        return (a.weights() == null) == (b.weights() == null) && (a.probs() == null) == (b.probs() == null);
    }

    /** {@code LAYER POS ID[:WEIGHT] ID[:WEIGHT] ...} */
    private static Row textRow(String line, Path file, int no) {
        String[] t = line.split("\\s+");
        if (t.length < 3) throw new IllegalArgumentException(file + " line " + no + ": expected LAYER POS ID [ID ...] (ids optionally ID:WEIGHT)");
        int layer = parseInt(t[0], "layer", file, no, MAX_LAYERS - 1), pos = parseInt(t[1], "position", file, no, Integer.MAX_VALUE);
        int[] ids = new int[t.length - 2];
        float[] w = t[2].contains(":") ? new float[ids.length] : null;
        for (int i = 0; i < ids.length; i++) {
            String[] e = t[i + 2].split(":", 2);
            if ((e.length == 2) != (w != null)) throw new IllegalArgumentException(file + " line " + no + ": give a weight for every expert of the line or for none");
            ids[i] = parseInt(e[0], "expert id", file, no, MAX_EXPERTS - 1);
            if (w != null) w[i] = parseFloat(e[1], file, no);
        }
        return new Row(no, layer, pos, 1, ids, w, null);
    }

    /** {@code {"layer":L,"pos":P,"experts":[...],"weights":[...]}} ("selected" for "experts", "token" for "pos", optional "n", "probs"). */
    private static Row jsonRow(JsonNode o, Path file, int no) {
        JsonNode l = o.path("layer");
        if (!l.canConvertToInt() || l.asInt() < 0 || l.asInt() >= MAX_LAYERS) throw new IllegalArgumentException(file + " line " + no + ": \"layer\" must be a layer index");
        JsonNode ids = o.has("experts") ? o.path("experts") : o.path("selected");
        if (!ids.isArray() || ids.isEmpty()) throw new IllegalArgumentException(file + " line " + no + ": a step needs \"experts\": [ids in rank order]");
        int n = o.path("n").asInt(1);
        if (n < 1 || n > MAX_BATCH || ids.size() % n != 0) throw new IllegalArgumentException(file + " line " + no + ": \"n\" must divide the expert ids into tokens");
        JsonNode pos = o.has("pos") ? o.path("pos") : o.path("token");
        int[] sel = ids(ids, MAX_EXPERTS, file, no);
        JsonNode w = o.path("weights"), p = o.path("probs");
        if (!w.isMissingNode() && w.size() != sel.length) throw new IllegalArgumentException(file + " line " + no + ": \"weights\" must have one value per expert id");
        return new Row(no, l.asInt(), pos.isMissingNode() ? -1 : pos.asInt(-1), n, sel, w.isMissingNode() ? null : floats(w, file, no),
                p.isMissingNode() ? null : floats(p, file, no));
    }

    private static int[] ids(JsonNode a, int nExpert, Path file, int no) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = a.get(i);
            if (!v.canConvertToInt() || v.asInt() < 0 || v.asInt() >= nExpert) {
                throw new IllegalArgumentException(file + " line " + no + ": expert " + v + " out of range [0, " + nExpert + ")");
            }
            out[i] = v.asInt();
        }
        return out;
    }

    private static float[] floats(JsonNode a, Path file, int no) {
        if (!a.isArray()) throw new IllegalArgumentException(file + " line " + no + ": expected an array of numbers");
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = a.get(i);
            if (!v.isNumber() || !Double.isFinite(v.asDouble())) throw new IllegalArgumentException(file + " line " + no + ": " + v + " is not a finite number");
            out[i] = (float) v.asDouble();
        }
        return out;
    }

    private static int parseInt(String s, String what, Path file, int no, int max) {
        try {
            int v = Integer.parseInt(s);
            if (v < 0 || v > max) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(file + " line " + no + ": " + what + " '" + s + "' is not an integer in [0, " + max + "]");
        }
    }

    private static float parseFloat(String s, Path file, int no) {
        try {
            float v = Float.parseFloat(s);
            if (!Float.isFinite(v)) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(file + " line " + no + ": weight '" + s + "' is not a finite number");
        }
    }

    private static int headerInt(String s, String what, Path file, int no, int max) {
        int v = parseInt(s, what, file, no, max);
        if (v < 1) throw new IllegalArgumentException(file + " line " + no + ": " + what + " must be positive");
        return v;
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

    private static int positive(JsonNode h, String field, Path file, int no, int max) {
        int v = h.path(field).asInt(0);
        if (v < 1 || v > max) throw new IllegalArgumentException(file + " line " + no + ": header field \"" + field + "\" must be an integer in [1, " + max + "]");
        return v;
    }
}
