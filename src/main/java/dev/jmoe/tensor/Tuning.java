package dev.jmoe.tensor;

/**
 * The {@code -Djmoe.…} settings of the pool, the kernels and the expert store's reads, for measuring (passed through
 * {@code JMOE_JAVA_OPTS}).
 * A value that is not an integer, or is out of range, is an error that names the setting, not a
 * silent fall-back to the default or an error about something else.
 */
public final class Tuning {
    private Tuning() {}

    /** System property {@code name} as an integer of at least {@code min}, or {@code otherwise} when it is not set. */
    public static int intSetting(String name, int otherwise, int min) {
        String value = System.getProperty(name);
        if (value == null) return otherwise;
        try {
            int v = Integer.parseInt(value.trim());
            if (v >= min) return v;
        } catch (NumberFormatException e) {
            // reported below, with the range
        }
        throw new IllegalArgumentException("-D" + name + "=" + value + ": the setting must be an integer >= " + min);
    }
}
