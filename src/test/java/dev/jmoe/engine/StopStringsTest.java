package dev.jmoe.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringsTest {
    /** Feeds pieces; returns everything emitted, with "|" marking where the stream said it stopped. */
    private static String stream(List<String> stops, String... pieces) {
        StopStrings s = new StopStrings(stops);
        StringBuilder out = new StringBuilder();
        for (String p : pieces) {
            out.append(s.accept(p));
            if (s.stopped()) return out + "|";
        }
        return out + s.finish("");
    }

    @Test
    void aStopStringSplitAcrossPiecesIsNeverEmittedNorAnythingAfterIt() {
        assertEquals("Hello |", stream(List.of("END"), "Hel", "lo E", "N", "D more"));
        assertEquals("ab|", stream(List.of("\n\n"), "ab\n", "\nc"));
    }

    @Test
    void heldBackTextIsReleasedWhenItTurnsOutNotToBeAStop() {
        StopStrings s = new StopStrings(List.of("END"));
        assertEquals("x ", s.accept("x E"), "a possible start of the stop string is held back");
        assertEquals("EX", s.accept("X"), "and released once it cannot be one");
        assertFalse(s.stopped());
        assertEquals("x EN", stream(List.of("END"), "x E", "N"), "the end of generation releases what was held back");
    }

    @Test
    void theEarliestOfSeveralStopsWins() {
        assertEquals("a |", stream(List.of("zz", "b"), "a bzz"));
        assertEquals("no stops pass through", stream(List.of(), "no stops ", "pass through"));
        StopStrings s = new StopStrings(List.of("b"));
        s.accept("ab");
        assertTrue(s.stopped());
        assertEquals("", s.accept("more"), "nothing after a stop");
    }
}
