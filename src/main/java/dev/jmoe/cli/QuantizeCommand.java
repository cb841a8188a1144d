package dev.jmoe.cli;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.model.FileType;
import dev.jmoe.model.Quantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code jmoe quantize IN OUT TYPE}: re-encode a model's weight matrices (like llama-quantize). */
@Command(name = "quantize", description = "Write a copy of a GGUF model with its weight matrices in another type.")
final class QuantizeCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Parameters(index = "0", paramLabel = "IN") Path in;
    @Parameters(index = "1", paramLabel = "OUT") Path out;
    @Parameters(index = "2", paramLabel = "TYPE", description = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K") String type;
    @Option(names = "--force", description = "overwrite OUT if it exists") boolean force;

    @Override
    public Integer call() throws Exception {
        FileType ft = FileType.parse(type);
        if (in.toAbsolutePath().normalize().equals(out.toAbsolutePath().normalize())) throw new IllegalArgumentException("IN and OUT are the same file");
        if (Files.exists(out) && !force) throw new IllegalArgumentException(out + " exists; pass --force to overwrite it");
        long t0 = System.nanoTime();
        try (GgufFile f = GgufFile.open(in); Status status = new Status("quantizing", false)) {
            Quantizer.quantize(f, ft, out, (done, total) -> status.update(done, total, "tensors"));
        }
        spec.commandLine().getOut().printf("wrote %s (%s, %s) in %.1f s%n", out, ft, Units.bytes(Files.size(out)), (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
