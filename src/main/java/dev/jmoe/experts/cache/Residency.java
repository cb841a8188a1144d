package dev.jmoe.experts.cache;

/** Whether an expert can be used right now without loading it (what substitution asks the cache). */
@FunctionalInterface
public interface Residency {
    boolean isResident(int layer, int expert);
}
