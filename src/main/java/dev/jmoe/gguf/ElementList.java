package dev.jmoe.gguf;

import java.util.AbstractList;
import java.util.List;
import java.util.RandomAccess;

/**
 * Immutable list view over one primitive (or String / GgufArray) array. Keeping numeric metadata arrays
 * unboxed matters for vocabularies: 150k token scores stay a float[] instead of 150k Float objects, and
 * a hostile file cannot make the heap grow much faster than the file is long.
 */
final class ElementList extends AbstractList<Object> implements RandomAccess {
    private final GgufValueType type;
    private final Object array;
    private final int size;

    /** Wraps without copying; {@code array} must be the backing array kind for {@code type} and must not be shared. */
    ElementList(GgufValueType type, Object array) {
        this.type = type;
        this.array = array;
        this.size = switch (array) {
            case byte[] a -> a.length;
            case short[] a -> a.length;
            case int[] a -> a.length;
            case long[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case boolean[] a -> a.length;
            case Object[] a -> a.length;
            default -> throw new IllegalArgumentException("not an array: " + array.getClass());
        };
        if (array instanceof Object[] a) {
            for (int i = 0; i < a.length; i++) {
                if (a[i] == null) throw new IllegalArgumentException("element " + i + " of a " + type + " array is null");
            }
        }
        if (array.getClass() != backingClass(type)) {
            throw new IllegalArgumentException(type + " elements need a " + backingClass(type).getSimpleName()
                    + ", got " + array.getClass().getSimpleName());
        }
    }

    static Class<?> backingClass(GgufValueType type) {
        return switch (type) {
            case UINT8, INT8 -> byte[].class;
            case UINT16, INT16 -> short[].class;
            case UINT32, INT32 -> int[].class;
            case UINT64, INT64 -> long[].class;
            case FLOAT32 -> float[].class;
            case FLOAT64 -> double[].class;
            case BOOL -> boolean[].class;
            case STRING -> String[].class;
            case ARRAY -> GgufArray[].class;
        };
    }

    /** Copies {@code elements} into a fresh backing array, checking every element's Java class. */
    static ElementList copyOf(GgufValueType type, List<?> elements) {
        int n = elements.size();
        Class<?> want = type.javaClass();
        for (int i = 0; i < n; i++) {
            Object e = elements.get(i);
            if (!want.isInstance(e)) {
                throw new IllegalArgumentException("element " + i + " of a " + type + " array must be a "
                        + want.getSimpleName() + ", got " + (e == null ? "null" : e.getClass().getSimpleName()));
            }
        }
        Object array = switch (type) {
            case UINT8, INT8 -> { byte[] a = new byte[n]; for (int i = 0; i < n; i++) a[i] = (Byte) elements.get(i); yield a; }
            case UINT16, INT16 -> { short[] a = new short[n]; for (int i = 0; i < n; i++) a[i] = (Short) elements.get(i); yield a; }
            case UINT32, INT32 -> { int[] a = new int[n]; for (int i = 0; i < n; i++) a[i] = (Integer) elements.get(i); yield a; }
            case UINT64, INT64 -> { long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = (Long) elements.get(i); yield a; }
            case FLOAT32 -> { float[] a = new float[n]; for (int i = 0; i < n; i++) a[i] = (Float) elements.get(i); yield a; }
            case FLOAT64 -> { double[] a = new double[n]; for (int i = 0; i < n; i++) a[i] = (Double) elements.get(i); yield a; }
            case BOOL -> { boolean[] a = new boolean[n]; for (int i = 0; i < n; i++) a[i] = (Boolean) elements.get(i); yield a; }
            case STRING -> elements.toArray(new String[0]);
            case ARRAY -> elements.toArray(new GgufArray[0]);
        };
        return new ElementList(type, array);
    }

    GgufValueType type() { return type; }

    /** The backing array itself: callers must not modify it. */
    Object backing() { return array; }

    @Override public int size() { return size; }

    @Override
    public Object get(int i) {
        return switch (array) {
            case byte[] a -> a[i];
            case short[] a -> a[i];
            case int[] a -> a[i];
            case long[] a -> a[i];
            case float[] a -> a[i];
            case double[] a -> a[i];
            case boolean[] a -> a[i];
            case Object[] a -> a[i];
            default -> throw new AssertionError();
        };
    }

    /** Integer element {@code i} widened to long; UINT64 elements come back as raw bits. */
    long rawLong(int i) {
        return switch (type) {
            case UINT8 -> Byte.toUnsignedLong(((byte[]) array)[i]);
            case INT8 -> ((byte[]) array)[i];
            case UINT16 -> Short.toUnsignedLong(((short[]) array)[i]);
            case INT16 -> ((short[]) array)[i];
            case UINT32 -> Integer.toUnsignedLong(((int[]) array)[i]);
            case INT32 -> ((int[]) array)[i];
            case UINT64, INT64 -> ((long[]) array)[i];
            default -> throw new IllegalStateException(type + " is not an integer type");
        };
    }

    double numeric(int i) {
        return switch (type) {
            case FLOAT32 -> ((float[]) array)[i];
            case FLOAT64 -> ((double[]) array)[i];
            case UINT64 -> unsignedToDouble(((long[]) array)[i]);
            default -> rawLong(i);
        };
    }

    static double unsignedToDouble(long bits) {
        return bits >= 0 ? bits : (double) (bits >>> 1) * 2.0 + (bits & 1);
    }
}
