package dev.jmoe.cli;

/**
 * What "same" means in every table of the measuring commands, defined once: of the tokens a configuration generated
 * greedily, how many equal the resident run's before the first difference (a continuation that parts once is different
 * from there on, whatever it does after).
 */
final class Same {
    private Same() {}

    /** The legend tables print. */
    static final String MEANING = "same = greedy tokens identical to the resident run's before the first difference, of all generated";

    /** Tokens of {@code run} equal to {@code resident}'s before the first difference. */
    static int prefix(int[] resident, int[] run) {
        int i = 0;
        while (i < Math.min(resident.length, run.length) && resident[i] == run[i]) i++;
        return i;
    }

    /** "yes" when everything is the same, else "same/total". */
    static String describe(int same, int total) {
        return same == total ? "yes" : same + "/" + total;
    }
}
