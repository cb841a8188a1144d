package dev.jmoe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The rule for 512-bit vector code (docs/speed.md, "Why some JVM runs box the 256-bit kernels"): a method working on
 * a 512-bit or preferred-width species calls {@code lanewise(op, vector)} and stores through {@code intoMemorySegment},
 * never the convenience methods ({@code fma}, {@code add}, {@code mul}, {@code intoArray}, {@code convert},
 * {@code reinterpretAs…}, a shift or operation by a scalar, {@code Lanes.sum}). Those dispatch inside the JDK (or in
 * Lanes) at call sites whose receiver type profile the 256-bit kernels share; 512-bit receivers there made C2 box the
 * 256-bit kernels' vectors and cost 2-5× decode speed in the runs it happened in. No unit test can see that boxing (it
 * depends on the order the JIT compiles things in a whole run), so this test keeps the rule in the source.
 *
 * <p>{@link #EXEMPT} names the methods that keep the convenience methods on purpose, each for a measured reason.
 */
class WideVectorRuleTest {
    private static final Path MAIN = Path.of(System.getProperty("jmoe.project.dir", ".")).resolve("src/main/java/dev/jmoe");

    /**
     * Methods allowed the convenience methods on wide vectors, per file, each for a measured reason: none since Ops runs
     * at 256 bits (its SwiGLU and exp were exempt while it ran at 512, session 31).
     */
    static final Map<String, Set<String>> EXEMPT = Map.of();

    /**
     * Files that must not use a wide species at all: Ops' 512-bit code, even written by the rule, left C2's species checks
     * in the 8-bit prompt kernel in 6 of 6 runs (it shares FloatVector.lanewiseTemplate's profile), none at 256 bits
     * (docs/speed.md, session 40).
     */
    static final Set<String> NARROW_ONLY = Set.of("model/Ops.java");

    private static final Pattern WIDE_SPECIES = Pattern.compile(
            "(\\w+)\\s*=\\s*(?:Float|Int|Short|Byte|Long|Double)Vector\\.SPECIES_(?:512|PREFERRED|MAX)\\b");
    private static final Pattern CONVENIENCE = Pattern.compile(
            "\\.(?:fma|add|sub|mul|div|neg|abs|max|min|and|or|not|intoArray|convert|reinterpretAs\\w+)\\(|\\bLanes\\.sum\\("
                    + "|\\blanewise\\(\\s*[\\w.]+\\s*,\\s*-?[\\d.]+[fFlL]?\\s*\\)");

    /** Source with comments and string literals blanked (same length, so offsets still line up). */
    static String code(String src) {
        StringBuilder out = new StringBuilder(src);
        int i = 0, n = src.length();
        while (i < n) {
            char c = src.charAt(i);
            if (c == '/' && i + 1 < n && src.charAt(i + 1) == '/') {
                while (i < n && src.charAt(i) != '\n') out.setCharAt(i++, ' ');
            } else if (c == '/' && i + 1 < n && src.charAt(i + 1) == '*') {
                int end = src.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
                for (; i < end; i++) if (src.charAt(i) != '\n') out.setCharAt(i, ' ');
            } else if (src.startsWith("\"\"\"", i)) { // a text block
                int end = src.indexOf("\"\"\"", i + 3);
                end = end < 0 ? n : end + 3;
                for (int k = i + 3; k < end - 3; k++) if (src.charAt(k) != '\n') out.setCharAt(k, ' ');
                i = end;
            } else if (c == '"' || c == '\'') {
                int j = i + 1;
                while (j < n && src.charAt(j) != c) j += src.charAt(j) == '\\' ? 2 : 1;
                for (int k = i + 1; k < Math.min(j, n); k++) out.setCharAt(k, ' ');
                i = j + 1;
            } else {
                i++;
            }
        }
        return out.toString();
    }

    /** A method's (or initializer block's) name, empty for a block, and its body. */
    record Method(String name, String body) {}

    private static final Pattern NAME_BEFORE_PARAMETERS = Pattern.compile("(?<![@\\w])(\\w+)\\s*\\(");

    /** The methods (and initializer blocks) of every class in {@code code}, nested classes' included. */
    static List<Method> methods(String code) {
        List<Method> bodies = new ArrayList<>();
        List<Boolean> classBody = new ArrayList<>(); // per open brace: whether it opened a class body
        int headerStart = 0;
        for (int i = 0; i < code.length(); i++) {
            char c = code.charAt(i);
            if (c == '{') {
                boolean inClass = !classBody.isEmpty() && classBody.getLast();
                String header = code.substring(headerStart, i);
                if (classBody.isEmpty() || inClass && header.matches("(?s).*\\b(class|interface|enum|record)\\b.*")) {
                    classBody.add(true);
                    headerStart = i + 1;
                } else if (inClass && header.contains("=")) {
                    classBody.add(false); // an array initializer of a field
                } else if (inClass) {
                    int depth = 1, j = i + 1;
                    for (; j < code.length() && depth > 0; j++) {
                        if (code.charAt(j) == '{') depth++;
                        else if (code.charAt(j) == '}') depth--;
                    }
                    Matcher name = NAME_BEFORE_PARAMETERS.matcher(header);
                    bodies.add(new Method(name.find() ? name.group(1) : "", code.substring(i, j)));
                    i = j - 1;
                    headerStart = j;
                } else {
                    classBody.add(false);
                }
            } else if (c == '}') {
                if (!classBody.isEmpty()) classBody.removeLast();
                headerStart = i + 1;
            } else if (c == ';') {
                headerStart = i + 1;
            }
        }
        return bodies;
    }

    /** The convenience calls in the methods of {@code src} that make vectors of one of its wide species. */
    static List<String> violations(String name, String src, Set<String> exempt) {
        return violationsInCode(name, code(src), exempt);
    }

    /** {@link #violations} of source already blanked by {@link #code}. */
    private static List<String> violationsInCode(String name, String code, Set<String> exempt) {
        Set<String> wide = new LinkedHashSet<>();
        for (Matcher m = WIDE_SPECIES.matcher(code); m.find(); ) wide.add(m.group(1));
        List<String> out = new ArrayList<>();
        if (wide.isEmpty()) return out;
        String names = String.join("|", wide);
        Pattern makesWide = Pattern.compile("(?:(?:Float|Int|Short|Byte|Long|Double)Vector\\.(?:fromArray|fromMemorySegment|broadcast|zero)"
                + "\\(\\s*(?:" + names + ")\\b)|convertShape\\([^;]*?,\\s*(?:" + names + ")\\s*,");
        for (Method method : methods(code)) {
            String body = method.body();
            if (exempt.contains(method.name()) || !makesWide.matcher(body).find()) continue;
            for (Matcher m = CONVENIENCE.matcher(body); m.find(); ) {
                int lineStart = body.lastIndexOf('\n', m.start()) + 1, lineEnd = body.indexOf('\n', m.end());
                out.add(name + ": " + m.group() + " in " + method.name() + ": " + body.substring(lineStart, lineEnd < 0 ? body.length() : lineEnd).trim());
            }
        }
        return out;
    }

    @Test
    void wideVectorMethodsKeepOffTheJdksSharedConvenienceMethods() throws IOException {
        List<String> bad = new ArrayList<>();
        int wideFiles = 0;
        try (Stream<Path> s = Files.walk(MAIN)) {
            for (Path p : s.filter(f -> f.toString().endsWith(".java")).sorted().toList()) {
                String code = code(Files.readString(p)), name = MAIN.relativize(p).toString();
                Matcher wide = WIDE_SPECIES.matcher(code);
                if (wide.find()) {
                    wideFiles++;
                    if (NARROW_ONLY.contains(name)) bad.add(name + ": a wide species (" + wide.group() + ") in a file kept at 256 bits");
                }
                bad.addAll(violationsInCode(name, code, EXEMPT.getOrDefault(name, Set.of())));
            }
        }
        assertTrue(wideFiles >= 2, "the wide kernels (F16Kernel, PackedQ8) were not found under " + MAIN);
        assertEquals(List.of(), bad);
    }

    @Test
    void theCheckFindsEachKindOfConvenienceCallAndSparesNarrowMethods() {
        String src = """
                class K {
                    private static final VectorSpecies<Float> W = FloatVector.SPECIES_512;
                    private static final VectorSpecies<Float> N = FloatVector.SPECIES_256;
                    static final int[] TABLE = {1, 2};
                    static float wide(float[] a, float[] out) {
                        FloatVector v = FloatVector.fromArray(W, a, 0); // v.add(v) in a comment is fine
                        String s = "v.mul(v)";
                        v = v.fma(v, v).lanewise(VectorOperators.MUL, 2f);
                        v.intoArray(out, 0);
                        return Lanes.sum(v);
                    }
                    static class Inner {
                        void wideToo(int[] q) {
                            IntVector i = (IntVector) ByteVector.fromArray(B, q, 0).convertShape(VectorOperators.B2I, W, 0);
                            i.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats();
                        }
                    }
                    static void narrow(float[] a) {
                        FloatVector.fromArray(N, a, 0).add(FloatVector.zero(N)).intoArray(a, 0);
                    }
                    static void clean(float[] a) {
                        FloatVector v = FloatVector.fromArray(W, a, 0);
                        String doc = \"""
                                v.fma(v, v) in a text block is fine
                                \""";
                        v.lanewise(VectorOperators.ADD, v).intoMemorySegment(MemorySegment.ofArray(a), 0L, ByteOrder.nativeOrder());
                    }
                }
                """;
        List<String> found = violations("K.java", src, Set.of()).stream().map(v -> v.substring(0, v.indexOf(": ", v.indexOf(" in ")))).toList();
        assertEquals(List.of("K.java: .fma( in wide", "K.java: lanewise(VectorOperators.MUL, 2f) in wide", "K.java: .intoArray( in wide",
                "K.java: Lanes.sum( in wide", "K.java: lanewise(VectorOperators.LSHL, 13) in wideToo",
                "K.java: .reinterpretAsFloats( in wideToo"), found);
        assertEquals(List.of("K.java: lanewise(VectorOperators.LSHL, 13) in wideToo", "K.java: .reinterpretAsFloats( in wideToo"),
                violations("K.java", src, Set.of("wide")).stream().map(v -> v.substring(0, v.indexOf(": ", v.indexOf(" in ")))).toList(),
                "an exempt method is skipped, the others still checked");
    }
}
