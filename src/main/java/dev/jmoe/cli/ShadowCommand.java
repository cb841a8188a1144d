package dev.jmoe.cli;

import dev.jmoe.experts.predict.PredictorSettings;
import dev.jmoe.net.ShadowNode;
import dev.jmoe.tensor.GgmlType;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code jmoe shadow}: the shadow node of distributed OD-MoE (see {@link ShadowNode}). */
@Command(name = "shadow", description = {"Runs a lower-precision copy of the model ahead of a main node and streams its expert predictions",
        "(distributed OD-MoE, docs/distributed.md)."})
final class ShadowCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--listen", required = true, paramLabel = "HOST:PORT", description = "address to serve on (port 0: any free port, printed)")
    String listen;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "FILE",
            description = "the shadow model (GGUF), or with --shadow the main model to make the shadow from")
    Path model;

    @Option(names = "--shadow", paramLabel = "TYPE", description = "make the shadow from -m at this precision (q8_0, q4_0 …) instead of using -m as it is")
    String shadowType;

    @ArgGroup(validate = false, exclusive = false, heading = "%nNode security:%n") NodeOptions node = new NodeOptions();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        WorkerCommand.Listen at = WorkerCommand.Listen.parse(listen);
        GgmlType type = shadowType != null ? PredictorSettings.parseShadowType(shadowType) : null;
        ShadowNode node = ShadowNode.open(model, type, at.host(), at.port(), this.node.security());
        Runtime.getRuntime().addShutdownHook(new Thread(node::close));
        out.println("jmoe shadow: listening on " + at.host() + ":" + node.port());
        out.println("jmoe shadow: " + node.describe() + ", " + this.node.security().describe());
        out.flush();
        node.awaitTermination();
        return 0;
    }
}
