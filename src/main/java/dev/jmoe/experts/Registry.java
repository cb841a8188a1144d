package dev.jmoe.experts;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One kind of plug-in (eviction policies, {@code --policy} presets, predictors, stores, link presets), each entry
 * registered once with its name and help text. Command-line help, validation, error messages, {@code jmoe replay}
 * and the bench grids all read the names from here, so adding a plug-in is one class and one {@link #register}
 * call. Names are case-insensitive; an entry may have aliases that are accepted but not listed. Thread-safe.
 *
 * @param <T> what an entry provides (usually a factory)
 */
public final class Registry<T> {
    /** A registered plug-in: its name, one line of help, and what it provides. */
    public record Entry<T>(String name, String help, T value, List<String> aliases) {
        public Entry {
            if (name == null || !name.matches("[a-z0-9][a-z0-9._+-]*")) {
                throw new IllegalArgumentException("plug-in names are lower-case words (letters, digits, . _ + -), got '" + name + "'");
            }
            if (help == null || help.isBlank()) throw new IllegalArgumentException("plug-in '" + name + "' needs a line of help text");
            if (value == null) throw new IllegalArgumentException("plug-in '" + name + "' provides nothing");
            aliases = aliases == null ? List.of() : List.copyOf(aliases);
        }
    }

    private final String kind;
    private final String flag;
    private final Map<String, Entry<T>> byName = new LinkedHashMap<>();
    private final Map<String, Entry<T>> byAlias = new LinkedHashMap<>();

    /**
     * @param kind what the entries are, for messages ("eviction policy")
     * @param flag the command-line flag that names them ("--eviction"), for messages
     */
    public Registry(String kind, String flag) {
        this.kind = kind;
        this.flag = flag;
    }

    public String kind() { return kind; }
    public String flag() { return flag; }

    /** Adds an entry; returns a handle that removes it again (tests, plug-ins that unload). */
    public synchronized Registration register(String name, String help, T value, String... aliases) {
        Entry<T> e = new Entry<>(name, help, value, List.of(aliases));
        if (byName.containsKey(name) || byAlias.containsKey(name)) throw new IllegalArgumentException(kind + " '" + name + "' is already registered");
        for (String a : e.aliases()) {
            String k = a.toLowerCase(Locale.ROOT);
            if (byName.containsKey(k) || byAlias.containsKey(k)) throw new IllegalArgumentException(kind + " alias '" + a + "' is already registered");
        }
        byName.put(name, e);
        for (String a : e.aliases()) byAlias.put(a.toLowerCase(Locale.ROOT), e);
        return () -> unregister(name);
    }

    private synchronized void unregister(String name) {
        Entry<T> e = byName.remove(name);
        if (e != null) for (String a : e.aliases()) byAlias.remove(a.toLowerCase(Locale.ROOT));
    }

    /** The entry called {@code name} (or one of its aliases), or null. */
    public synchronized Entry<T> find(String name) {
        if (name == null) return null;
        String k = name.trim().toLowerCase(Locale.ROOT);
        Entry<T> e = byName.get(k);
        return e != null ? e : byAlias.get(k);
    }

    /** The entry called {@code name}, or an error naming the flag and every valid name. */
    public Entry<T> require(String name) {
        Entry<T> e = find(name);
        if (e == null) throw new IllegalArgumentException("unknown " + flag + " '" + name + "'; choose one of " + String.join(", ", names()));
        return e;
    }

    /** What {@code name} provides (see {@link #require}). */
    public T get(String name) {
        return require(name).value();
    }

    public synchronized List<String> names() {
        return List.copyOf(byName.keySet());
    }

    public synchronized List<Entry<T>> entries() {
        return Collections.unmodifiableList(new ArrayList<>(byName.values()));
    }

    /** "name: help" lines, one per entry, for help texts. */
    public String describe(String indent) {
        StringBuilder sb = new StringBuilder();
        for (Entry<T> e : entries()) {
            if (!sb.isEmpty()) sb.append('\n');
            sb.append(indent).append(e.name()).append(": ").append(e.help());
        }
        return sb.toString();
    }

    /** Removes a registration. */
    @FunctionalInterface
    public interface Registration extends AutoCloseable {
        @Override void close();
    }
}
