package dev.jmoe.model;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.gguf.GgufValue;
import dev.jmoe.gguf.GgufWriter;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.TypeKernel;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.function.BiConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Re-encodes a GGUF model's weight matrices with a {@link FileType} recipe (like llama-quantize): each
 * row is decoded to float and encoded in the new type; metadata and 1-D tensors are copied as they are;
 * routers and norms stay F32.
 */
public final class Quantizer {
    private static final Pattern BLOCK = Pattern.compile("^blk\\.(\\d+)\\.(.+)\\.weight$");

    private Quantizer() {}

    public static void quantize(GgufFile in, FileType ft, Path out, BiConsumer<Integer, Integer> progress) throws IOException {
        String arch = in.getString("general.architecture", "");
        int nLayer = in.getInt(arch + ".block_count", 1);
        int nExpert = in.getInt(arch + ".expert_count", 0);
        GgufWriter w = new GgufWriter();
        in.metadata().forEach(w::put);
        w.put("general.file_type", GgufValue.ofU32(ft.id()));
        for (GgufTensorInfo t : in.tensors()) {
            GgmlType target = targetType(t, ft, nLayer, nExpert);
            if (target == t.type()) {
                w.addTensor(t.name(), t.type(), t.dims(), () -> in.tensorData(t));
                continue;
            }
            TypeKernel from = Kernels.forType(t.type()), to = Kernels.forType(target);
            if (!to.canQuantize()) throw new IllegalArgumentException("jmoe cannot encode " + target + " (needed for " + t.name() + ")");
            int cols = (int) t.dim(0);
            long rows = t.elementCount() / cols;
            long inRow = t.type().bytesFor(cols), outRow = target.bytesFor(cols);
            w.addTensor(t.name(), target, t.dims(), () -> {
                MemorySegment src = in.tensorData(t);
                MemorySegment dst = Arena.ofAuto().allocate(outRow * rows, 64);
                float[] row = new float[cols];
                for (long r = 0; r < rows; r++) {
                    from.dequantizeRow(src, r * inRow, row, 0, cols);
                    to.quantizeRow(row, 0, cols, dst, r * outRow);
                }
                return dst;
            });
        }
        if (progress != null) {
            int total = in.tensors().size();
            int[] done = {0};
            w.onTensorWritten(() -> progress.accept(++done[0], total));
        }
        w.write(out);
    }

    /** The type a tensor gets under the recipe: matrices follow {@link FileType#matrixType}; the rest stay. */
    static GgmlType targetType(GgufTensorInfo t, FileType ft, int nLayer, int nExpert) {
        String name = t.name();
        if (t.dims().length < 2 || !name.endsWith(".weight")) return t.type();
        if (name.contains("ffn_gate_inp") || name.contains("_norm")) return t.type();
        Matcher m = BLOCK.matcher(name);
        int layer = -1;
        String role = name.substring(0, name.length() - ".weight".length());
        if (m.matches()) {
            layer = Integer.parseInt(m.group(1));
            role = m.group(2);
        }
        return ft.matrixType(role, layer, nLayer, nExpert, t.dim(0));
    }
}
