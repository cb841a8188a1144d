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
    @Test
    void twoTurnsThenExit() {
        InputStream old = System.in;
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code;
        try {
            System.setIn(new ByteArrayInputStream("Hello there\nAnd again\n/exit\nnever read\n".getBytes(StandardCharsets.UTF_8)));
            code = Main.run(new String[]{"chat", "-m", Reference.model("tiny_qwen3moe_q8_0").toString(), "--temp", "0", "-n", "5", "-q"},
                    new PrintWriter(out, true), new PrintWriter(err, true));
        } finally {
            System.setIn(old);
        }
        assertEquals(0, code, err.toString());
        // three prompts: two answered turns and the one that read /exit
        assertEquals(3, out.toString().split("> ", -1).length - 1, out.toString());
        assertTrue(err.toString().contains("/exit"), err.toString());
    }
}
