package dev.jmoe.net;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Hidden states and KV entries on the wire: raw little-endian float32, no per-float encoding. Decoding checks the
 * byte count against what the caller expects before allocating anything, and refuses non-finite values (a NaN from a
 * faulty or hostile peer would otherwise spread through the residual stream silently).
 */
public final class Frames {
    private Frames() {}

    /** A bad message from the network: its text says which field is wrong and how. */
    public static final class BadFrame extends RuntimeException {
        public BadFrame(String message) { super(message, null, false, false); }
    }

    /** {@code n} floats of {@code a} from {@code off} as little-endian bytes. */
    public static ByteString encode(float[] a, int off, int n) {
        ByteBuffer b = ByteBuffer.allocate(n * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(a, off, n);
        return ByteString.copyFrom(b.array());
    }

    /**
     * The floats in {@code bytes}, which must be exactly {@code expected} of them and all finite; {@code what} names
     * the field in the error.
     */
    public static float[] decode(ByteString bytes, int expected, String what) {
        if (expected < 0) throw new BadFrame(what + ": negative size");
        if (bytes.size() != (long) expected * Float.BYTES) {
            throw new BadFrame(what + " has " + bytes.size() + " bytes, expected " + (long) expected * Float.BYTES + " (" + expected + " float32)");
        }
        float[] out = new float[expected];
        bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) throw new BadFrame(what + " holds a non-finite value at float " + i);
        }
        return out;
    }

    /** Checks {@code value} is in [lo, hi). */
    public static int index(int value, int lo, int hi, String what) {
        if (value < lo || value >= hi) throw new BadFrame(what + " " + value + " is outside [" + lo + ", " + hi + ")");
        return value;
    }
}
