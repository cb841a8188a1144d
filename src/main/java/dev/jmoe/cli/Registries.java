package dev.jmoe.cli;

import dev.jmoe.experts.PolicyPresets;
import dev.jmoe.experts.Registry;
import dev.jmoe.experts.cache.EvictionPolicies;
import dev.jmoe.experts.cache.PrefetchRules;
import dev.jmoe.experts.predict.Predictors;
import dev.jmoe.experts.store.ExpertStores;
import dev.jmoe.experts.store.Link;
import dev.jmoe.plugin.JmoePlugin;
import java.util.ListResourceBundle;
import java.util.ResourceBundle;
import java.util.ServiceLoader;
import java.util.stream.Collectors;

/**
 * The plug-in registries as the command line sees them: help texts list each registry's entries (option descriptions
 * say {@code ${jmoe.policies}} and the like, filled from {@link #bundle()} when the command line is built, so a plug-in
 * registered before then appears in every {@code --help}), and plug-ins on the class path are loaded once.
 */
final class Registries {
    private Registries() {}

    private static boolean pluginsLoaded;

    /** Registers the plug-ins found on the class path ({@link JmoePlugin} services), once per process. */
    static synchronized void loadPlugins() {
        if (pluginsLoaded) return;
        pluginsLoaded = true;
        for (JmoePlugin p : ServiceLoader.load(JmoePlugin.class)) p.register();
    }

    /** Help texts of the registries, as they are now. */
    static ResourceBundle bundle() {
        Object[][] entries = {
                {"jmoe.stores", list(ExpertStores.REGISTRY)},
                {"jmoe.links", list(Link.PRESETS)},
                {"jmoe.policies", list(PolicyPresets.REGISTRY)},
                {"jmoe.evictions", list(EvictionPolicies.REGISTRY)},
                {"jmoe.evictions.online", EvictionPolicies.REGISTRY.entries().stream().filter(e -> !e.value().offline())
                        .map(Registries::line).collect(Collectors.joining("\n"))},
                {"jmoe.predictors", list(Predictors.REGISTRY)},
                {"jmoe.prefetchRules", list(PrefetchRules.REGISTRY)},
                {"jmoe.policy.names", String.join(", ", PolicyPresets.REGISTRY.names())},
                {"jmoe.eviction.names", String.join(", ", EvictionPolicies.REGISTRY.names())},
                {"jmoe.predictor.names", String.join(", ", Predictors.REGISTRY.names())},
        };
        return new ListResourceBundle() {
            @Override
            protected Object[][] getContents() { return entries; }
        };
    }

    private static String list(Registry<?> r) {
        return r.entries().stream().map(Registries::line).collect(Collectors.joining("\n"));
    }

    private static String line(Registry.Entry<?> e) {
        // picocli fills ${…} after formatting the description: the entries' text is taken as it is
        return e.name() + ": " + e.help();
    }
}
