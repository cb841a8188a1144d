package dev.jmoe.experts.predict;

/** Predicts nothing: every expert is loaded when the router asks for it (the on-demand baseline). */
public final class NoPredictor implements ExpertPredictor {
    @Override public String name() { return "none"; }

    @Override public int predict(int pos, int layer, int distance, int[] out) { return 0; }
}
