package dev.jmoe.generate;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import java.time.Clock;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;
import jinjava.javax.el.CompositeELResolver;

/**
 * Renders a conversation with a model's Jinja chat template ({@code tokenizer.chat_template}), the way
 * Hugging Face transformers and llama.cpp render them: trim_blocks and lstrip_blocks on, the template's own
 * trailing newline dropped, variables {@code messages}, {@code add_generation_prompt}, {@code bos_token},
 * {@code eos_token}, and the helpers templates rely on: {@code raise_exception(msg)}, {@code strftime_now(fmt)},
 * Python string methods ({@code .startswith}, {@code .split}, {@code .strip}…), Python-style {@code tojson},
 * {@code namespace()}, the reversing slice {@code [::-1]} and filtered loops ({@code for x in xs if c}).
 * Templates are rendered with Jinjava.
 */
public final class ChatTemplate {

    /** What llama.cpp falls back to when a model has no template. */
    public static final String CHATML =
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
                    + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static final String CLOCK_VARIABLE = "__jmoe_clock";
    /** Jinjava swallows exceptions thrown by functions into a generic error; the raised message is kept here. */
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    /**
     * Template nodes one render may evaluate: far above any real chat prompt (tens of nodes per message), while loops
     * nested over the messages in a hostile template (found by fuzzing: one took 15-25 s, and the time grows as
     * messages^depth) stop with an error instead. Counted, not timed, so the limit is the same on every machine.
     */
    static final long MAX_RENDER_NODES = 1_000_000;
    /**
     * Wall time one render may take (real chat templates take milliseconds), for what a node count cannot see: a node
     * whose expression fails costs an exception and an error record each time (the fuzzed template above spent 40 µs
     * per node that way).
     */
    static final long MAX_RENDER_NANOS = 1_000_000_000L;
    /** Per thread: nodes rendered, and the deadline of the render in progress. */
    private static final ThreadLocal<long[]> NODES = ThreadLocal.withInitial(() -> new long[2]);

    /** Thrown into Jinjava when the node budget is spent; no stack trace (it may be thrown once per node left). */
    private static final class RenderBudgetExceeded extends RuntimeException {
        RenderBudgetExceeded() { super("the chat template's render budget is spent", null, false, false); }
    }

    private final String source;
    private final String prepared;
    private final String bosToken;
    private final String eosToken;
    private final boolean fallback;
    private final Clock clock;

    /** Building a Jinjava engine is costly and it is safe to share; templates differ only in their source. */
    private static final class Engine {
        static final Jinjava JINJAVA = newJinjava();
    }

    private ChatTemplate(String source, String bosToken, String eosToken, boolean fallback, Clock clock) {
        this.source = Objects.requireNonNull(source, "source");
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        this.fallback = fallback;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.prepared = prepare(source);
    }

    /** A template from its Jinja source; {@code bosToken}/{@code eosToken} are the token texts it may print. */
    public static ChatTemplate of(String source, String bosToken, String eosToken) {
        return new ChatTemplate(source, bosToken, eosToken, false, Clock.systemDefaultZone());
    }

    /** The tokenizer's template, or {@link #CHATML} when the model has none. */
    public static ChatTemplate forTokenizer(Tokenizer tokenizer) {
        String bos = tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "";
        String eos = tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : "";
        return tokenizer.chatTemplate()
                .filter(s -> !s.isBlank())
                .map(s -> new ChatTemplate(s, bos, eos, false, Clock.systemDefaultZone()))
                .orElseGet(() -> new ChatTemplate(CHATML, bos, eos, true, Clock.systemDefaultZone()));
    }

    /** The same template reading the date for {@code strftime_now} from {@code clock}. */
    public ChatTemplate withClock(Clock clock) {
        return new ChatTemplate(source, bosToken, eosToken, fallback, clock);
    }

    public String source() {
        return source;
    }

