package dev.jmoe.engine;

import dev.jmoe.experts.predict.ShadowModels;
import dev.jmoe.generate.ChatMessage;
import dev.jmoe.generate.ChatTemplate;
import dev.jmoe.generate.Tokenizer;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.KernelWarmup;
import dev.jmoe.model.Model;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Parallel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An opened model, ready to run: the file's mapping, the weights, the tokenizer, the compute threads and the
 * shadow models of its predictors, all owned here and closed together. Sessions ({@link #newSession}) hold one
 * conversation's state each; their expert runtimes come from {@link EngineConfig#experts()} unless a session asks
 * for its own.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(EngineConfig.of(Path.of("model.gguf")));
 *      Session session = engine.newSession()) {
 *     GenerationResult r = session.generate("The history of the town", GenerationRequest.greedy(32),
 *             (token, text) -> System.out.print(text));
 * }
 * }</pre>
 *
 * Every setting is this engine's own: two engines in one process (say, one rounding activations to 8 bits and one
 * exact) do not affect each other. An engine may serve several sessions at once, each used by one thread at a time;
 * they share the compute threads, so they take turns.
 */
public final class Engine implements AutoCloseable {
    /** At most this long compiling kernels before the first prompt (a slow or busy machine stops there). */
    private static final long WARMUP_BUDGET_NANOS = 4_000_000_000L;
    /** The context a session gets when none is configured: the model's, but not more than this. */
    public static final int DEFAULT_MAX_CONTEXT = 4096;

    private final EngineConfig config;
    private final ExpertRuntimeConfig experts;
    private final EngineListener listener;
    private final GgufFile file;
    private final Model model;
    private final Tokenizer tokenizer;
    private final Parallel pool;
    private final ShadowModels shadows;
    private final int contextSize;
    private final ModelInfo info;
    private final List<Session> sessions = new ArrayList<>();
    private final List<BatchScheduler> schedulers = new ArrayList<>();
    private ChatTemplate chatTemplate;
    private boolean closed;

    private Engine(EngineConfig config, ExpertRuntimeConfig experts, EngineListener listener, GgufFile file, Model model, Tokenizer tokenizer,
                   Parallel pool, int contextSize) {
        this.config = config;
        this.experts = experts;
        this.listener = listener;
        this.file = file;
        this.model = model;
        this.tokenizer = tokenizer;
        this.pool = pool;
        this.contextSize = contextSize;
        this.shadows = new ShadowModels(model, pool);
        var hp = model.hyperparams();
        long fileBytes;
        try {
            fileBytes = Files.size(config.model());
        } catch (IOException e) {
            fileBytes = -1;
        }
        this.info = new ModelInfo(config.model(), model.spec().name(), hp.nLayer(), hp.nEmbd(), hp.hasExperts() ? hp.nExpert() : 0,
                hp.hasExperts() ? hp.nExpertUsed() : 0, hp.nVocab(), hp.contextLength(), contextSize, model.expertBytes(), fileBytes,
                tokenizer.chatTemplate().isPresent());
    }

    /** Opens the model {@code config} names, reporting nothing. */
    public static Engine open(EngineConfig config) throws IOException {
        return open(config, EngineListener.SILENT);
    }

    /**
     * Opens the model {@code config} names: maps the file, loads and (unless configured otherwise) packs the
     * weights, reads the tokenizer, starts the compute threads and warms the kernels, telling {@code listener} how
     * far it got. Fails with one clear message naming what is wrong (the file, a setting, the model).
     */
    public static Engine open(EngineConfig config, EngineListener listener) throws IOException {
        if (listener == null) listener = EngineListener.SILENT;
        Path path = config.model();
        if (!Files.exists(path)) throw new IllegalArgumentException("model file not found: " + path);
        if (Files.isDirectory(path)) throw new IllegalArgumentException("model path is a directory, not a GGUF file: " + path);
        if (!Files.isRegularFile(path)) throw new IllegalArgumentException("model path is not a regular file (a pipe or a device?): " + path);
        for (String w : config.experts().warnings()) listener.warning(w);
        GgufFile file = null;
        Parallel pool = null;
        String loading = "loading " + path.getFileName();
        try {
            file = GgufFile.open(path);
            // without a lease on the file (another user's file, a network filesystem) a truncation is only noticed by polling
            if (file.protectionNote() != null) listener.notice(file.protectionNote());
            listener.progress(loading, 1, 3, "mapped");
            // The memory plan decides what the model may hold: resident, or (a budget given, auto, or a model that does not
            // fit) experts offloaded with non-expert weights copied out of the mapping; packed copies only where there is room.
            ExpertRuntimeConfig asked = config.experts();
            // bound to the model's rounding: the weights packed now are laid out for its products (Packing.pack)
            GgufFile opened = file;
            var planned = Kernels.withActivationQuantization(config.int8Activations(), () -> dev.jmoe.memory.ModelMemory.load(opened,
                    asked.expertMemory(), config.contextSize() > 0 ? config.contextSize() : null, !config.packWeights(),
                    config.autoExpertMemory() || asked.offloads(), (spec, expertBytes) -> dev.jmoe.experts.cache.OffloadConfig.parseBudget(spec, expertBytes)));
            Model model = planned.model().withActivationQuantization(config.int8Activations());
            listener.progress(loading, 2, 3, "weights");
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            listener.progress(loading, 3, 3, "tokenizer");
            listener.stepDone(loading);
            int trained = model.hyperparams().contextLength();
            int ctx = planned.ctx();
            if (ctx < 1) throw new IllegalArgumentException("the model's context length is " + trained + "; give --ctx-size");
            String ctxNote = dev.jmoe.generate.RunChecks.contextSize(ctx, model.hyperparams()); // refuses a KV cache the heap cannot hold
            if (ctxNote != null) listener.warning(ctxNote);
            ExpertRuntimeConfig experts = asked;
            boolean autoBudget = asked.expertMemory() == null ? !asked.justInTime() && config.autoExpertMemory()
                    : dev.jmoe.memory.MemoryPlanner.isAuto(asked.expertMemory());
            if (autoBudget && planned.plan() != null && planned.plan().offloads()) {
                experts = asked.toBuilder().expertMemory(Long.toString(planned.plan().expertBudget())).build();
            }
            // what the plan chose and why, when it chose (a budget the user gave speaks for itself unless the plan has a remark on it)
            if (planned.status() != null && (autoBudget || !planned.plan().notes().isEmpty())) listener.notice(planned.status());
            if (experts.offloads() && !model.hyperparams().hasExperts()) {
                throw new IllegalArgumentException("--expert-memory and --policy need a mixture-of-experts model; this " + model.spec().name()
                        + " model has no routed experts");
            }
            pool = new Parallel(config.threadCount());
            if (config.warmup()) {
                EngineListener l = listener;
                KernelWarmup.run(model, pool, WARMUP_BUDGET_NANOS, (done, types) -> l.progress("warming kernels", done, types, "weight types"));
                listener.stepDone("warming kernels");
            }
            return new Engine(config, experts, listener, file, model, tokenizer, pool, ctx);
        } catch (IOException | RuntimeException | Error e) {
            if (pool != null) pool.close();
            if (file != null) file.close();
            throw e;
        }
    }

