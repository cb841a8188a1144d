package dev.jmoe.generate;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into words before byte-level BPE runs on each word, using the regexes llama.cpp associates
 * with each {@code tokenizer.ggml.pre} name. Several regexes are applied in sequence, each splitting the
 * pieces of the previous one; text a regex does not match stays a piece of its own (llama.cpp keeps the
 * gaps between matches too).
 *
 * <p>llama.cpp evaluates these regexes either with hand-written matchers or with std::regex over text whose
 * non-ASCII characters are collapsed to one representative per Unicode category; both amount to the plain
 * regex semantics with Unicode categories, which java.util.regex gives with UNICODE_CHARACTER_CLASS (so that
 * {@code \s} means Unicode White_Space, as llama.cpp's whitespace table does).
 */
final class PreTokenizer {

    // 's|'t|… contractions, letters / numbers / other symbols each optionally led by one space, whitespace.
    private static final String GPT2 =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    private static final String LLAMA3 =
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String QWEN2 =
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String TEKKEN =
            "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
                    + "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
                    + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String BLOOM = " ?[^(\\s|.,!?…。，、।۔،)]+";
    private static final String CJK = "[一-龥ࠀ-一가-퟿]+";
    // Cased letters of many scripts, as listed by DeepSeek's tokenizer; written as escapes because several of
    // these code points (U+1FBE, U+2126, U+212A…) silently turn into others under Unicode normalization.
    private static final String DEEPSEEK_LLM_LETTERS = "\\s?[A-Za-z"
            + "\\x{00B5}\\x{00C0}-\\x{00D6}\\x{00D8}-\\x{00F6}\\x{00F8}-\\x{01BA}\\x{01BC}-\\x{01BF}"
            + "\\x{01C4}-\\x{0293}\\x{0295}-\\x{02AF}\\x{0370}-\\x{0373}\\x{0376}-\\x{0377}"
            + "\\x{037B}-\\x{037D}\\x{037F}\\x{0386}\\x{0388}-\\x{038A}\\x{038C}\\x{038E}-\\x{03A1}"
            + "\\x{03A3}-\\x{03F5}\\x{03F7}-\\x{0481}\\x{048A}-\\x{052F}\\x{0531}-\\x{0556}"
            + "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
            + "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
            + "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}"
            + "\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"
            + "\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
            + "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}"
            + "\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
            + "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
            + "\\x{214E}\\x{2183}-\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
            + "\\x{2CF2}-\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
            + "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
            + "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
            + "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
            + "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
            + "]+";

    /** How one family of {@code tokenizer.ggml.pre} names tokenizes. */
    private record Spec(List<String> regexes, boolean ignoreMerges, boolean addBos) {
        static Spec of(String... regexes) {
            return new Spec(List.of(regexes), false, false);
        }

        Spec withIgnoreMergesAndBos() {
            return new Spec(regexes, true, true);
        }

        Spec withBos() {
            return new Spec(regexes, ignoreMerges, true);
        }
    }

    private static final Spec DEFAULT_SPEC = Spec.of("[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]");
    private static final Spec GPT2_SPEC = Spec.of(GPT2);
    private static final Spec LLAMA3_SPEC = Spec.of(LLAMA3);
    private static final Spec QWEN2_SPEC = Spec.of(QWEN2);
    private static final Spec STARCODER_SPEC = Spec.of("\\p{N}", GPT2);

    // Names and the behaviour attached to them follow llama.cpp's llama-vocab.cpp.
    private static final Map<String, Spec> SPECS = Map.ofEntries(
            Map.entry("default", DEFAULT_SPEC),
            Map.entry("llama3", LLAMA3_SPEC.withIgnoreMergesAndBos()),
            Map.entry("llama-v3", LLAMA3_SPEC.withIgnoreMergesAndBos()),
            Map.entry("llama-bpe", LLAMA3_SPEC.withIgnoreMergesAndBos()),
            Map.entry("falcon3", LLAMA3_SPEC.withIgnoreMergesAndBos()),
            Map.entry("dbrx", LLAMA3_SPEC),
            Map.entry("smaug-bpe", LLAMA3_SPEC),
            Map.entry("chatglm-bpe", LLAMA3_SPEC),
            Map.entry("gpt-2", GPT2_SPEC),
            Map.entry("phi-2", GPT2_SPEC),
            Map.entry("roberta-bpe", GPT2_SPEC),
            Map.entry("gigachat", GPT2_SPEC),
            Map.entry("jina-es", GPT2_SPEC),
            Map.entry("jina-de", GPT2_SPEC),
            Map.entry("jina-v1-en", GPT2_SPEC),
            Map.entry("jina-v2-es", GPT2_SPEC),
            Map.entry("jina-v2-de", GPT2_SPEC),
            Map.entry("jina-v2-code", GPT2_SPEC),
            Map.entry("mpt", GPT2_SPEC),
            Map.entry("olmo", GPT2_SPEC),
            Map.entry("jais", GPT2_SPEC),
            Map.entry("qwen2", QWEN2_SPEC),
            Map.entry("stablelm2", QWEN2_SPEC),
            Map.entry("megrez", QWEN2_SPEC),
            Map.entry("starcoder", STARCODER_SPEC),
            Map.entry("refact", STARCODER_SPEC),
            Map.entry("command-r", STARCODER_SPEC),
            Map.entry("smollm", STARCODER_SPEC),
            Map.entry("codeshell", STARCODER_SPEC),
            Map.entry("exaone", STARCODER_SPEC),
            Map.entry("minerva-7b", STARCODER_SPEC),
            Map.entry("falcon", Spec.of("[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]")),
            Map.entry("poro-chat", Spec.of(BLOOM)),
            Map.entry("bloom", Spec.of(BLOOM)),
            Map.entry("gpt3-finnish", Spec.of(BLOOM)),
            Map.entry("viking", Spec.of(BLOOM, "\\p{N}")),
            Map.entry("tekken", Spec.of(TEKKEN).withIgnoreMergesAndBos()),
            Map.entry("deepseek-llm", Spec.of("[\\r\\n]", DEEPSEEK_LLM_LETTERS,
                    "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+\\z", CJK, "\\p{N}+")),
            Map.entry("deepseek-coder", Spec.of("[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}")),
            Map.entry("deepseek-v3", Spec.of("\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
                            + "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")),
            Map.entry("chameleon", Spec.of("<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                    "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", GPT2).withBos()));

    private final String name;
    private final Pattern[] patterns;
    private final boolean ignoreMerges;
    private final boolean addBosDefault;

    private PreTokenizer(String name, Spec spec) {
        this.name = name;
        this.patterns = spec.regexes().stream()
                .map(r -> Pattern.compile(r, Pattern.UNICODE_CHARACTER_CLASS))
                .toArray(Pattern[]::new);
        this.ignoreMerges = spec.ignoreMerges();
        this.addBosDefault = spec.addBos();
    }

    /**
     * The pre-tokenizer called {@code pre}. A missing name (null or empty) selects "default", as llama.cpp
     * does for old conversions; an unknown name is an error rather than a silent guess, since a wrong split
     * produces valid-looking but different token ids.
     */
    static PreTokenizer forName(String pre) {
        String key = pre == null || pre.isEmpty() ? "default" : pre;
        Spec spec = SPECS.get(key);
        if (spec == null) {
            throw new TokenizerException("unknown pre-tokenizer '" + pre + "' (" + VocabData.KEY_PRE
                    + "); known: " + String.join(", ", new java.util.TreeSet<>(SPECS.keySet())));
        }
        return new PreTokenizer(key, spec);
    }

    static java.util.Set<String> knownNames() {
        return SPECS.keySet();
    }

    String name() {
        return name;
    }

    /** Whether a word that is itself a vocabulary token is emitted whole, skipping merges (llama3 and tekken). */
    boolean ignoreMerges() {
        return ignoreMerges;
    }

    /** llama.cpp's add_bos default for this pre-tokenizer when the file does not say. */
    boolean addBosDefault() {
        return addBosDefault;
    }

    /** The words of {@code text}, in order; their concatenation is {@code text}. */
    List<String> split(String text) {
        List<String> pieces = new ArrayList<>();
        if (text.isEmpty()) {
            return pieces;
        }
        pieces.add(text);
        for (Pattern p : patterns) {
            List<String> next = new ArrayList<>(Math.max(16, text.length() / 3));
            for (String piece : pieces) {
                splitOne(p, piece, next);
            }
            pieces = next;
        }
        return pieces;
    }

    private static void splitOne(Pattern p, String piece, List<String> out) {
        // Matching runs on the piece alone, so lookaheads cannot see past its end (as in llama.cpp).
        Matcher m = p.matcher(piece);
        int last = 0;
        while (m.find()) {
            if (m.end() == m.start()) {
                continue;
            }
            if (m.start() > last) {
                out.add(piece.substring(last, m.start()));
            }
            out.add(piece.substring(m.start(), m.end()));
            last = m.end();
        }
        if (last < piece.length()) {
            out.add(last == 0 ? piece : piece.substring(last));
        }
    }
}
