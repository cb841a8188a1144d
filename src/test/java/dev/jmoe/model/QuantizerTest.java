package dev.jmoe.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.testutil.Reference;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * jmoe's quantizer against llama-quantize's output. Q8_0 and Q4_0 encoding is idempotent (the scale comes
 * back from the block's extreme value exactly), so decoding llama.cpp's file to F32 and encoding it again
 * with jmoe must give llama.cpp's bytes back, tensor for tensor — and the recipe must give every tensor
 * the type llama-quantize chose. (K-quant tensors, whose encoders search scales, are compared by type only.)
 */
class QuantizerTest {
    @TempDir Path dir;

    @ParameterizedTest
    @CsvSource({"Q8_0, tiny_mixtral_q8_0", "Q4_0, tiny_mixtral_q4_0"})
    void reEncodingLlamaCppsFileGivesItsBytesBack(String type, String reference) throws Exception {
        Path f32 = dir.resolve("f32.gguf"), again = dir.resolve(type + ".gguf");
        try (GgufFile ref = GgufFile.open(Reference.model(reference))) {
            Quantizer.quantize(ref, FileType.F32, f32, null);
        }
        try (GgufFile dequantized = GgufFile.open(f32)) {
            Quantizer.quantize(dequantized, FileType.parse(type), again, null);
        }
        try (GgufFile ours = GgufFile.open(again); GgufFile ref = GgufFile.open(Reference.model(reference))) {
            assertEquals(ref.tensors().size(), ours.tensors().size());
            for (GgufTensorInfo r : ref.tensors()) {
                GgufTensorInfo o = ours.tensor(r.name());
                assertEquals(r.type(), o.type(), r.name());
                // K-quant encoders search scales; jmoe's search is simpler than llama.cpp's, so only the legacy types are byte-exact
                if (r.type().blockSize() == 256) continue;
                long at = ours.tensorData(o).mismatch(ref.tensorData(r));
                assertEquals(-1, at, r.name() + " (" + r.type() + ") differs from llama-quantize's at byte " + at);
            }
        }
    }
}
