package dev.jmoe.model;

import dev.jmoe.gguf.GgufException;
import dev.jmoe.gguf.GgufFile;
import dev.jmoe.gguf.GgufTensorInfo;
import dev.jmoe.tensor.GgmlType;
import dev.jmoe.tensor.Kernels;
import dev.jmoe.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.List;

/**
 * Builds a {@link Model} from a GGUF file: picks the {@link ArchSpec} from {@code general.architecture},
 * reads the hyperparameters, and finds every tensor the spec calls for. All problems with tensors are
 * collected and reported together, so a user sees the full list of what is missing or misshapen.
 */
final class ModelLoader {
    private final GgufFile file;
    private final List<String> problems = new ArrayList<>();

    private ModelLoader(GgufFile file) {
        this.file = file;
    }

    static Model load(GgufFile file) {
        try {
            return new ModelLoader(file).load();
        } catch (GgufException e) {
            // A metadata key of the wrong type or out of range: the message already names the file and the key.
            throw new ModelException(e.getMessage(), e);
        }
    }

    private Model load() {
        String archName = file.getString("general.architecture", null);
        if (archName == null) throw new ModelException(file.path() + ": metadata key 'general.architecture' is missing");
        ArchSpec spec = ArchSpec.forName(archName);

        GgufTensorInfo embdInfo = file.tensor("token_embd.weight");
        if (embdInfo == null) throw new ModelException(file.path() + ": tensor 'token_embd.weight' is missing");
        if (embdInfo.dims().length != 2 || embdInfo.dim(1) < 1 || embdInfo.dim(1) > Integer.MAX_VALUE) {
            throw new ModelException(file.path() + ": tensor 'token_embd.weight' has shape " + Arrays.toString(embdInfo.dims())
                    + "; expected [embedding_length, vocabulary size]");
        }
        int nVocab = (int) embdInfo.dim(1);
        Hyperparams hp = Hyperparams.read(file, archName, nVocab);
        checkAgainstFile(hp, archName, embdInfo);

        boolean moe = spec.moe() && hp.nExpert() > 0;
        if (spec.moe() && !moe) {
            if (!spec.name().equals("llama")) {
                throw new ModelException(file.path() + ": architecture '" + archName + "' needs " + archName + ".expert_count > 0");
            }
            spec = spec.dense(); // plain llama: same graph without experts
        }
        if (moe && hp.nExpertUsed() <= 0) {
            throw new ModelException(file.path() + ": " + archName + ".expert_used_count must be at least 1");
        }

        Matrix tokenEmbd = matrix("token_embd.weight", hp.nVocab(), hp.nEmbd());
        float[] outputNorm = vector("output_norm.weight", hp.nEmbd());
        Matrix output = file.tensor("output.weight") != null ? matrix("output.weight", hp.nVocab(), hp.nEmbd()) : tokenEmbd;
        float[] ropeFreqs = file.tensor("rope_freqs.weight") != null ? vector("rope_freqs.weight", hp.nRot() / 2) : null;

        LayerWeights[] layers = new LayerWeights[hp.nLayer()];
        for (int l = 0; l < hp.nLayer(); l++) {
            layers[l] = layer(spec, hp, l, moe);
        }
        if (!problems.isEmpty()) {
            throw new ModelException(file.path() + " (" + archName + "): " + problems.size() + " tensor problem(s):\n  "
                    + String.join("\n  ", problems.subList(0, Math.min(40, problems.size())))
                    + (problems.size() > 40 ? "\n  … and " + (problems.size() - 40) + " more" : ""));
        }
        return new Model(file, spec, hp, tokenEmbd, outputNorm, output, ropeFreqs, layers);
    }

    /**
     * Counts and sizes from the metadata checked against the tensors the file really holds, before anything is
     * allocated from them: a corrupt block_count of 2^31-1 would otherwise size an array of that many layers and
     * then collect a "missing tensor" line for each (minutes and gigabytes before the error).
     */
    private void checkAgainstFile(Hyperparams hp, String arch, GgufTensorInfo embd) {
        if (embd.dim(0) != hp.nEmbd()) {
            throw new ModelException(file.path() + ": " + arch + ".embedding_length is " + hp.nEmbd() + " but token_embd.weight rows hold "
                    + embd.dim(0) + " values");
        }
        Set<Integer> blocks = new HashSet<>();
        for (GgufTensorInfo t : file.tensors()) {
            String name = t.name();
            if (!name.startsWith("blk.")) continue;
            int dot = name.indexOf('.', 4);
            if (dot < 0) continue;
            try {
                blocks.add(Integer.parseInt(name, 4, dot, 10));
            } catch (NumberFormatException e) {
                // not a numbered block: ignored, as a tensor jmoe does not use
            }
        }
        int missing = -1;
        for (int l = 0; l < hp.nLayer() && l <= blocks.size(); l++) {
            if (!blocks.contains(l)) {
                missing = l;
                break;
            }
        }
        if (hp.nLayer() > blocks.size() || missing >= 0) {
            throw new ModelException(file.path() + ": " + arch + ".block_count is " + hp.nLayer() + " but the file holds tensors for "
                    + blocks.size() + " block(s)" + (missing >= 0 ? " and none for blk." + missing : "")
                    + ": the count is corrupt or the file is incomplete");
        }
        // Per-expert tensors (older files) are sized per expert before their shapes are checked: bound the count first.
        if (hp.nExpert() > 0) {
            GgufTensorInfo router = file.tensor("blk.0.ffn_gate_inp.weight");
            long routed = router != null ? router.dim(1) : -1;
            if (router != null ? routed != hp.nExpert() : hp.nExpert() > file.tensors().size()) {
                throw new ModelException(file.path() + ": " + arch + ".expert_count is " + hp.nExpert() + " but "
                        + (router != null ? "blk.0.ffn_gate_inp.weight routes to " + routed + " experts"
                        : "the file has only " + file.tensors().size() + " tensors"));
            }
        }
    }

