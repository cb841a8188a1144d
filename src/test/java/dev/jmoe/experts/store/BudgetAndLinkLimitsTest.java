package dev.jmoe.experts.store;

import static org.junit.jupiter.api.Assertions.*;

import dev.jmoe.experts.cache.OffloadConfig;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.Model;
import dev.jmoe.testutil.TestModels;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** Issue #24: expert budgets far above the model or the machine, and emulated links that would sleep without bound. */
class BudgetAndLinkLimitsTest {

    @Test
    void budgetAboveTheModelIsClampedWithANote() throws IOException {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            ExpertLayout layout = ExpertLayout.of(Model.load(f));
            long slot = (layout.maxExpertBytes() + 63) / 64 * 64;
            long experts = 4L * 16;
            long requested = OffloadConfig.parseBudget("2GB", layout.totalBytes());
            MemoryBudget.Fit fit = MemoryBudget.fit(requested, "2GB", layout, 1, 1L << 40);
            assertEquals(slot * (experts + 1), fit.bytes(), "every expert plus the one scratch slot, not 2 GB");
            assertTrue(fit.note().startsWith("--expert-memory 2GB is more than the ") && fit.note().contains("hold all 64 experts"), fit.note());
            MemoryBudget.Fit small = MemoryBudget.fit(slot * 3, "3 slots", layout, 0, 1L << 40);
            assertEquals(slot * 3, small.bytes());
            assertNull(small.note());
        }
    }

    @Test
    void budgetAboveTheMachineIsRefusedWithWhatIsAvailable() throws IOException {
        try (GgufFile f = GgufFile.open(TestModels.qwen2moe())) {
            ExpertLayout layout = ExpertLayout.of(Model.load(f));
            long slot = (layout.maxExpertBytes() + 63) / 64 * 64;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MemoryBudget.fit(slot * 10, "10 experts", layout, 0, slot * 4));
            assertTrue(e.getMessage().startsWith("--expert-memory 10 experts (") && e.getMessage().contains("is more than this machine can give: about "), e.getMessage());
            // On this machine, 100 GB is refused before any allocation (it used to end in an OutOfMemoryError).
            long avail = MemoryBudget.available();
            assertTrue(avail > 0, "available memory is known on Linux");
            long hundredGb = OffloadConfig.parseBudget("100GB", layout.totalBytes());
            if (avail < hundredGb && slot * 64 > avail) {
                assertThrows(IllegalArgumentException.class, () -> MemoryBudget.fit(hundredGb, "100GB", layout, 0));
            }
        }
    }

    @Test
    void budgetTooLargeToCountSaysSo() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OffloadConfig.parseBudget("99999999999999999999", 1000));
        assertEquals("--expert-memory '99999999999999999999' is far more bytes than any machine has (the limit is 2^63)", e.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OffloadConfig.parseBudget("0", 1000)).getMessage().contains("at least one byte"));
    }

    @Test
    void linksThatWouldSleepWithoutBoundAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Link.parse("2GB/s,1000s"));
        assertTrue(e.getMessage().contains("above the longest jmoe emulates (1 s)") && e.getMessage().contains("did you mean us or ms"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Link.parse("2GB/s,99999999999999999999s"));
        e = assertThrows(IllegalArgumentException.class, () -> Link.parse("10B/s"));
        assertTrue(e.getMessage().contains("below the slowest link jmoe emulates"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Link.parse("1e400GB/s"));
        assertTrue(e.getMessage().contains("too large; use 'unlimited'"), e.getMessage());
        assertEquals(1_000_000_000L, Link.parse("100kB/s,1s").latencyNanos(), "the bounds themselves are allowed");
    }
}
