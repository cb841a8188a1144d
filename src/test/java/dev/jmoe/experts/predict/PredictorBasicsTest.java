package dev.jmoe.experts.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Predictor pieces that need no model: history arithmetic, metrics, alignment periods, the board, geometry. */
class PredictorBasicsTest {
    @Test
    void historyRanksDecayedActivationCounts() {
        HistoryPredictor h = new HistoryPredictor(2, 4, 0.5);
        int[] out = new int[2];
        assertEquals(0, h.predict(0, 0, 1, out), "a layer never routed has no history");
        h.observe(1, 0, new int[] {2, 0}, 2, null, 0);          // layer 1: e0 = 1, e2 = 1
        h.observe(1, 1, new int[] {3, 0}, 2, null, 0);          // ×0.5 then +1: e0 = 1.5, e3 = 1, e2 = 0.5
        assertEquals(1.5f, h.score(1, 0));
        assertEquals(0.5f, h.score(1, 2));
        assertEquals(2, h.predict(1, 0, 1, out));               // (pos 1, layer 0) + 1 = layer 1
        assertArrayEquals(new int[] {0, 3}, out);
        assertEquals(0, h.predict(1, 0, 2, out), "layer 0 of the next token: layer 0 has no history");
        h.observe(1, 2, new int[] {2, 1}, 2, null, 0);          // e0 = .75, e3 = .5, e2 = 1.25, e1 = 1
        h.predict(2, 1, 2, out);                                // layer 1 + 2 = layer 1 of the next token
        assertArrayEquals(new int[] {2, 1}, out);
        int[] wide = new int[4];
        assertEquals(4, h.predict(2, 0, 1, wide));
        assertArrayEquals(new int[] {2, 1, 0, 3}, wide);
    }

    @Test
    void historyDecayZeroIsThePreviousTokenAndOneIsFrequency() {
        HistoryPredictor prev = new HistoryPredictor(1, 4, 0), freq = new HistoryPredictor(1, 4, 1);
        int[][] tokens = {{1, 2}, {1, 2}, {1, 3}, {0, 3}};
        for (int[] t : tokens) {
            prev.observe(0, 0, t, 2, null, 0);
            freq.observe(0, 0, t, 2, null, 0);
        }
        int[] out = new int[2];
        prev.predict(0, 0, 1, out);
        Arrays.sort(out);
        assertArrayEquals(new int[] {0, 3}, out);
        freq.predict(0, 0, 1, out);
        assertArrayEquals(new int[] {1, 2}, out, "1 was chosen 3 times; 2 and 3 twice each, and 2 < 3 wins the tie");
        assertThrows(IllegalArgumentException.class, () -> new HistoryPredictor(1, 4, 1.5));
    }

    @Test
    void metricsAreRecallPrecisionAndExactSetMatch() {
        PredictionMetrics m = new PredictionMetrics("x", 2, 3);
        m.add(1, 0, new int[] {1, 2}, 2, new int[] {2, 1}, 2);       // exact (order does not matter)
        m.add(1, 0, new int[] {1, 5}, 2, new int[] {1, 2}, 2);       // half
        m.add(1, 1, new int[] {1, 2, 3}, 3, new int[] {1, 2}, 2);    // all found, one extra
        m.add(1, 2, new int[0], 0, new int[] {4, 6}, 2);             // nothing predicted
        assertEquals(0.75, m.recall(1, 0), 1e-12);
        assertEquals(0.75, m.precision(1, 0), 1e-12);
        assertEquals(0.5, m.setMatch(1, 0), 1e-12);
        assertEquals(1.0, m.recall(1, 1), 1e-12);
        assertEquals(2.0 / 3, m.precision(1, 1), 1e-12);
        assertEquals(0.0, m.setMatch(1, 1), 1e-12);
        assertEquals(0.0, m.recall(1, 2), 1e-12);
        assertTrue(Double.isNaN(m.precision(1, 2)), "no predicted experts: precision undefined");
        // pooled over layers: hits 1+... = (2+1+2+0) / (2+2+2+2), precision 5 / 7, matches 1 of 4
        assertEquals(5.0 / 8, m.recall(1), 1e-12);
        assertEquals(5.0 / 7, m.precision(1), 1e-12);
        assertEquals(0.25, m.setMatch(1), 1e-12);
        assertEquals(4, m.samples(1));
        assertEquals(0, m.samples(2));
        assertTrue(Double.isNaN(m.recall(2)));
        assertNull(((java.util.Map<?, ?>) ((java.util.List<?>) m.toMap().get("lookaheads")).get(1)).get("recall"));
    }

