package dev.jmoe.cli;

import dev.jmoe.engine.Engine;
import dev.jmoe.experts.predict.Alignment;
import dev.jmoe.experts.predict.PredictorSettings;
import dev.jmoe.experts.predict.Predictors;
import dev.jmoe.tensor.GgmlType;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jmoe.experts.predict.ExpertPredictor;
import dev.jmoe.experts.predict.NextTokenRule;
import dev.jmoe.experts.predict.PredictionEvaluator;
import dev.jmoe.experts.predict.PredictionMetrics;
import dev.jmoe.experts.predict.ShadowPredictor;
import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.generate.Sampler;
import dev.jmoe.model.InferenceState;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jmoe predict-eval}: how well each expert predictor foresees the routing 1…H layers ahead, per
 * lookahead distance and target layer, all measured on the same run of the model (teacher-forced over a
 * text, or during greedy generation).
 */
@Command(name = "predict-eval", description = "Measure expert predictors: recall, precision and exact set match per lookahead and layer.")
final class PredictEvalCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @ArgGroup(validate = false, heading = "%nModel:%n") ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--predictor", split = ",", paramLabel = "NAME", description = "predictors to measure side by side, comma-separated"
            + " (default: shadow,gate,history):%n${jmoe.predictors}")
    List<String> predictors = List.of("shadow", "gate", "history");
    @Option(names = "--lookahead", paramLabel = "LAYERS", description = "layers ahead to measure (default: 4, at most twice the layer count: past the"
            + " layer count a shadow speculates two tokens)") Integer lookahead;
    @Option(names = "--shadow", split = ",", paramLabel = "TYPE", description = "shadow precisions, comma-separated (default: q8_0 unless --shadow-model)")
    List<String> shadowTypes;
    @Option(names = "--shadow-model", paramLabel = "FILE", description = "also measure another GGUF file of the same model as a shadow") Path shadowModel;
    @Option(names = "--shadow-margin", split = ",", paramLabel = "MARGIN", description = "shadow adaptive widths, comma-separated: every shadow at each"
            + " (default: 0," + PredictorSettings.DEFAULT_MARGIN + ")") List<Double> shadowMargins;
    @Option(names = "--align-period", paramLabel = "TOKENS[,KV]", description = "shadow re-alignment (default: ${DEFAULT-VALUE})") String alignPeriod = "1,1";
    @Option(names = "--history-decay", paramLabel = "DECAY", description = "history predictor's per-token decay (default: ${DEFAULT-VALUE})")
    double historyDecay = 0.8;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "teacher", description = "teacher (score a text token by token) or greedy (generate) (default: ${DEFAULT-VALUE})")
    String mode;
    @Option(names = {"-f", "--file"}, paramLabel = "TEXT", description = "teacher: the text; greedy: prompts are cut from it")
    Path textFile;
    @Option(names = "--max-tokens", paramLabel = "TOKENS", defaultValue = "1024", description = "teacher: tokens of the text to run (default: ${DEFAULT-VALUE})")
    int maxTokens;
    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "greedy: the prompt") String prompt;
    @Option(names = {"-n", "--n-predict"}, paramLabel = "TOKENS", defaultValue = "64", description = "greedy: tokens to generate per prompt (default: ${DEFAULT-VALUE})")
    int nPredict;
    @Option(names = "--prompts", paramLabel = "COUNT", defaultValue = "8", description = "greedy with -f: prompts cut from the text, evenly spaced (default: ${DEFAULT-VALUE})")
    int prompts;
    @Option(names = "--prompt-tokens", paramLabel = "TOKENS", defaultValue = "32", description = "greedy with -f: tokens per prompt (default: ${DEFAULT-VALUE})")
    int promptTokens;
    @Option(names = "--width", paramLabel = "EXPERTS", description = "experts predicted per layer (default: the model's experts per token; with"
            + " --shadow-margin, shadows may name up to twice that)")
    Integer width;
    @Option(names = "--shadow-guess", paramLabel = "RULE", defaultValue = "sampler",
            description = "how a shadow picks the next token before the main model samples it: sampler (the main run's own rule: the text's "
                    + "next token when teacher-forcing, greedy when generating) or argmax (default: ${DEFAULT-VALUE})")
    String shadowGuess;
    @Option(names = "--shadow-thread", description = "run each shadow on its own thread as in a real run (layers it has not reached fall back to gate"
            + " lookahead), instead of inline with every layer ready") boolean shadowThread;
    @Option(names = "--json", paramLabel = "FILE", description = "write every figure as JSON") Path json;
    @Option(names = "--trace", paramLabel = "FILE", description = "record the main model's routing with the predictor's predictions at every decode"
            + " step (1..--lookahead ahead) as a routing trace, for jmoe replay (needs exactly one predictor configuration)") Path trace;

    @Override
    public Integer call() throws Exception {
        String m = mode.toLowerCase(Locale.ROOT);
        if (!m.equals("teacher") && !m.equals("greedy")) throw new IllegalArgumentException("--mode must be teacher or greedy, got '" + mode + "'");
        String guess = shadowGuess.toLowerCase(Locale.ROOT);
        if (!guess.equals("sampler") && !guess.equals("argmax")) throw new IllegalArgumentException("--shadow-guess must be sampler or argmax, got '" + shadowGuess + "'");
        if (m.equals("teacher") && textFile == null) throw new IllegalArgumentException("--mode teacher needs a text: -f TEXT");
        if (m.equals("greedy") && (prompt == null) == (textFile == null)) throw new IllegalArgumentException("--mode greedy needs either -p PROMPT or -f TEXT");
        if (maxTokens < 2) throw new IllegalArgumentException("--max-tokens must be at least 2, got " + maxTokens);
        if (nPredict < 1 || prompts < 1 || promptTokens < 1) throw new IllegalArgumentException("-n, --prompts and --prompt-tokens must be at least 1");
        String text = null;
        if (textFile != null) text = TextPrompts.readText(textFile, "-f");
        if (trace != null) Runs.checkWritable(trace, "--trace");
        PrintWriter out = spec.commandLine().getOut();
        for (String p : predictors) Predictors.REGISTRY.require(p);
        List<Double> margins = shadowMargins == null || shadowMargins.isEmpty() ? List.of(0.0, PredictorSettings.DEFAULT_MARGIN) : shadowMargins;
        for (double mg : margins) ShadowPredictor.checkMargin(mg);
        List<GgmlType> types = new ArrayList<>();
        if (shadowTypes != null) for (String t : shadowTypes) types.add(PredictorSettings.parseShadowType(t));
        else if (shadowModel == null) types.add(GgmlType.Q8_0);
        Alignment alignment = Alignment.parse(alignPeriod);
        PredictorSettings base = PredictorSettings.DEFAULTS.withAlignment(alignment).withHistoryDecay(historyDecay);
        try (Engine engine = Runs.open(modelOptions, null, null, 0, spec.commandLine().getErr())) {
            var lmModel = engine.model();
            int ctxSize = engine.contextSize(), batch = engine.config().batchSize();
            if (!lmModel.hyperparams().hasExperts()) throw new IllegalArgumentException(engine.info().path() + " has no routed experts to predict");
            int nLayer = lmModel.hyperparams().nLayer();
            int depth = lookahead != null ? Math.min(lookahead, 2 * nLayer) : Math.min(4, nLayer);
            int w = width != null ? width : lmModel.hyperparams().nExpertUsed();
            // teacher forcing: the text, cut into context-sized chunks; greedy: the prompts
            List<int[]> sequences = new ArrayList<>();
            if (m.equals("teacher")) {
                int[] all = engine.tokenizer().encode(text, true, false);
                int[] toks = Arrays.copyOf(all, Math.min(all.length, maxTokens));
                if (toks.length < 2) throw new IllegalArgumentException(textFile + " has fewer than 2 tokens");
                for (int s = 0; s < toks.length; s += ctxSize) sequences.add(Arrays.copyOfRange(toks, s, Math.min(toks.length, s + ctxSize)));
            } else if (prompt != null) {
                sequences.add(engine.tokenizer().encode(prompt, true, true));
            } else {
                int[] all = engine.tokenizer().encode(text, false, false);
                int bos = engine.tokenizer().addBos() ? engine.tokenizer().bos() : -1;
                for (int i = 0; i < prompts; i++) {
                    int at = (int) ((long) Math.max(0, all.length - promptTokens) * i / Math.max(1, prompts));
                    int[] p = Arrays.copyOfRange(all, at, Math.min(all.length, at + promptTokens));
                    if (bos >= 0) {
                        int[] b = new int[p.length + 1];
                        b[0] = bos;
                        System.arraycopy(p, 0, b, 1, p.length);
                        p = b;
                    }
                    sequences.add(p);
                }
                for (int[] p : sequences) {
                    if (p.length + nPredict > ctxSize) throw new IllegalArgumentException("prompt + -n exceed --ctx-size " + ctxSize);
                }
            }
            InferenceState st = lmModel.newState(ctxSize, engine.pool());
            int[][] current = new int[1][];
            NextTokenRule rule = guess.equals("argmax") || m.equals("greedy") ? NextTokenRule.ARGMAX
                    : (pos, logits) -> pos < current[0].length ? current[0][pos] : NextTokenRule.ARGMAX.next(pos, logits);
            List<ExpertPredictor> predictors = new ArrayList<>();
            Predictors.Mode pm = shadowThread ? Predictors.Mode.EVALUATE_THREADED : Predictors.Mode.EVALUATE_INLINE;
            try {
                for (String name : this.predictors) {
                    if (Predictors.REGISTRY.require(name).name().equals("shadow")) {
                        for (GgmlType t : types) {
                            for (double mg : margins) {
                                predictors.add(Predictors.create("shadow", new Predictors.Context(st, engine.shadows(), base.withShadowType(t).withMargin(mg), pm, rule)));
                            }
                        }
                        if (shadowModel != null) {
                            for (double mg : margins) {
                                predictors.add(Predictors.create("shadow", new Predictors.Context(st, engine.shadows(), base.withShadowModel(shadowModel).withMargin(mg), pm, rule)));
                            }
                        }
                    } else {
                        predictors.add(Predictors.create(name, new Predictors.Context(st, engine.shadows(), base, pm, rule)));
                    }
                }
            } catch (RuntimeException | java.io.IOException e) {
                predictors.forEach(ExpertPredictor::close);
                throw e;
            }
            for (ExpertPredictor p : predictors) {
                if (p instanceof ShadowPredictor sp && !sp.awaitWarm(120)) throw new IllegalStateException(p.name() + " did not warm up within 120 s");
            }
            long t0 = System.nanoTime();
            int run = 0;
            int[] widths = new int[predictors.size()];
            for (int i = 0; i < widths.length; i++) {
                widths[i] = width != null ? w : Predictors.width(predictors.get(i), w, lmModel.hyperparams().nExpert());
            }
            if (trace != null && predictors.size() != 1) {
                predictors.forEach(ExpertPredictor::close);
                throw new IllegalArgumentException("--trace records one predictor's predictions; " + predictors.size() + " are configured (give one"
                        + " --predictor, one --shadow and one --shadow-margin)");
            }
            // the recorder goes in before the evaluator, so the evaluator's predictions for a step are there when the step's routing is written
            String recorded = trace == null ? null : predictors.get(0).name() + ", " + m + (m.equals("teacher") ? " (" + textFile + ")" : "")
                    + ", next token by " + guess + ", " + (shadowThread ? "threaded" : "inline") + ", width " + widths[0];
            try (RoutingTraceFile.Recorder recorder = trace == null ? null : new RoutingTraceFile.Recorder(st, trace, engine.info().path().toString(), recorded, depth);
                 PredictionEvaluator ev = new PredictionEvaluator(st, predictors, depth, widths);
                 Status status = new Status("predict-eval", modelOptions.quiet)) {
                if (recorder != null) ev.listen((i, pos, layer, d, experts, count) -> recorder.predicted(pos, layer, d, experts, count));
                int total = 0;
                for (int[] s : sequences) total += m.equals("teacher") ? s.length : nPredict;
                for (int[] s : sequences) {
                    current[0] = s;
                    st.rewind(0);
                    if (m.equals("teacher")) {
                        for (int i = 0; i < s.length; i++) {
                            st.next(s[i]);
                            status.update(++run, total, "tokens");
                        }
                    } else {
                        float[] logits = st.eval(s, 0, s.length, batch);
                        for (int i = 0; i < nPredict && st.position() < ctxSize; i++) {
                            logits = st.next(Sampler.argmax(logits));
                            status.update(++run, total, "tokens");
                        }
                    }
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                report(out, engine, m, guess, depth, w, sequences, run, seconds, ev.metrics(), predictors, alignment, margins);
            } finally {
                predictors.forEach(ExpertPredictor::close);
            }
        }
        return 0;
    }

    private void report(PrintWriter out, Engine engine, String m, String guess, int depth, int w, List<int[]> sequences, int tokens, double seconds,
                        List<PredictionMetrics> metrics, List<ExpertPredictor> predictors, Alignment alignment, List<Double> margins)
            throws java.io.IOException {
        var hp = engine.model().hyperparams();
        out.printf(Locale.ROOT, "predict-eval: %s, %d layers, %d experts top-%d; mode %s over %d tokens (%d sequence%s); lookahead 1..%d, width %d; "
                        + "shadow alignment %s, shadow guess %s, shadow %s, shadow margin %s (shadows may add runners-up beyond the width); %.1f s%n",
                engine.info().path().getFileName(), hp.nLayer(), hp.nExpert(), hp.nExpertUsed(), m, tokens, sequences.size(), sequences.size() == 1 ? "" : "s",
                depth, w, alignment, guess, shadowThread ? "threaded (falls back to gate)" : "inline", margins, seconds);
        for (PredictionMetrics pm : metrics) out.print(pm.table());
        for (ExpertPredictor p : predictors) {
            if (p instanceof ShadowPredictor sp) {
                ShadowPredictor.Stats s = sp.stats();
                out.printf(Locale.ROOT, "%s: ran %d positions, speculated %d next tokens (%d right), redid %d, took %d KV positions from the main model, "
                        + "aligned %d KV positions; %d predictions from the shadow, %d from its fallback%n", p.name(), s.positionsRun(), s.guesses(),
                        s.guessHits(), s.redone(), s.adopted(), s.kvAlignedPositions(), s.served(), s.fallbacks());
                if (sp.failure() != null) out.printf("%s failed, its predictions came from the fallback: %s%n", p.name(), sp.failure());
            }
        }
        if (json == null) return;
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("model", engine.info().path().toString());
        root.put("mode", m);
        root.put("text", textFile == null ? null : textFile.toString());
        root.put("tokens", tokens);
        root.put("sequences", sequences.size());
        root.put("n_layer", hp.nLayer());
        root.put("n_expert", hp.nExpert());
        root.put("n_expert_used", hp.nExpertUsed());
        root.put("lookahead", depth);
        root.put("width", w);
        root.put("align_period", alignment.toString());
        root.put("shadow_guess", guess);
        root.put("shadow_mode", shadowThread ? "thread" : "inline");
        root.put("shadow_margins", margins);
        root.put("seconds", seconds);
        List<Object> ps = new ArrayList<>();
        for (int i = 0; i < metrics.size(); i++) {
            Map<String, Object> pm = metrics.get(i).toMap();
            if (predictors.get(i) instanceof ShadowPredictor sp) pm.put("shadow", sp.stats());
            ps.add(pm);
        }
        root.put("predictors", ps);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), root);
    }
}
