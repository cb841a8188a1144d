package dev.jmoe.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class TuningTest {
    private static final String NAME = "jmoe.test.tuningSetting";

    @AfterEach
    void clear() {
        System.clearProperty(NAME);
    }

    @Test
    void anUnsetSettingTakesItsDefaultAndASetOneItsValue() {
        assertEquals(16, Tuning.intSetting(NAME, 16, 1));
        System.setProperty(NAME, " 3 ");
        assertEquals(3, Tuning.intSetting(NAME, 16, 1));
        System.setProperty(NAME, "0");
        assertEquals(0, Tuning.intSetting(NAME, 16, 0));
    }

    @Test
    void aValueThatIsNoIntegerOrBelowTheRangeIsRefusedByName() {
        for (String bad : new String[] {"0", "-2", "abc", "", "2.5", "99999999999"}) {
            System.setProperty(NAME, bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tuning.intSetting(NAME, 16, 1), bad);
            assertTrue(e.getMessage().startsWith("-D" + NAME + "=" + bad + ": "), e.getMessage());
            assertTrue(e.getMessage().contains(">= 1"), e.getMessage());
        }
    }
}
