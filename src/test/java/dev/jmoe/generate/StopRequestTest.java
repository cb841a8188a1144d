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

    /** Streams "tok " until asked to stop (by the signal named in args[0]), then ends the line and prints its statistics. */
    public static void main(String[] args) throws Exception {
        try (StopRequest stop = args[0].equals("INT") ? StopRequest.onInterrupt() : StopRequest.on(args[0])) {
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

    /**
     * Whether this process ignores SIGINT, as commands started in the background by a non-interactive shell do. A child
     * inherits that, and the JVM then installs no handler for it (a SIGINT does nothing): the child is then stopped with
     * SIGTERM through the same code. A CI run started with {@code .ci/run &} hung here for 20 s before this.
     */
    static boolean sigintIgnored() throws java.io.IOException {
        for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("SigIgn:")) return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << (2 - 1))) != 0;
        }
        return false;
    }

    @Test
    void interruptEndsTheLineAndPrintsStatistics() throws Exception {
        String signal = sigintIgnored() ? "TERM" : "INT";
        Process p = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), StopRequestTest.class.getName(), signal)).start();
        p.getOutputStream().close();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        assertEquals("ready", out.readLine());
        Thread.sleep(200);
        assertEquals(0, new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).start().waitFor());
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
