package dev.jmoe.tensor;

/**
 * Per-thread working arrays that grow to the largest size asked for and are then reused: the kernels call these on every
 * product, where a fresh array each time was gigabytes of garbage per run.
 */
final class ThreadArrays {
    private ThreadArrays() {
    }

    /** This thread's array in {@code local}, replaced by a longer one when it holds fewer than n floats. */
    static float[] floats(ThreadLocal<float[]> local, int n) {
        float[] a = local.get();
        if (a == null || a.length < n) {
            a = new float[n];
            local.set(a);
        }
        return a;
    }

    /** This thread's array in {@code local}, replaced by a longer one when it holds fewer than n shorts. */
    static short[] shorts(ThreadLocal<short[]> local, int n) {
        short[] a = local.get();
        if (a == null || a.length < n) {
            a = new short[n];
            local.set(a);
        }
        return a;
    }
}
