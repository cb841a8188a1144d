package dev.jmoe.gguf;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * An ARRAY value: element type plus elements (which are themselves GgufArray for nested arrays).
 * Elements are boxed like {@link GgufValue#value()} (raw bits for unsigned types). The list is immutable;
 * numeric elements are stored unboxed, so prefer the bulk {@code to...Array()} conversions for large arrays.
 * Conversions throw {@link GgufException} when an element does not fit the requested type.
 */
public record GgufArray(GgufValueType elementType, List<Object> elements) {

    public GgufArray {
        Objects.requireNonNull(elementType, "elementType");
        Objects.requireNonNull(elements, "elements");
        if (!(elements instanceof ElementList el && el.type() == elementType)) {
            elements = ElementList.copyOf(elementType, elements);
        }
    }

    /** Wraps a backing array without copying (reader and factories hand over fresh arrays). */
    static GgufArray wrap(GgufValueType type, Object backingArray) {
        return new GgufArray(type, new ElementList(type, backingArray));
    }

    public static GgufArray ofStrings(List<String> strings) {
        return wrap(GgufValueType.STRING, strings.toArray(new String[0]));
    }

    public static GgufArray ofInt32(int... values) { return wrap(GgufValueType.INT32, values.clone()); }
    /** UINT32 elements given as raw bits. */
    public static GgufArray ofUint32(int... values) { return wrap(GgufValueType.UINT32, values.clone()); }
    public static GgufArray ofInt64(long... values) { return wrap(GgufValueType.INT64, values.clone()); }
    public static GgufArray ofFloat32(float... values) { return wrap(GgufValueType.FLOAT32, values.clone()); }
    public static GgufArray ofFloat64(double... values) { return wrap(GgufValueType.FLOAT64, values.clone()); }
    public static GgufArray ofBool(boolean... values) { return wrap(GgufValueType.BOOL, values.clone()); }
    public static GgufArray ofArrays(GgufArray... arrays) { return wrap(GgufValueType.ARRAY, arrays.clone()); }

    public int size() { return elements.size(); }

    public Object get(int i) { return elements.get(i); }

    private ElementList list() { return (ElementList) elements; }

    /** Integer elements of any width, widened; a UINT64 above Long.MAX_VALUE is an error. */
    public long[] toLongArray() {
        requireInteger();
        ElementList l = list();
        if (l.backing() instanceof long[] a) {
            if (elementType == GgufValueType.UINT64) {
                for (int i = 0; i < a.length; i++) {
                    if (a[i] < 0) throw outOfRange(i, Long.toUnsignedString(a[i]), "long");
                }
            }
            return a.clone();
        }
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) out[i] = l.rawLong(i);
        return out;
    }

    /** Integer elements of any width; an element outside the int range is an error. */
    public int[] toIntArray() {
        requireInteger();
        ElementList l = list();
        if (elementType == GgufValueType.INT32) return ((int[]) l.backing()).clone();
        int[] out = new int[l.size()];
        for (int i = 0; i < out.length; i++) {
            long v = l.rawLong(i);
            if (v != (int) v || (elementType == GgufValueType.UINT64 && v < 0)) {
                throw outOfRange(i, elementType == GgufValueType.UINT64 ? Long.toUnsignedString(v) : Long.toString(v), "int");
            }
            out[i] = (int) v;
        }
        return out;
    }

    /** Numeric elements of any type, converted to float. */
    public float[] toFloatArray() {
        requireNumeric();
        ElementList l = list();
        if (elementType == GgufValueType.FLOAT32) return ((float[]) l.backing()).clone();
        float[] out = new float[l.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) l.numeric(i);
        return out;
    }

    /** Numeric elements of any type, converted to double. */
    public double[] toDoubleArray() {
        requireNumeric();
        ElementList l = list();
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) out[i] = l.numeric(i);
        return out;
    }

    public boolean[] toBoolArray() {
        if (elementType != GgufValueType.BOOL) throw new GgufException("array of " + elementType + " is not an array of BOOL");
        return ((boolean[]) list().backing()).clone();
    }

    /** The elements of a STRING array, as an unmodifiable list (no copy). */
    public List<String> toStringList() {
        if (elementType != GgufValueType.STRING) throw new GgufException("array of " + elementType + " is not an array of STRING");
        return Collections.unmodifiableList(Arrays.asList((String[]) list().backing()));
    }

    private void requireInteger() {
        if (!elementType.isInteger()) throw new GgufException("array of " + elementType + " is not an array of integers");
    }

    private void requireNumeric() {
        if (!elementType.isNumeric()) throw new GgufException("array of " + elementType + " is not an array of numbers");
    }

    private GgufException outOfRange(int index, String value, String javaType) {
        return new GgufException("element " + index + " of the " + elementType + " array (" + value + ") does not fit in an " + javaType);
    }

    /** Element type, count and the first few elements. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[").append(elementType).append(" x").append(size());
        int shown = Math.min(size(), 5);
        for (int i = 0; i < shown; i++) {
            sb.append(i == 0 ? ": " : ", ").append(GgufValue.format(elementType, get(i)));
        }
        if (shown < size()) sb.append(", ...");
        return sb.append(']').toString();
    }
}
