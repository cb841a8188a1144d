package dev.jmoe.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** jmoe bench --memory-limit values: sizes, or a share of the model file. */
class LimitBenchTest {
    @Test
    void limitsAreSizesOrPercentagesOfTheModel() {
        assertEquals(400_000_000L, LimitBench.parseLimit("400MB", 1));
        assertEquals(512L << 20, LimitBench.parseLimit("512MiB", 1));
        assertEquals(2_000_000_000L, LimitBench.parseLimit(" 2G ", 1));
        assertEquals(463_470_627L, LimitBench.parseLimit("60%", 772_451_045L));
    }

    @Test
    void badLimitsSayWhatIsExpected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LimitBench.parseLimit("lots", 1));
        assertTrue(e.getMessage().contains("expected a size (400MB, 512MiB) or a percentage of the model (60%)"), e.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LimitBench.parseLimit("1MB", 1)).getMessage().contains("below 16 MiB"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LimitBench.parseLimit("0%", 1 << 30)).getMessage().contains("positive"));
    }
}