    private LayerWeights layer(ArchSpec spec, Hyperparams hp, int l, boolean moe) {
        String p = "blk." + l + ".";
        int e = hp.nEmbd();
        float[] attnNorm = vector(p + "attn_norm.weight", e);
        Matrix wq = matrix(p + "attn_q.weight", hp.qDim(), e);
        Matrix wk = matrix(p + "attn_k.weight", hp.kvDim(), e);
        Matrix wv = matrix(p + "attn_v.weight", hp.kvDim(), e);
        Matrix wo = matrix(p + "attn_output.weight", e, hp.qDim());
        float[] bq = null, bk = null, bv = null;
        if (spec.qkvBias()) {
            bq = vector(p + "attn_q.bias", hp.qDim());
            bk = vector(p + "attn_k.bias", hp.kvDim());
            bv = vector(p + "attn_v.bias", hp.kvDim());
        }
        float[] qNorm = null, kNorm = null;
        switch (spec.qkNorm()) {
            case PER_HEAD -> {
                qNorm = vector(p + "attn_q_norm.weight", hp.headDim());
                kNorm = vector(p + "attn_k_norm.weight", hp.headDim());
            }
            case FULL -> {
                qNorm = vector(p + "attn_q_norm.weight", hp.qDim());
                kNorm = vector(p + "attn_k_norm.weight", hp.kvDim());
            }
            case NONE -> { }
        }
        float[] ffnNorm = vector(p + "ffn_norm.weight", e);

        Matrix ffnGate = null, ffnUp = null, ffnDown = null, router = null;
        StackedExperts experts = null;
        float[] sharedGateInp = null;
        Matrix sharedGate = null, sharedUp = null, sharedDown = null;
        if (!moe) {
            int ff = hp.nFf();
            if (ff <= 0) problems.add(hp.arch() + ".feed_forward_length is missing or zero");
            else {
                ffnGate = matrix(p + "ffn_gate.weight", ff, e);
                ffnUp = matrix(p + "ffn_up.weight", ff, e);
                ffnDown = matrix(p + "ffn_down.weight", e, ff);
            }
        } else {
            int n = hp.nExpert();
            router = matrix(p + "ffn_gate_inp.weight", n, e);
            experts = stackedExperts(p, l, n, hp.nFfExpert(), e);
            if (spec.sharedExpert()) {
                int ffs = hp.nFfShared() > 0 ? hp.nFfShared() : inferRows(p + "ffn_gate_shexp.weight");
                sharedGateInp = vector(p + "ffn_gate_inp_shexp.weight", e);
                if (ffs > 0) {
                    sharedGate = matrix(p + "ffn_gate_shexp.weight", ffs, e);
                    sharedUp = matrix(p + "ffn_up_shexp.weight", ffs, e);
                    sharedDown = matrix(p + "ffn_down_shexp.weight", e, ffs);
                }
            }
        }
        return new LayerWeights(attnNorm, wq, wk, wv, wo, bq, bk, bv, qNorm, kNorm, ffnNorm,
                ffnGate, ffnUp, ffnDown, router, experts, sharedGateInp, sharedGate, sharedUp, sharedDown);
    }

    private int inferRows(String name) {
        GgufTensorInfo info = file.tensor(name);
        if (info == null) {
            problems.add("missing tensor " + name);
            return 0;
        }
        return (int) info.dim(1);
    }

    /** Stacked 3-D expert tensors, or (older files) one tensor per expert copied into a stacked layout. */
    private StackedExperts stackedExperts(String p, int layer, int nExpert, int nFf, int nEmbd) {
        if (file.tensor(p + "ffn_gate_exps.weight") == null && file.tensor(p + "ffn_gate.0.weight") != null) {
            return perExpertTensors(p, layer, nExpert, nFf, nEmbd);
        }
        Matrix gate = expertMatrix(p + "ffn_gate_exps.weight", nEmbd, nFf, nExpert);
        Matrix up = expertMatrix(p + "ffn_up_exps.weight", nEmbd, nFf, nExpert);
        Matrix down = expertMatrix(p + "ffn_down_exps.weight", nFf, nEmbd, nExpert);
        if (gate == null || up == null || down == null) return null;
        return new StackedExperts(layer, nExpert, nFf, nEmbd, gate, up, down);
    }

