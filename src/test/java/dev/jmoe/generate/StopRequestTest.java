package dev.jmoe.generate;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue #24: Ctrl-C ended a generation without its final newline or statistics. A loop that polls StopRequest ends its
 * line and prints its statistics; the child JVM below is such a loop, interrupted with a real SIGINT.
 */
class StopRequestTest {

    /** Streams "tok " until asked to stop, then ends the line and prints its statistics. */
    public static void main(String[] args) throws Exception {
        try (StopRequest stop = StopRequest.onInterrupt()) {
            int tokens = 0;
            System.out.println("ready");
            System.out.flush();
            while (!stop.requested() && tokens < 1_000_000) {
                System.out.print("tok ");
                System.out.flush();
                tokens++;
                Thread.sleep(2);
            }
            System.out.println();
            System.out.println("stats: " + tokens + " tokens");
        }
    }

    @Test
    void interruptEndsTheLineAndPrintsStatistics() throws Exception {
        Process p = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), StopRequestTest.class.getName())).start();
        p.getOutputStream().close();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        assertEquals("ready", out.readLine());
        Thread.sleep(200);
        assertEquals(0, new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor());
        assertTrue(p.waitFor(20, TimeUnit.SECONDS));
        StringBuilder rest = new StringBuilder();
        for (String l; (l = out.readLine()) != null; ) rest.append(l).append('\n');
        assertEquals(0, p.exitValue(), "a normal exit, not the JVM's 130 for SIGINT: " + rest);
        String[] lines = rest.toString().split("\n");
        assertEquals(2, lines.length, rest.toString());
        assertTrue(lines[0].startsWith("tok ") && lines[0].endsWith("tok "), "the streamed line, then its newline: " + lines[0]);
        assertTrue(lines[1].matches("stats: [1-9][0-9]* tokens"), lines[1]);
    }

    @Test
    void requestWithoutASignalAndOneAtATime() {
        try (StopRequest s = StopRequest.onInterrupt()) {
            assertFalse(s.requested());
            assertThrows(IllegalStateException.class, StopRequest::onInterrupt);
            s.request();
            assertTrue(s.requested());
        }
        try (StopRequest again = StopRequest.onInterrupt()) {
            assertFalse(again.requested(), "closing restores the previous handler and allows a new request");
        }
    }
}
