package dev.jmoe.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jmoe.testutil.Reference;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** jmoe chat driven through stdin: two turns, then /exit. */
class ChatCommandTest {
    private record Session(int code, String out, String err) {}

    private static Session chat(String input, String... extra) {
        InputStream old = System.in;
        StringWriter out = new StringWriter(), err = new StringWriter();
        String[] base = {"chat", "-m", Reference.model("tiny_qwen3moe_q8_0").toString(), "--temp", "0", "-n", "5", "-q"};
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra)).toArray(String[]::new);
        try {
            System.setIn(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
            int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
            return new Session(code, out.toString(), err.toString());
        } finally {
            System.setIn(old);
        }
    }

    @Test
    void twoTurnsThenExit() {
        Session s = chat("Hello there\nAnd again\n/exit\nnever read\n");
        assertEquals(0, s.code(), s.err());
        // three prompts: two answered turns and the one that read /exit
        assertEquals(3, s.out().split("> ", -1).length - 1, s.out());
        assertTrue(s.err().contains("/exit"), s.err());
    }

    @Test
    void predictedJustInTimeLoadingRepliesAsTheResidentModel() {
        // The shadow follows the main model through the rewinds chat does between turns; loads stay exact.
        String input = "Hello there\nAnd again\nA third one\n/exit\n";
        Session resident = chat(input);
        assertEquals(0, resident.code(), resident.err());
        Session odmoe = chat(input, "--policy", "odmoe", "--shadow", "q8_0", "--lookahead", "2", "--stats");
        assertEquals(0, odmoe.code(), odmoe.err());
        assertEquals(resident.out(), odmoe.out());
        assertTrue(odmoe.err().contains("predictions from the shadow"), odmoe.err());
    }
}