    @Test
    void alignmentPeriods() {
        Alignment a = Alignment.parse("2,3");
        assertEquals(new Alignment(2, 3), a);
        assertTrue(a.alignsToken(0) && !a.alignsToken(1) && a.alignsToken(4));
        assertTrue(!a.kvDue(0, 2) && a.kvDue(0, 3) && a.kvDue(3, 7));
        assertEquals(new Alignment(4, 4), Alignment.parse(" 4 "));
        Alignment off = Alignment.parse("0,0");
        assertTrue(!off.alignsToken(0) && !off.kvDue(0, 1000));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Alignment.parse("1;2"));
        assertTrue(e.getMessage().contains("--align-period"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Alignment.parse("-1"));
    }

    @Test
    void boardReturnsOnlyTheAskedPosition() {
        RoutingBoard b = new RoutingBoard(2, 4);
        RoutingBoard.Entry e5 = new RoutingBoard.Entry(5, 10, 9, new int[] {3, 1}, null);
        b.publish(1, e5);
        assertSame(e5, b.get(5, 1));
        assertNull(b.get(5, 0));
        assertNull(b.get(1, 1), "position 1 shares the ring slot of 5 but is not 5");
        b.publish(1, new RoutingBoard.Entry(9, 11, 10, new int[] {0, 2}, null));
        assertNull(b.get(5, 1), "overwritten by position 9");
        b.publish(0, new RoutingBoard.Entry(6, 1, 1, new int[] {0, 1}, null));
        b.clearFrom(7);
        assertNull(b.get(9, 1));
        assertEquals(6, b.get(6, 0).pos());
    }

    @Test
    void lookaheadCrossesIntoTheNextToken() {
        assertEquals(7, Lookahead.targetPos(7, 2, 3, 6));
        assertEquals(5, Lookahead.targetLayer(2, 3, 6));
        assertEquals(8, Lookahead.targetPos(7, 4, 3, 6));
        assertEquals(1, Lookahead.targetLayer(4, 3, 6));
        assertEquals(Lookahead.step(8, 1, 6), Lookahead.step(7, 4, 6) + 3);
        assertEquals(12, Lookahead.requireDepth(12, 6), "two tokens' worth of layers is allowed");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Lookahead.requireDepth(13, 6));
        assertTrue(e.getMessage().contains("--lookahead"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Lookahead.requireDepth(0, 6));
        assertEquals(1, Lookahead.tokensAhead(1, 6));
        assertEquals(1, Lookahead.tokensAhead(6, 6), "up to the layer count: the next token");
        assertEquals(2, Lookahead.tokensAhead(7, 6), "beyond it the token after");
        assertEquals(2, Lookahead.tokensAhead(12, 6));
    }

    @Test
    void rankingBreaksTiesByLowerId() {
        int[] out = new int[3];
        assertEquals(3, Ranking.top(new float[] {0.1f, 0.5f, 0.5f, 0.2f, 0.5f}, 0, 5, out));
        assertArrayEquals(new int[] {1, 2, 4}, out);
        int[] wide = new int[8];
        assertEquals(2, Ranking.top(new float[] {1, 2}, 0, 2, wide));
        assertArrayEquals(new int[] {1, 0}, Arrays.copyOf(wide, 2));
    }

    @Test
    void nextTokenRules() {
        assertEquals(2, NextTokenRule.ARGMAX.next(0, new float[] {0f, 1f, 3f, 3f}));
        NextTokenRule text = NextTokenRule.text(new int[] {7, 8, 9});
        assertEquals(9, text.next(2, new float[] {0f, 5f}));
        assertEquals(1, text.next(3, new float[] {0f, 5f}), "past the text: greedy");
    }
}