    /** Whether this is the ChatML fallback because the model has no template. */
    public boolean isFallback() {
        return fallback;
    }

    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * @param extraVariables further template variables, e.g. {@code tools}, {@code enable_thinking}
     * @throws ChatTemplateException on a template error or when the template raises an exception
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
        List<Map<String, Object>> maps = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            maps.add(map);
        }
        return renderMessages(maps, addGenerationPrompt, extraVariables);
    }

    /** Like {@link #render} for messages given as maps (for fields beyond role and content, e.g. tool_calls). */
    public String renderMessages(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt,
                                 Map<String, ?> extraVariables) {
        Map<String, Object> ctx = new HashMap<>(extraVariables);
        List<Map<String, Object>> copy = new ArrayList<>();
        for (Map<String, ?> m : messages) {
            copy.add(new LinkedHashMap<>(m));
        }
        ctx.put("messages", copy);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        ctx.put(CLOCK_VARIABLE, clock);
        RenderResult result;
        RAISED.remove();
        long[] nodes = NODES.get();
        nodes[0] = 0;
        nodes[1] = System.nanoTime() + MAX_RENDER_NANOS;
        try {
            result = Engine.JINJAVA.renderForResult(prepared, ctx);
        } catch (RuntimeException e) {
            if (spent(nodes)) throw budgetSpent();
            throw new ChatTemplateException("chat template failed: " + rootMessage(e), e);
        } finally {
            String raised = RAISED.get();
            RAISED.remove();
            if (raised != null) {
                throw new ChatTemplateException("chat template rejected the conversation: " + raised);
            }
        }
        if (spent(nodes)) throw budgetSpent();
        List<TemplateError> fatal = result.getErrors().stream()
                // Jinjava reports some syntax errors (a stray end tag) as warnings; a chat prompt must not be guessed.
                .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL
                        || e.getReason() == TemplateError.ErrorReason.SYNTAX_ERROR)
                .toList();
        if (!fatal.isEmpty()) {
            throw new ChatTemplateException("chat template failed: " + fatal.stream()
                    .map(ChatTemplate::describe)
                    .collect(Collectors.joining("; ")));
        }
        return result.getOutput();
    }

    /**
     * Renders and tokenizes a conversation, parsing special tokens. A BOS the template prints itself is
     * dropped when the tokenizer adds one anyway, so the prompt does not start with the two BOS tokens that
     * llama.cpp warns about.
     */
    public int[] encode(Tokenizer tokenizer, List<ChatMessage> messages, boolean addGenerationPrompt) {
        String text = render(messages, addGenerationPrompt);
        if (tokenizer.addBos() && !bosToken.isEmpty() && text.startsWith(bosToken)) {
            text = text.substring(bosToken.length());
        }
        return tokenizer.encode(text, true, true);
    }

    private static ChatTemplateException budgetSpent() {
        return new ChatTemplateException("chat template stopped: rendering this conversation took more than " + MAX_RENDER_NODES
                + " template nodes or " + MAX_RENDER_NANOS / 1_000_000_000L + " s (loops nested over the messages?); a chat prompt needs far less");
    }

    private static boolean spent(long[] nodes) {
        return nodes[0] > MAX_RENDER_NODES || nodes[0] < 0;
    }

    /** Counts every node Jinjava is about to render; past the budget each one fails at once (marked by a negative count). */
    private static void countNode(com.hubspot.jinjava.tree.Node node, JinjavaInterpreter interpreter) {
        long[] n = NODES.get();
        if (n[0] < 0) throw new RenderBudgetExceeded();
        if (++n[0] > MAX_RENDER_NODES || ((n[0] & 63) == 0 && System.nanoTime() - n[1] > 0)) {
            n[0] = -1;
            throw new RenderBudgetExceeded();
        }
    }

    private static String describe(TemplateError e) {
        return e.getMessage() + (e.getLineno() > 0 ? " (line " + e.getLineno() + ")" : "");
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage();
    }

    /**
     * Source-level adjustments for what Jinjava handles differently from Jinja2: a single trailing newline is
     * not output (Jinja2's keep_trailing_newline=False), whitespace control is applied up front (see
     * {@link JinjaWhitespace}), and the Python slice {@code [::-1]} becomes an equivalent filter.
     */
    static String prepare(String source) {
        String s = source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
        s = JinjaWhitespace.apply(s);
        s = s.replaceAll("\\[\\s*::\\s*-1\\s*\\]", "|" + PyReverse.NAME);
        s = rewriteFilteredLoops(s);
        return parenthesizeNamespaceArguments(s);
    }

    private static final java.util.regex.Pattern FOR_TAG =
            java.util.regex.Pattern.compile("\\{%\\s*for\\s+(.+?)\\s+in\\s+(.+?)\\s*%\\}", java.util.regex.Pattern.DOTALL);

    /**
     * Jinja2's filtered loop {@code {% for x in xs if cond %}} (Jinjava silently iterates nothing) becomes a
     * loop over a list filtered beforehand, so that loop.index, loop.last etc. count only the kept items, as
     * in Jinja2.
     */
    static String rewriteFilteredLoops(String s) {
        java.util.regex.Matcher m = FOR_TAG.matcher(s);
        StringBuilder out = new StringBuilder(s.length());
        int last = 0, counter = 0;
        while (m.find()) {
            String target = m.group(1), rest = m.group(2);
            int at = topLevelKeyword(rest, "if");
            if (at < 0) {
                continue;
            }
            String iterable = rest.substring(0, at).trim(), condition = rest.substring(at + 2).trim();
            String list = "__jmoe_filtered_" + counter++;
            String item = target.contains(",") ? "[" + target + "]" : target;
            out.append(s, last, m.start())
                    .append("{% set ").append(list).append(" = [] %}")
                    .append("{% for ").append(target).append(" in ").append(iterable).append(" %}")
                    .append("{% if ").append(condition).append(" %}{% do ").append(list).append(".append(")
                    .append(item).append(") %}{% endif %}{% endfor %}")
                    .append("{% for ").append(target).append(" in ").append(list).append(" %}");
            last = m.end();
        }
        return out.append(s, last, s.length()).toString();
    }

    /** Position of {@code word} as a separate word outside brackets and string literals, or -1. */
    private static int topLevelKeyword(String s, String word) {
        int depth = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int end = s.indexOf(c, i + 1);
                while (end > 0 && s.charAt(end - 1) == '\\') {
                    end = s.indexOf(c, end + 1);
                }
                if (end < 0) {
                    return -1;
                }
                i = end;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (depth == 0 && s.startsWith(word, i)
                    && (i == 0 || !Character.isJavaIdentifierPart(s.charAt(i - 1)))
                    && (i + word.length() == s.length() || !Character.isJavaIdentifierPart(s.charAt(i + word.length())))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Jinjava binds {@code name=value} tighter than operators, so {@code namespace(n=messages|length - 1)}
     * (Qwen3's template) would subtract from the parameter object. Wrapping each keyword value in parentheses
     * restores Jinja2's reading.
     */
    static String parenthesizeNamespaceArguments(String s) {
        StringBuilder out = new StringBuilder(s.length() + 16);
        int from = 0;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\bnamespace\\s*\\(").matcher(s);
        while (m.find(from)) {
            int open = m.end() - 1;
            int close = matchingParen(s, open);
            if (close < 0) {
                break;
            }
            out.append(s, from, open + 1);
            List<String> args = splitTopLevel(s.substring(open + 1, close));
            for (int i = 0; i < args.size(); i++) {
                String arg = args.get(i);
                java.util.regex.Matcher kw = java.util.regex.Pattern.compile("^(\\s*[A-Za-z_]\\w*\\s*)=(?!=)(.*)$",
                        java.util.regex.Pattern.DOTALL).matcher(arg);
                out.append(i > 0 ? "," : "").append(kw.matches() ? kw.group(1) + "=(" + kw.group(2) + ")" : arg);
            }
            out.append(')');
            from = close + 1;
        }
        return out.append(s, from, s.length()).toString();
    }

    /** Index of the parenthesis closing the one at {@code open}, skipping string literals; -1 if none. */
    private static int matchingParen(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int end = s.indexOf(c, i + 1);
                while (end > 0 && s.charAt(end - 1) == '\\') {
                    end = s.indexOf(c, end + 1);
                }
                if (end < 0) {
                    return -1;
                }
                i = end;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                if (--depth == 0) {
                    return c == ')' ? i : -1;
                }
            }
        }
        return -1;
    }

    /** Splits an argument list at commas outside brackets and string literals. */
    private static List<String> splitTopLevel(String s) {
        List<String> parts = new ArrayList<>();
        int depth = 0, start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int end = s.indexOf(c, i + 1);
                while (end > 0 && s.charAt(end - 1) == '\\') {
                    end = s.indexOf(c, end + 1);
                }
                i = end < 0 ? s.length() : end;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                parts.add(s.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(s.substring(start));
        return parts;
    }

    /** Largest rendered prompt (characters): 16 Mi, hundreds of times any context window. */
    static final long MAX_OUTPUT_CHARS = 16L << 20;

    private static Jinjava newJinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PyMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
        Jinjava j = new Jinjava(JinjavaConfig.newBuilder()
                // Jinja2's trim_blocks/lstrip_blocks are already applied to the source by prepare().
                .withTrimBlocks(false)
                .withLstripBlocks(false)
                .withElResolver(resolver)
                // Templates come from model files and messages from users: every size Jinjava would let grow without
                // bound is capped far above any real chat prompt, so a hostile template fails with an error instead of
                // exhausting the heap (Jinjava's own defaults leave output, strings, lists and maps unlimited).
                // Jinjava's default evaluates "{{ }}" and "{% %}" found inside variable values: a user's message would be
                // run as template code (seen by fuzzing: three nested loops in a message took minutes). Jinja2 never does.
                .withNestedInterpretationEnabled(false)
                .withMaxOutputSize(MAX_OUTPUT_CHARS)
                .withMaxStringLength(MAX_OUTPUT_CHARS)
                .withMaxListSize(1_000_000)
                .withMaxMapSize(1_000_000)
                .withMaxMacroRecursionDepth(64)
                .withNodePreProcessor(ChatTemplate::countNode)
                .build());
        try {
            j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    ChatTemplate.class.getDeclaredMethod("raiseException", Object.class)));
            j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                    ChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
        j.getGlobalContext().registerFilter(new ToJson());
        j.getGlobalContext().registerFilter(new PyReverse());
        return j;
    }

    /** The {@code raise_exception(message)} function of HF templates: rendering fails with that message. */
    public static Object raiseException(Object message) {
        String m = String.valueOf(message);
        if (RAISED.get() == null) {
            RAISED.set(m);
        }
        throw new ChatTemplateException(m);
    }

    /** The {@code strftime_now(format)} function of HF templates (Llama 3.x print today's date with it). */
    public static String strftimeNow(String format) {
        JinjavaInterpreter interp = JinjavaInterpreter.getCurrent();
        Object c = interp == null ? null : interp.getContext().get(CLOCK_VARIABLE);
        Clock clock = c instanceof Clock cl ? cl : Clock.systemDefaultZone();
        return strftime(ZonedDateTime.now(clock), format);
    }

    /** Python strftime for the common conversions; unknown ones are printed as written. */
    static String strftime(ZonedDateTime t, String format) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                sb.append(c);
                continue;
            }
            char k = format.charAt(++i);
            boolean noPad = k == '-' && i + 1 < format.length();
            if (noPad) {
                k = format.charAt(++i);
            }
            String pad2 = noPad ? "%d" : "%02d";
            switch (k) {
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> sb.append(String.format(pad2, t.getMonthValue()));
                case 'd' -> sb.append(String.format(pad2, t.getDayOfMonth()));
                case 'e' -> sb.append(String.format("%2d", t.getDayOfMonth()));
                case 'H' -> sb.append(String.format(pad2, t.getHour()));
                case 'I' -> sb.append(String.format(pad2, (t.getHour() + 11) % 12 + 1));
                case 'M' -> sb.append(String.format(pad2, t.getMinute()));
                case 'S' -> sb.append(String.format(pad2, t.getSecond()));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> sb.append(String.format(noPad ? "%d" : "%03d", t.getDayOfYear()));
                case 'b', 'h' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(noPad ? "-" : "").append(k);
            }
        }
        return sb.toString();
    }

    /** The {@code [::-1]} slice: a reversed string for strings, a reversed list otherwise. */
    private static final class PyReverse implements com.hubspot.jinjava.lib.filter.Filter {
        static final String NAME = "jmoe_py_reverse";

        @Override
        public String getName() {
            return NAME;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var instanceof CharSequence cs) {
                return new StringBuilder(cs).reverse().toString();
            }
            List<Object> items = new ArrayList<>();
            if (var instanceof Iterable<?> it) {
                it.forEach(items::add);
            } else if (var instanceof Map<?, ?> m) {
                items.addAll(m.keySet());
            } else if (var != null) {
                throw new IllegalArgumentException("cannot reverse " + var.getClass().getSimpleName());
            }
            java.util.Collections.reverse(items);
            return items;
        }
    }

    /** Python json.dumps semantics for {@code tojson}, with its {@code indent} and {@code sort_keys} options. */
    private static final class ToJson implements AdvancedFilter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
            boolean sort = Boolean.TRUE.equals(kwargs.get("sort_keys"));
            boolean ascii = Boolean.TRUE.equals(kwargs.get("ensure_ascii"));
            Integer ind = indent == null ? null : indent instanceof Number n ? n.intValue() : Integer.valueOf(indent.toString());
            return PyJson.dumps(var, ind, sort, ascii);
        }
    }
}
