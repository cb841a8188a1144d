package dev.jmoe.generate;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Applies Jinja2's whitespace rules to a template's source, so that the template can then be rendered with
 * no whitespace handling at all. Chat templates are written for Jinja2 with trim_blocks and lstrip_blocks on
 * and lean on {@code {{-}}, {@code -}}}, {@code {%-}, {@code -%}} everywhere; Jinjava ignores the markers on
 * expression tags, so its own handling would leave stray indentation and newlines in the prompt.
 *
 * <p>Rules (Jinja2's): a tag opening with '-' removes all whitespace before it, one closing with '-' all
 * whitespace after it; lstrip_blocks removes spaces and tabs between the start of a line and a block or
 * comment tag (not when it opens with '+'); trim_blocks removes the first newline after a block or comment
 * tag (not when it closes with '+'). Text inside {@code {% raw %}} is left alone.
 */
final class JinjaWhitespace {
    private JinjaWhitespace() {}

    private static final Pattern END_RAW = Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%\\}");

    /** A piece of the source: template text, or a tag with its delimiters and whitespace markers split off. */
    private static final class Segment {
        final char kind;      // 't' text, '{' expression, '%' block, '#' comment
        String text;          // text, or the tag's inner source without markers
        final char open;      // '-', '+' or 0
        final char close;

        Segment(char kind, String text, char open, char close) {
            this.kind = kind;
            this.text = text;
            this.open = open;
            this.close = close;
        }

        boolean isBlockLike() {
            return kind == '%' || kind == '#';
        }
    }

    static String apply(String source) {
        List<Segment> segs = parse(source);
        // Every rule is decided on the original text (Jinja2 applies them while lexing the source), so each
        // text segment is cut once, at both ends.
        for (int t = 0; t < segs.size(); t++) {
            Segment text = segs.get(t);
            if (text.kind != 't') {
                continue;
            }
            String s = text.text;
            Segment prev = t > 0 ? segs.get(t - 1) : null;
            Segment next = t + 1 < segs.size() ? segs.get(t + 1) : null;
            int start = 0, end = s.length();
            if (prev != null) {
                if (prev.close == '-') {
                    start = s.length() - PyMethods.lstrip(s, null).length();
                } else if (prev.close != '+' && prev.isBlockLike()) {
                    start = s.startsWith("\r\n") ? 2 : s.startsWith("\n") ? 1 : 0;
                }
            }
            if (next != null) {
                if (next.open == '-') {
                    end = PyMethods.rstrip(s, null).length();
                } else if (next.open != '+' && next.isBlockLike()) {
                    end = lineIndentStart(s, t == 0);
                }
            }
            text.text = start < end ? s.substring(start, end) : "";
        }
        StringBuilder out = new StringBuilder(source.length());
        for (Segment s : segs) {
            switch (s.kind) {
                case 't' -> out.append(s.text);
                case '{' -> out.append("{{").append(s.text).append("}}");
                case '%' -> out.append("{%").append(s.text).append("%}");
                default -> out.append("{#").append(s.text).append("#}");
            }
        }
        return out.toString();
    }

    /**
     * Where the trailing spaces and tabs of {@code text} begin if only they separate its end from the start of
     * a line (lstrip_blocks applies), else its length.
     */
    private static int lineIndentStart(String text, boolean atTemplateStart) {
        int j = text.length();
        while (j > 0 && (text.charAt(j - 1) == ' ' || text.charAt(j - 1) == '\t')) {
            j--;
        }
        boolean lineStart = j == 0 ? atTemplateStart : text.charAt(j - 1) == '\n' || text.charAt(j - 1) == '\r';
        return lineStart ? j : text.length();
    }

    private static List<Segment> parse(String src) {
        List<Segment> segs = new ArrayList<>();
        int i = 0, textStart = 0, n = src.length();
        while (i < n - 1) {
            char c = src.charAt(i), d = src.charAt(i + 1);
            if (c != '{' || (d != '{' && d != '%' && d != '#')) {
                i++;
                continue;
            }
            int end = tagEnd(src, i, d);
            if (end < 0) {
                break; // unterminated tag: leave the rest as text and let the template engine report it
            }
            if (i > textStart) {
                segs.add(new Segment('t', src.substring(textStart, i), (char) 0, (char) 0));
            }
            String inner = src.substring(i + 2, end - 2);
            char open = !inner.isEmpty() && (inner.charAt(0) == '-' || inner.charAt(0) == '+') ? inner.charAt(0) : 0;
            char close = inner.length() > (open != 0 ? 1 : 0)
                    && (inner.charAt(inner.length() - 1) == '-' || inner.charAt(inner.length() - 1) == '+')
                    ? inner.charAt(inner.length() - 1) : 0;
            String body = inner.substring(open != 0 ? 1 : 0, inner.length() - (close != 0 ? 1 : 0));
            segs.add(new Segment(d == '{' ? '{' : d, body, open, close));
            i = end;
            textStart = i;
            if (d == '%' && body.trim().equals("raw")) {
                Matcher m = END_RAW.matcher(src);
                if (m.find(i)) {
                    if (m.start() > i) {
                        segs.add(new Segment('t', src.substring(i, m.start()), (char) 0, (char) 0));
                    }
                    i = m.start();
                    textStart = i;
                }
            }
        }
        if (textStart < n) {
            segs.add(new Segment('t', src.substring(textStart), (char) 0, (char) 0));
        }
        return segs;
    }

    /** Index just past the tag opened at {@code start}, skipping string literals inside it; -1 if unterminated. */
    private static int tagEnd(String src, int start, char kind) {
        char closeFirst = kind == '{' ? '}' : kind;
        int i = start + 2, n = src.length();
        while (i < n - 1) {
            char c = src.charAt(i);
            if (kind != '#' && (c == '\'' || c == '"')) {
                int j = i + 1;
                while (j < n && src.charAt(j) != c) {
                    j += src.charAt(j) == '\\' ? 2 : 1;
                }
                i = j + 1;
                continue;
            }
            if (c == closeFirst && src.charAt(i + 1) == '}') {
                return i + 2;
            }
            i++;
        }
        return -1;
    }
}