    public EngineConfig config() { return config; }

    /**
     * The expert runtime sessions get by default: the configured one, with the budget the memory plan chose when the
     * configuration left it to the plan ({@code auto}, or no budget for a model that does not fit).
     */
    public ExpertRuntimeConfig experts() { return experts; }
    public ModelInfo info() { return info; }

    /** Tokens of KV cache each session has. */
    public int contextSize() { return contextSize; }

    /** A session with the engine's expert runtime. */
    public Session newSession() throws IOException {
        return newSession(SessionOptions.DEFAULTS);
    }

    /** A session with its own options (another expert runtime, a routing trace). */
    public synchronized Session newSession(SessionOptions options) throws IOException {
        checkOpen();
        ExpertRuntimeConfig chosen = options.experts() != null ? options.experts() : experts;
        if (options.experts() != null) for (String w : chosen.warnings()) listener.warning(w);
        Session s = new Session(this, chosen, options.routingTrace());
        sessions.add(s);
        return s;
    }

    synchronized void closed(Session s) {
        sessions.remove(s);
    }

    /**
     * A scheduler that decodes many generations of this engine together ({@link BatchScheduler}), with the engine's
     * expert runtime shared by all of them. Closed with the engine.
     */
    public synchronized BatchScheduler newScheduler(BatchConfig batching) throws IOException {
        checkOpen();
        BatchScheduler s = new BatchScheduler(this, batching);
        schedulers.add(s);
        return s;
    }

    synchronized void closed(BatchScheduler s) {
        schedulers.remove(s);
    }

    /** Encodes text as the model would see it: BOS added as the model says, special-token text kept as text. */
    public int[] tokenize(String text) {
        return tokenizer.encode(text, true, false);
    }

    /**
     * Encodes text.
     *
     * @param addSpecial   add BOS/EOS as the model's add_bos/add_eos say
     * @param parseSpecial turn special-token text (e.g. "&lt;|im_start|&gt;") into its id
     */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        return tokenizer.encode(text, addSpecial, parseSpecial);
    }

    /** Decodes token ids into text (control tokens print nothing). */
    public String detokenize(int... tokens) {
        return tokenizer.decode(tokens);
    }

    /** The model's chat template (ChatML when the file has none). */
    public synchronized ChatTemplate chatTemplate() {
        if (chatTemplate == null) chatTemplate = ChatTemplate.forTokenizer(tokenizer);
        return chatTemplate;
    }

    /** A conversation rendered with the chat template, ready for the model's reply when {@code addGenerationPrompt}. */
    public String renderChat(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return chatTemplate().render(messages, addGenerationPrompt);
    }

    // ---------------------------------------------------------------- for measuring tools and servers

    /** The loaded model (advanced: measuring tools drive it directly). */
    public Model model() { return model; }

    public Tokenizer tokenizer() { return tokenizer; }

    /** The compute threads every session of this engine runs on. */
    public Parallel pool() { return pool; }

    /** Shadow models made for this engine's predictors (each made once, closed with the engine). */
    public ShadowModels shadows() { return shadows; }

    EngineListener listener() { return listener; }

    private void checkOpen() {
        if (closed) throw new IllegalStateException("the engine is closed");
    }

    /**
     * Closes every scheduler and open session (their expert runtimes and predictors), the shadows, the threads and the file,
     * in that order.
     */
    @Override
    public void close() {
        List<Session> open;
        List<BatchScheduler> running;
        synchronized (this) {
            if (closed) return;
            closed = true;
            open = new ArrayList<>(sessions);
            running = new ArrayList<>(schedulers);
        }
        RuntimeException first = null;
        for (BatchScheduler s : running) {
            try {
                s.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        for (Session s : open) {
            try {
                s.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        shadows.close();
        pool.close();
        file.close();
        if (first != null) throw first;
    }
}
