package dev.jmoe.cli;

import java.nio.file.Path;

/** The model given as a positional argument or with -m (not both). */
final class ModelArgs {
    private ModelArgs() {}

    static void positional(ModelOptions o, Path positional) {
        if (positional == null) return;
        if (o.model != null) throw new IllegalArgumentException("give the model either as MODEL or with -m, not both");
        o.model = positional;
    }
}
