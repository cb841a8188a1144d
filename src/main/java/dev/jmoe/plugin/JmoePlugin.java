package dev.jmoe.plugin;

/**
 * A jar on the class path that adds plug-ins to jmoe: list the implementing class in
 * {@code META-INF/services/dev.jmoe.plugin.JmoePlugin}; {@link #register} is called once before the command line
 * is built, and registers into the registries (for example
 * {@code EvictionPolicies.register("mine", "what it does", c -> new MyPolicy(c.keys()))}). Embedding programs
 * register directly instead.
 */
public interface JmoePlugin {
    void register();
}
