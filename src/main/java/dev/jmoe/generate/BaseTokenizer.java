package dev.jmoe.generate;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * What byte-level BPE and SentencePiece tokenizers share: the vocabulary, special ids and their llama.cpp
 * defaults, splitting text around special tokens, and turning ids back into bytes.
 */
abstract sealed class BaseTokenizer implements Tokenizer permits BpeTokenizer, SpmTokenizer {

    /**
     * Texts llama.cpp treats as end-of-generation whatever the metadata says (chat models often name only
     * their base EOS in the file while ending turns with one of these).
     */
    private static final Set<String> EOG_TEXTS = Set.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
            "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|return|>", "<|call|>",
            "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>");
    /**
     * End-of-turn texts in order of preference when the file names no EOT: turn markers before the generic
     * "&lt;|endoftext|&gt;" that many vocabularies also contain (llama.cpp takes whichever its hash map yields first).
     */
    private static final List<String> EOT_TEXTS = List.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>",
            "<end_of_utterance>", "<|endoftext|>");

    protected final List<String> texts;
    protected final TokenType[] types;
    protected final Map<String, Integer> ids;
    protected final int bos, eos, unk, eot, eom;
    protected final boolean addBos, addEos;
    private final BitSet eog = new BitSet();
    /** Tokens matched literally in input text before tokenization, longest first. */
    private final int[] specials;
    private final String chatTemplate;

    /** Model-specific defaults for keys the file may omit. */
    protected record Defaults(int bos, int eos, int unk, boolean addBos, boolean addEos) {}

    protected BaseTokenizer(VocabData d, Defaults def) {
        int n = d.tokens().size();
        List<String> t = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String s = d.tokens().get(i);
            // llama.cpp renames empty tokens so that every id keeps a distinct, printable text.
            t.add(s == null || s.isEmpty() ? "[EMPTY_" + i + "]" : s);
        }
        texts = Collections.unmodifiableList(t);
        types = new TokenType[n];
        ids = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) {
            types[i] = d.tokenTypes() == null ? TokenType.NORMAL : TokenType.fromCode(d.tokenTypes()[i]);
            ids.put(texts.get(i), i); // later duplicates win, as in llama.cpp
        }
        bos = specialId(d.bosId(), def.bos(), n);
        eos = specialId(d.eosId(), def.eos(), n);
        unk = specialId(d.unkId(), def.unk(), n);
        int eotId = specialId(d.eotId(), -1, n);
        eom = specialId(d.eomId(), -1, n);
        addBos = d.addBos() != null ? d.addBos() : def.addBos();
        addEos = d.addEos() != null ? d.addEos() : def.addEos();
        if (addBos && bos < 0) {
            throw new TokenizerException("the tokenizer adds BOS (" + VocabData.KEY_ADD_BOS
                    + ") but no valid " + VocabData.KEY_BOS + " is given");
        }
        if (addEos && eos < 0) {
            throw new TokenizerException("the tokenizer adds EOS (" + VocabData.KEY_ADD_EOS
                    + ") but no valid " + VocabData.KEY_EOS + " is given");
        }
        if (eotId < 0) {
            for (String s : EOT_TEXTS) {
                Integer id = ids.get(s);
                if (id != null) {
                    eotId = id;
                    break;
                }
            }
        }
        for (int i = 0; i < n; i++) {
            String s = texts.get(i);
            if (EOG_TEXTS.contains(s)) {
                eog.set(i);
                // Such tokens are control tokens even when a converter forgot to mark them (llama.cpp does the same).
                types[i] = TokenType.CONTROL;
            }
        }
        eot = eotId;
        for (int id : new int[] {eos, eot, eom}) {
            if (id >= 0) {
                eog.set(id);
            }
        }
        List<Integer> sp = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            TokenType ty = types[i];
            if (ty == TokenType.CONTROL || ty == TokenType.USER_DEFINED || ty == TokenType.UNKNOWN) {
                sp.add(i);
            }
        }
        sp.sort(Comparator.comparingInt((Integer i) -> -texts.get(i).length()).thenComparingInt(i -> i));
        specials = sp.stream().mapToInt(Integer::intValue).toArray();
        chatTemplate = d.chatTemplate();
    }

    private static int specialId(Integer fromFile, int fallback, int n) {
        if (fromFile != null && fromFile >= 0 && fromFile < n) {
            return fromFile;
        }
        // An out-of-range id in the file is ignored in favour of the default, as llama.cpp does.
        return fallback >= 0 && fallback < n ? fallback : -1;
    }

    // ---- encoding ----

    /**
     * Tokenizes one run of plain text (no special tokens in it).
     *
     * @param afterSpecial true at the start of the input and right after a special token
     */
    protected abstract void encodeText(String text, boolean afterSpecial, IntList out);

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        Objects.requireNonNull(text, "text");
        IntList out = new IntList(text.length() / 3 + 4);
        if (addSpecial && addBos) {
            out.add(bos);
        }
        boolean afterSpecial = true;
        for (Object fragment : partition(text, parseSpecial)) {
            if (fragment instanceof Integer id) {
                out.add(id);
                afterSpecial = true;
            } else {
                encodeText((String) fragment, afterSpecial, out);
                afterSpecial = false;
            }
        }
        if (addSpecial && addEos) {
            out.add(eos);
        }
        return out.toArray();
    }

    /**
     * Cuts text around occurrences of special tokens: a list of Strings (plain text) and Integers (token ids).
     * Longer special tokens are matched first, so a token that contains another wins. User-defined tokens are
     * always matched; control and unknown tokens only when {@code parseSpecial} (llama.cpp's rule).
     */
    private List<Object> partition(String text, boolean parseSpecial) {
        List<Object> frags = new ArrayList<>();
        if (text.isEmpty()) {
            return frags;
        }
        frags.add(text);
        for (int id : specials) {
            TokenType ty = types[id];
            if (!parseSpecial && (ty == TokenType.CONTROL || ty == TokenType.UNKNOWN)) {
                continue;
            }
            String s = texts.get(id);
            if (!text.contains(s)) {
                continue;
            }
            List<Object> next = new ArrayList<>(frags.size() + 4);
            for (Object f : frags) {
                if (!(f instanceof String str)) {
                    next.add(f);
                    continue;
                }
                int from = 0;
                int at;
                while ((at = str.indexOf(s, from)) >= 0) {
                    if (at > from) {
                        next.add(str.substring(from, at));
                    }
                    next.add(id);
                    from = at + s.length();
                }
                if (from < str.length()) {
                    next.add(from == 0 ? str : str.substring(from));
                }
            }
            frags = next;
        }
        return frags;
    }

    // ---- decoding ----

    /** Bytes of a normal (non-special) token: model-specific. */
    protected abstract byte[] normalTokenBytes(int token);

    /** Bytes of a byte-fallback token; empty where the model has no such notion. */
    protected abstract byte[] byteTokenBytes(int token);

    /** Whether decode should drop the space the tokenizer itself put in front of the text. */
    protected boolean stripsLeadingSpace() {
        return false;
    }

    @Override
    public byte[] tokenBytes(int token) {
        return tokenBytes(token, false);
    }

    @Override
    public byte[] tokenBytes(int token, boolean special) {
        checkId(token);
        return switch (types[token]) {
            case NORMAL -> normalTokenBytes(token);
            case BYTE -> byteTokenBytes(token);
            case USER_DEFINED -> texts.get(token).getBytes(StandardCharsets.UTF_8);
            case CONTROL, UNKNOWN -> special ? texts.get(token).getBytes(StandardCharsets.UTF_8) : new byte[0];
            // llama.cpp prints nothing for unused and undefined tokens.
            case UNUSED, UNDEFINED -> new byte[0];
        };
    }

    @Override
    public String decode(int[] tokens) {
        return decode(tokens, false);
    }

    @Override
    public String decode(int[] tokens, boolean special) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(tokens.length * 4);
        boolean strip = stripsLeadingSpace();
        for (int t : tokens) {
            byte[] b = tokenBytes(t, special);
            if (strip && b.length > 0) {
                out.write(b, b[0] == ' ' ? 1 : 0, b[0] == ' ' ? b.length - 1 : b.length);
                strip = false;
            } else {
                out.writeBytes(b);
            }
        }
        byte[] bytes = out.toByteArray();
        return Utf8.decode(bytes, bytes.length);
    }

    protected final void checkId(int token) {
        if (token < 0 || token >= texts.size()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary [0, "
                    + texts.size() + ")");
        }
    }

    // ---- accessors ----

    @Override public int vocabSize() { return texts.size(); }
    @Override public int bos() { return bos; }
    @Override public int eos() { return eos; }
    @Override public int unk() { return unk; }
    @Override public int eot() { return eot; }
    @Override public boolean addBos() { return addBos; }
    @Override public boolean addEos() { return addEos; }

    @Override
    public boolean isEndOfGeneration(int token) {
        return token >= 0 && eog.get(token);
    }

    @Override
    public int[] endOfGenerationTokens() {
        return eog.stream().toArray();
    }

    @Override
    public String tokenText(int token) {
        checkId(token);
        return texts.get(token);
    }

    @Override
    public TokenType tokenType(int token) {
        checkId(token);
        return types[token];
    }

    @Override
    public int tokenId(String text) {
        Integer id = ids.get(text);
        return id == null ? -1 : id;
    }

    @Override
    public List<String> vocab() {
        return texts;
    }

    @Override
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[vocab=" + texts.size() + ", bos=" + bos + ", eos=" + eos
                + ", addBos=" + addBos + ", addEos=" + addEos + ", eog=" + Arrays.toString(endOfGenerationTokens()) + "]";
    }
}
