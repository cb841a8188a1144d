package dev.jmoe.net;

import dev.jmoe.experts.store.ExpertLayout;
import dev.jmoe.model.Hyperparams;
import dev.jmoe.model.Model;
import dev.jmoe.net.proto.AlignMessage;
import dev.jmoe.net.proto.ComputeRequest;
import dev.jmoe.net.proto.PrefetchRequest;

/**
 * The nodes' checks of the messages they receive ({@link WorkerNode#checkCompute}, {@link WorkerNode#checkPrefetch},
 * {@link ShadowNode#checkStart}, {@link ShadowNode#checkUpdate}) for tests outside this package, the node-message fuzz
 * target above all. Each returns normally when the node would go on to use the message, throws
 * {@link Frames.BadFrame} where the node answers INVALID_ARGUMENT, and throws an AssertionError when it accepted a
 * message that breaks what the node's handling then relies on (an index past the arrays it writes).
 */
public final class NodeMessageChecks {
    private NodeMessageChecks() {}

    /** A worker serving {@code model}. */
    public static final class Worker {
        private final Hyperparams hp;
        private final ExpertLayout layout;

        public Worker(Model model) {
            this.hp = model.hyperparams();
            this.layout = ExpertLayout.of(model);
        }

        public void compute(ComputeRequest r) {
            WorkerNode.CheckedCompute c = WorkerNode.checkCompute(r, hp, layout);
            if (!layout.hasExperts(c.layer()) || c.expert() < 0 || c.expert() >= hp.nExpert()) throw new AssertionError("accepted expert " + c.layer() + "/" + c.expert());
            if (c.rows() < 1 || c.rows() > WorkerNode.MAX_ROWS || c.input().length != (long) c.rows() * hp.nEmbd()) {
                throw new AssertionError("accepted " + c.input().length + " floats for " + c.rows() + " rows of " + hp.nEmbd());
            }
        }

        public void prefetch(PrefetchRequest r) {
            int[] experts = WorkerNode.checkPrefetch(r, hp, layout);
            if (!layout.hasExperts(r.getLayer()) || experts.length < 1 || experts.length > hp.nExpert()) throw new AssertionError("accepted " + experts.length + " experts");
            for (int e : experts) if (e < 0 || e >= hp.nExpert()) throw new AssertionError("accepted expert " + e);
        }
    }

    /** A shadow of a model of this shape; its KV mirror holds {@code nLayer} layers of {@code kvDim} floats per position. */
    public static final class Shadow {
        private final String shape;
        private final int nLayer, kvDim, nVocab;
        private int context = -1;

        public Shadow(String shape, int nLayer, int kvDim, int nVocab) {
            this.shape = shape;
            this.nLayer = nLayer;
            this.kvDim = kvDim;
            this.nVocab = nVocab;
        }

        public Shadow(Model model) {
            this(ModelFingerprint.shape(model), model.hyperparams().nLayer(), model.hyperparams().kvDim(), model.hyperparams().nVocab());
        }

        public String shape() { return shape; }

        /** The next message of one Follow stream, as the shadow takes it (the first one starts the stream). */
        public void next(AlignMessage m) {
            if (context < 0) context = ShadowNode.checkStart(m, shape).context();
            ShadowNode.Update u = ShadowNode.checkUpdate(m, nLayer, kvDim, nVocab, context);
            if (u.kvCount() > 0) {
                if (u.kvFrom() < 0 || (long) u.kvFrom() + u.kvCount() > context) throw new AssertionError("accepted KV positions " + u.kvFrom() + "+" + u.kvCount());
                long need = (long) u.kvCount() * nLayer * 2 * kvDim;
                if (u.kv().length != need) throw new AssertionError("accepted " + u.kv().length + " KV floats for " + u.kvCount() + " positions (" + need + " needed)");
            }
            if (u.tokens().length > 0) {
                if (u.position() < 0 || (long) u.position() + u.tokens().length > context) throw new AssertionError("accepted tokens at " + u.position());
                for (int t : u.tokens()) if (t < 0 || t >= nVocab) throw new AssertionError("accepted token " + t);
            }
        }
    }
}
