package dev.jmoe.net;

import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.Model;
import dev.jmoe.model.StackedExperts;
import dev.jmoe.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.zip.CRC32;

/**
 * What two nodes must agree on before one computes experts for the other: the architecture, the shapes, each layer's
 * expert tensor types, and a checksum of a sample of every layer's expert bytes (the first and last 4 KiB of each
 * stacked tensor), so a worker holding another file of the same shape (another seed, another quantization) is
 * refused instead of computing wrong results.
 */
public final class ModelFingerprint {
    private ModelFingerprint() {}

    private static final long SAMPLE = 4096;

    public static String of(Model model) {
        Hyperparams hp = model.hyperparams();
        StringBuilder sb = new StringBuilder();
        sb.append(model.spec().name()).append(" L").append(hp.nLayer()).append(" E").append(hp.nEmbd()).append(" X").append(hp.nExpert())
                .append("k").append(hp.nExpertUsed()).append(" F").append(hp.nFfExpert());
        CRC32 crc = new CRC32();
        for (StackedExperts se : model.stackedExperts()) {
            if (se == null) continue;
            sb.append(' ').append(se.gate().type()).append('/').append(se.up().type()).append('/').append(se.down().type());
            for (Matrix m : new Matrix[]{se.gate(), se.up(), se.down()}) sample(m.data(), crc);
        }
        return sb.append(" crc").append(Long.toHexString(crc.getValue())).toString();
    }

    /**
     * The shape alone (architecture, layers, widths, experts, vocabulary): what a shadow must share with its main model
     * (its weights are another precision of the same model, so types and bytes differ).
     */
    public static String shape(Model model) {
        Hyperparams hp = model.hyperparams();
        return model.spec().name() + " L" + hp.nLayer() + " E" + hp.nEmbd() + " KV" + hp.kvDim() + " X" + hp.nExpert() + "k" + hp.nExpertUsed()
                + " F" + hp.nFfExpert() + " V" + hp.nVocab();
    }

    /** Short form for messages. */
    public static String shortForm(String fingerprint) {
        int cut = fingerprint.indexOf(' ', fingerprint.indexOf(" F") + 1);
        return cut < 0 ? fingerprint : fingerprint.substring(0, cut) + " …" + fingerprint.substring(fingerprint.lastIndexOf(' '));
    }

    private static void sample(MemorySegment data, CRC32 crc) {
        long n = data.byteSize();
        byte[] head = data.asSlice(0, Math.min(SAMPLE, n)).toArray(ValueLayout.JAVA_BYTE);
        crc.update(head);
        if (n > SAMPLE) crc.update(data.asSlice(Math.max(SAMPLE, n - SAMPLE)).toArray(ValueLayout.JAVA_BYTE));
    }
}
