package dev.jmoe.cli;

import dev.jmoe.model.StackedExperts;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.Model;
import dev.jmoe.generate.ModelCheck;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe inspect MODEL}: what a GGUF file holds and how its bytes split into experts and the rest. */
@Command(name = "inspect", description = "Show a model's architecture, hyperparameters, tensors and expert sizes.")
final class InspectCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "GGUF file")
    Path positionalModel;

    @Option(names = {"-m", "--model"}, paramLabel = "FILE", description = "GGUF file (same as MODEL)")
    Path modelOption;

    @Option(names = "--metadata", description = "also list every metadata key")
    boolean metadata;

    @Option(names = "--no-tensors", description = "omit the tensor table")
    boolean noTensors;

    @Override
    public Integer call() throws Exception {
        if (positionalModel != null && modelOption != null) throw new IllegalArgumentException("give the model either as MODEL or with -m, not both");
        Path model = positionalModel != null ? positionalModel : modelOption;
        if (model == null) throw new IllegalArgumentException("give the model file: jmoe inspect MODEL (or -m MODEL)");
        PrintWriter out = spec.commandLine().getOut();
        try (GgufFile file = GgufFile.open(model)) {
            out.printf("file: %s (GGUF v%d, %s, %d tensors, %d metadata keys, alignment %d)%n", model, file.version(),
                    Units.bytes(java.nio.file.Files.size(model)), file.tensors().size(), file.metadata().size(), file.alignment());
            String arch = file.getString("general.architecture", "?");
            out.printf("architecture: %s   name: %s%n", arch, file.getString("general.name", "-"));
            if (metadata) {
                out.println("metadata:");
                for (Map.Entry<String, GgufValue> kv : file.metadata().entrySet()) {
                    out.printf("  %-48s %s%n", kv.getKey(), kv.getValue());
                }
            }
            // what a run would check: the model, the tokenizer, their agreement, the chat template
            ModelCheck.Report check = ModelCheck.check(file);
            Model m = check.model();
            if (m != null) printModel(out, m);
            for (String note : check.notes()) out.println("note: " + note);
            for (String problem : check.problems()) out.println("problem: " + problem);
            if (!noTensors) {
                out.println("tensors:");
                out.printf("  %-36s %-6s %-24s %12s%n", "name", "type", "shape", "bytes");
                for (GgufTensorInfo t : file.tensors()) {
                    out.printf("  %-36s %-6s %-24s %12d%n", t.name(), t.type(), Arrays.toString(t.dims()), t.byteSize());
                }
            }
            out.flush();
            if (!check.runnable()) {
                spec.commandLine().getErr().println("jmoe: error: jmoe cannot run " + model + ": " + String.join("; ", check.problems()));
                return 1;
            }
        }
        return 0;
    }

    private static void printModel(PrintWriter out, Model m) {
        Hyperparams hp = m.hyperparams();
        out.printf("layers %d, n_embd %d, heads %d (kv %d, head_dim %d, rope dims %d, %s), vocab %d, context %d%n",
                hp.nLayer(), hp.nEmbd(), hp.nHead(), hp.nHeadKv(), hp.headDim(), hp.nRot(), m.spec().rope(), hp.nVocab(), hp.contextLength());
        out.printf("rms eps %g, rope theta %g, rope freq scale %g%n", hp.rmsEps(), hp.ropeTheta(), hp.ropeFreqScale());
        long total = 0;
        for (GgufTensorInfo t : m.file().tensors()) total += t.byteSize();
        if (hp.hasExperts() && m.spec().moe()) {
            out.printf("experts: %d per layer, %d active per token (routing: softmax, top-k%s%s), expert ff %d%n",
                    hp.nExpert(), hp.nExpertUsed(), m.spec().renormTopK() ? ", renormalised" : ", not renormalised",
                    m.spec().sharedExpert() ? ", + sigmoid-gated shared expert of ff " + hp.nFfShared() : "", hp.nFfExpert());
            StackedExperts first = m.stackedExperts().stream().filter(s -> s != null).findFirst().orElse(null);
            long expertBytes = m.expertBytes();
            if (first != null) {
                out.printf("bytes per expert: %s (gate %s, up %s, down %s)%n", Units.bytes(first.expertBytes()),
                        first.gate().type(), first.up().type(), first.down().type());
            }
            out.printf("expert bytes: %s (%.1f%%)   non-expert bytes: %s   total: %s%n", Units.bytes(expertBytes),
                    100.0 * expertBytes / total, Units.bytes(total - expertBytes), Units.bytes(total));
            long active = first == null ? 0 : first.expertBytes() * hp.nExpertUsed() * hp.nLayer();
            out.printf("expert bytes read per token: %s (%d of %d experts per layer)%n", Units.bytes(active), hp.nExpertUsed(), hp.nExpert());
        } else {
            out.printf("dense model (no experts), total weight bytes: %s%n", Units.bytes(total));
        }
    }
}
