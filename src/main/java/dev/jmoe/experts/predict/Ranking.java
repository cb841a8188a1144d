package dev.jmoe.experts.predict;

/** Ranks expert ids by score, as routers do: higher score first, lower id first on ties. */
public final class Ranking {
    private Ranking() {}

    /** Writes the best {@code min(out.length, n)} of {@code scores[off .. off+n)} into {@code out}; returns the count. */
    public static int top(float[] scores, int off, int n, int[] out) {
        int w = Math.min(out.length, n);
        for (int j = 0; j < w; j++) {
            int best = -1;
            float bestScore = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < n; e++) {
                float s = scores[off + e];
                if ((best < 0 || s > bestScore) && !contains(out, j, e)) {
                    best = e;
                    bestScore = s;
                }
            }
            out[j] = best;
        }
        return w;
    }

    static boolean contains(int[] a, int n, int v) {
        for (int i = 0; i < n; i++) if (a[i] == v) return true;
        return false;
    }
}
