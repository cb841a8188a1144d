package dev.jmoe.generate;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's str methods for Jinjava. Hugging Face chat templates are written for Python's Jinja2, where a
 * string is a Python str: {@code content.startswith('<think>')}, {@code content.split('</think>')[-1].lstrip()},
 * {@code '\n'.join(lines)}. Jinjava would call java.lang.String's methods instead, which either do not exist
 * or differ (String.split takes a regex). This resolver runs first and answers those calls on strings;
 * everything else falls through to Jinjava's own resolver.
 */
final class PyMethods extends ELResolver {

    private static final Set<String> METHODS = Set.of(
            "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "lower",
            "upper", "title", "capitalize", "replace", "join", "find", "rfind", "count", "isdigit", "isalpha",
            "isalnum", "isspace", "islower", "isupper");

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof CharSequence cs) || method == null || !METHODS.contains(method.toString())) {
            return null;
        }
        Object result = call(cs.toString(), method.toString(), params == null ? new Object[0] : params);
        context.setPropertyResolved(true);
        return result;
    }

    static Object call(String s, String name, Object[] a) {
        return switch (name) {
            case "startswith" -> matchesAffix(s, a, true);
            case "endswith" -> matchesAffix(s, a, false);
            case "strip" -> rstrip(lstrip(s, arg(a, 0)), arg(a, 0));
            case "lstrip" -> lstrip(s, arg(a, 0));
            case "rstrip" -> rstrip(s, arg(a, 0));
            case "split" -> split(s, arg(a, 0), a.length > 1 ? toInt(a[1]) : -1);
            case "rsplit" -> rsplit(s, arg(a, 0), a.length > 1 ? toInt(a[1]) : -1);
            case "splitlines" -> splitlines(s);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "replace" -> replace(s, str(a, 0), str(a, 1), a.length > 2 ? toInt(a[2]) : -1);
            case "join" -> join(s, a.length > 0 ? a[0] : null);
            case "find" -> (long) s.indexOf(str(a, 0));
            case "rfind" -> (long) s.lastIndexOf(str(a, 0));
            case "count" -> count(s, str(a, 0));
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" -> !s.isEmpty() && s.codePoints().allMatch(PyMethods::isPySpace);
            case "islower" -> s.codePoints().anyMatch(Character::isLowerCase) && s.equals(s.toLowerCase(Locale.ROOT));
            case "isupper" -> s.codePoints().anyMatch(Character::isUpperCase) && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new IllegalStateException(name);
        };
    }

    private static String arg(Object[] a, int i) {
        return a.length > i && a[i] != null ? a[i].toString() : null;
    }

    private static String str(Object[] a, int i) {
        if (a.length <= i || a[i] == null) {
            throw new IllegalArgumentException("missing string argument " + (i + 1));
        }
        return a[i].toString();
    }

    private static int toInt(Object o) {
        return o instanceof Number n ? n.intValue() : Integer.parseInt(o.toString());
    }

    private static boolean isPySpace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85;
    }

    private static boolean matchesAffix(String s, Object[] a, boolean prefix) {
        if (a.length == 0 || a[0] == null) {
            throw new IllegalArgumentException((prefix ? "startswith" : "endswith") + " needs an argument");
        }
        // Python accepts a tuple of alternatives; templates pass a list or tuple literal.
        Iterable<?> options = a[0] instanceof Iterable<?> it ? it : List.of(a[0]);
        for (Object o : options) {
            String x = String.valueOf(o);
            if (prefix ? s.startsWith(x) : s.endsWith(x)) {
                return true;
            }
        }
        return false;
    }

    private static boolean strips(int c, String chars) {
        return chars == null ? isPySpace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strips(s.codePointAt(i), chars)) {
            i += Character.charCount(s.codePointAt(i));
        }
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strips(s.codePointBefore(j), chars)) {
            j -= Character.charCount(s.codePointBefore(j));
        }
        return s.substring(0, j);
    }

    /** Python's str.split: without a separator, runs of whitespace split and empty pieces are dropped. */
    static List<String> split(String s, String sep, int maxSplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0, n = s.length();
            while (true) {
                while (i < n && isPySpace(s.charAt(i))) {
                    i++;
                }
                if (i >= n) {
                    break;
                }
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(rstrip(s.substring(i), null));
                    break;
                }
                int j = i;
                while (j < n && !isPySpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int from = 0, at;
        while ((maxSplit < 0 || out.size() < maxSplit) && (at = s.indexOf(sep, from)) >= 0) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static List<String> rsplit(String s, String sep, int maxSplit) {
        if (sep == null || maxSplit < 0) {
            return split(s, sep, maxSplit);
        }
        List<String> out = new ArrayList<>();
        int end = s.length(), at;
        while (out.size() < maxSplit && (at = s.lastIndexOf(sep, end - sep.length())) >= 0 && end - sep.length() >= 0) {
            out.add(0, s.substring(at + sep.length(), end));
            end = at;
        }
        out.add(0, s.substring(0, end));
        return out;
    }

    private static List<String> splitlines(String s) {
        List<String> out = new ArrayList<>();
        int start = 0, i = 0, n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            if ("\n\r\u000B\u000C\u001C\u001D\u001E\u0085\u2028\u2029".indexOf(c) >= 0) {
                out.add(s.substring(start, i));
                i += c == '\r' && i + 1 < n && s.charAt(i + 1) == '\n' ? 2 : 1;
                start = i;
            } else {
                i++;
            }
        }
        if (start < n) {
            out.add(s.substring(start));
        }
        return out;
    }

    private static String replace(String s, String old, String with, int count) {
        if (count < 0) {
            return s.replace(old, with);
        }
        StringBuilder sb = new StringBuilder();
        int from = 0, at, done = 0;
        while (done < count && (at = s.indexOf(old, from)) >= 0) {
            sb.append(s, from, at).append(with);
            from = at + old.length();
            done++;
            if (old.isEmpty()) {
                if (from < s.length()) {
                    sb.append(s.charAt(from));
                }
                from++;
            }
        }
        if (from < s.length()) {
            sb.append(s, from, s.length());
        }
        return sb.toString();
    }

    private static String join(String sep, Object items) {
        if (items == null) {
            throw new IllegalArgumentException("join needs an iterable");
        }
        Iterator<?> it = items instanceof Iterable<?> iter ? iter.iterator()
                : items instanceof Map<?, ?> m ? m.keySet().iterator()
                : items instanceof Object[] arr ? List.of(arr).iterator()
                : items instanceof CharSequence cs ? cs.codePoints().mapToObj(Character::toString).iterator()
                : null;
        if (it == null) {
            throw new IllegalArgumentException("join needs an iterable, got " + items.getClass().getSimpleName());
        }
        StringBuilder sb = new StringBuilder();
        while (it.hasNext()) {
            sb.append(it.next());
            if (it.hasNext()) {
                sb.append(sep);
            }
        }
        return sb.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.codePointCount(0, s.length()) + 1;
        }
        long n = 0;
        for (int from = 0, at; (at = s.indexOf(sub, from)) >= 0; from = at + sub.length()) {
            n++;
        }
        return n;
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            sb.appendCodePoint(prevCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            prevCased = Character.isLetter(c);
            i += Character.charCount(c);
        }
        return sb.toString();
    }

    /** Python's indexing of a string by position ({@code role[0]}, {@code text[-1]}), which Jinjava lacks. */
    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        // Jinjava hands integer subscripts over as strings ("0", "-1").
        Long index = property instanceof Number n ? Long.valueOf(n.longValue())
                : property instanceof String p && p.matches("-?\\d{1,9}") ? Long.valueOf(p) : null;
        if (base instanceof CharSequence cs && index != null) {
            String s = cs.toString();
            int len = s.codePointCount(0, s.length());
            long i = index < 0 ? index + len : index;
            context.setPropertyResolved(true);
            if (i < 0 || i >= len) {
                return null;
            }
            int at = s.offsetByCodePoints(0, (int) i);
            return new String(Character.toChars(s.codePointAt(at)));
        }
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
