package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Python str semantics, with expectations taken from Python's documented behaviour. */
class PyMethodsTest {

    private static Object call(String s, String method, Object... args) {
        return PyMethods.call(s, method, args);
    }

    @Test
    void split() {
        assertEquals(List.of("a", "b"), call("  a \t b \n", "split"));
        assertEquals(List.of("a", "", "b"), call("a,,b", "split", ","));
        assertEquals(List.of("a", "b c"), call("a b c", "split", null, 1L));
        assertEquals(List.of("a", "b.c"), call("a.b.c", "split", ".", 1L), "the separator is literal, not a regex");
        assertEquals(List.of("a.b", "c"), call("a.b.c", "rsplit", ".", 1L));
        assertEquals(List.of(""), call("", "split", ","));
        assertEquals(List.of(), call("", "split"));
        assertEquals(List.of("x", "y", ""), call("x\ny\r\n\n", "splitlines"));
    }

    @Test
    void strip() {
        assertEquals("x y", call(" \n x y\t ", "strip"));
        assertEquals("x\n\n", call("\n\nx\n\n", "lstrip", "\n"));
        assertEquals("\n\nx", call("\n\nx\n\n", "rstrip", "\n"));
        assertEquals("b", call("acbca", "strip", "ac"), "an argument is a set of characters, not a prefix");
    }

    @Test
    void others() {
        assertEquals(true, call("<tool_response>x", "startswith", "<tool_response>"));
        assertEquals(true, call("file.py", "endswith", List.of(".js", ".py")));
        assertEquals("a-b-c", call("-", "join", List.of("a", "b", "c")));
        assertEquals("xbxb", call("abab", "replace", "a", "x"));
        assertEquals("xbab", call("abab", "replace", "a", "x", 1L));
        assertEquals(2L, call("abab", "count", "ab"));
        assertEquals(-1L, call("abc", "find", "z"));
        assertEquals("Hello World", call("hello wORLD", "title"));
        assertEquals("Hello world", call("hELLO WORLD", "capitalize"));
        assertEquals(true, call("123", "isdigit"));
        assertEquals(false, call("", "isdigit"));
    }
}
