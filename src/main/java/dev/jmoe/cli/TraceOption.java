package dev.jmoe.cli;

import dev.jmoe.experts.trace.RoutingTraceFile;
import dev.jmoe.model.InferenceState;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --trace FILE}: record the run's routing (docs/trace-format.md) for {@code jmoe replay}. */
final class TraceOption {
    @Option(names = "--trace", paramLabel = "FILE", description = "record every MoE layer's routing (layer, position, chosen experts, router scores) as JSON Lines; replay it with jmoe replay")
    Path trace;

    /**
     * Starts recording on {@code st} (closed with the model), or does nothing without --trace. Call before
     * installing offloading, so the trace holds the router's own choice, not a substituted one.
     */
    RoutingTraceFile.Recorder install(LoadedModel lm, InferenceState st) throws IOException {
        if (trace == null) return null;
        RoutingTraceFile.Recorder r = new RoutingTraceFile.Recorder(st, trace, lm.path.toString());
        lm.closeFirst(r);
        return r;
    }
}