    private StackedExperts perExpertTensors(String p, int layer, int nExpert, int nFf, int nEmbd) {
        Matrix[][] parts = new Matrix[3][nExpert];
        String[] names = {"ffn_gate", "ffn_up", "ffn_down"};
        for (int x = 0; x < nExpert; x++) {
            parts[0][x] = matrix(p + names[0] + "." + x + ".weight", nFf, nEmbd);
            parts[1][x] = matrix(p + names[1] + "." + x + ".weight", nFf, nEmbd);
            parts[2][x] = matrix(p + names[2] + "." + x + ".weight", nEmbd, nFf);
        }
        Matrix[] stacked = new Matrix[3];
        for (int k = 0; k < 3; k++) {
            Matrix first = parts[k][0];
            if (first == null) return null;
            long each = first.byteSize();
            MemorySegment all = Arena.ofAuto().allocate(each * nExpert, 64);
            for (int x = 0; x < nExpert; x++) {
                Matrix m = parts[k][x];
                if (m == null || m.type() != first.type()) {
                    problems.add(p + names[k] + "." + x + ".weight: missing or of a different type than expert 0");
                    return null;
                }
                MemorySegment.copy(m.data(), 0, all, x * each, each);
            }
            stacked[k] = new Matrix(first.type(), all, first.rows() * nExpert, first.cols());
        }
        return new StackedExperts(layer, nExpert, nFf, nEmbd, stacked[0], stacked[1], stacked[2]);
    }

    private Matrix expertMatrix(String name, long cols, long rows, long nExpert) {
        GgufTensorInfo info = file.tensor(name);
        if (info == null) {
            problems.add("missing tensor " + name);
            return null;
        }
        if (info.dims().length != 3 || info.dim(0) != cols || info.dim(1) != rows || info.dim(2) != nExpert) {
            problems.add(name + " has shape " + java.util.Arrays.toString(info.dims()) + ", expected [" + cols + ", " + rows + ", " + nExpert + "]");
            return null;
        }
        // Found by fuzzing: a zero feed-forward length matched a tensor with an empty dimension and reached Matrix as "bad shape 0x32".
        if (cols <= 0 || rows <= 0 || nExpert <= 0 || rows * nExpert > Integer.MAX_VALUE) {
            problems.add(name + " has shape " + java.util.Arrays.toString(info.dims()) + ": every dimension must be positive and the"
                    + " experts' rows together at most " + Integer.MAX_VALUE);
            return null;
        }
        if (!checkType(name, info.type())) return null;
        return new Matrix(info.type(), file.tensorData(info), (int) (rows * nExpert), (int) cols);
    }

    private Matrix matrix(String name, int rows, int cols) {
        GgufTensorInfo info = file.tensor(name);
        if (info == null) {
            problems.add("missing tensor " + name);
            return null;
        }
        if (info.dims().length > 2 || info.dim(0) != cols || info.dim(1) != rows) {
            problems.add(name + " has shape " + java.util.Arrays.toString(info.dims()) + ", expected [" + cols + ", " + rows + "]");
            return null;
        }
        if (rows <= 0 || cols <= 0) {
            problems.add(name + " has shape " + java.util.Arrays.toString(info.dims()) + ": every dimension must be positive");
            return null;
        }
        if (!checkType(name, info.type())) return null;
        return new Matrix(info.type(), file.tensorData(info), rows, cols);
    }

    private float[] vector(String name, int n) {
        GgufTensorInfo info = file.tensor(name);
        if (info == null) {
            problems.add("missing tensor " + name);
            return null;
        }
        if (info.elementCount() != n) {
            problems.add(name + " has " + info.elementCount() + " values, expected " + n);
            return null;
        }
        if (!checkType(name, info.type())) return null;
        float[] out = new float[n];
        Kernels.forType(info.type()).dequantizeRow(file.tensorData(info), 0, out, 0, n);
        for (int i = 0; i < n; i++) {
            if (!Float.isFinite(out[i])) {
                // Norm weights and biases are read whole here, so a corrupt one is named now rather than as NaN logits later.
                problems.add(name + " holds " + out[i] + " at index " + i + " (" + info.type() + " data at file offset "
                        + file.fileOffset(info) + "): corrupt weights, or a tensor of another type");
                return null;
            }
        }
        return out;
    }

    private boolean checkType(String name, GgmlType type) {
        try {
            Kernels.forType(type); // throws, naming the type, when jmoe has no kernel for it
            return true;
        } catch (RuntimeException e) {
            problems.add(name + ": tensor type " + type + " is not supported (" + e.getMessage() + ")");
            return false;
        }
    }
}
