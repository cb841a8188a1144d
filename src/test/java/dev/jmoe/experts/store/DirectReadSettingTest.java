package dev.jmoe.experts.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** -Djmoe.direct.readKiB: a read size the direct reads cannot take is refused by the setting's name. */
class DirectReadSettingTest {
    private static final String NAME = "jmoe.direct.readKiB";

    @AfterEach
    void clear() {
        System.clearProperty(NAME);
    }

    @Test
    void theReadSizeIsTheDefaultOrAWholeNumberOfAlignedBlocks() {
        assertEquals(DirectStore.PIECE_BYTES, DirectStore.readBytesSetting());
        System.setProperty(NAME, "8");
        assertEquals(8192, DirectStore.readBytesSetting());
    }

    @Test
    void aReadSizeOffTheAlignmentIsRefusedByName() {
        for (String bad : new String[] {"6", "2", "x"}) {
            System.setProperty(NAME, bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, DirectStore::readBytesSetting, bad);
            assertTrue(e.getMessage().startsWith("-D" + NAME + "=" + bad.trim() + ": the setting must be "), e.getMessage());
        }
    }
}
