package dev.jmoe.experts.store;

import dev.jmoe.experts.Registry;
import java.util.List;

/** The slow tiers an expert can live in ({@code --store}), registered once by name. */
public final class ExpertStores {
    private ExpertStores() {}

    public static final Registry<ExpertStore.Factory> REGISTRY = new Registry<>("store", "--store");

    static {
        REGISTRY.register("direct", "the model file read with O_DIRECT, no page cache: fast memory really is bounded",
                (model, layout) -> new DirectStore(model.file().stablePath(), model.file().path(), layout));
        REGISTRY.register("host", "every expert copied once into process memory (a GPU host's RAM)",
                (model, layout) -> HostStore.load(model.file().stablePath(), model.file().path(), layout));
        REGISTRY.register("mmap", "the file mapping, through the page cache", MmapStore::new);
    }

    /** Registered names, in registration order. */
    public static List<String> names() {
        return REGISTRY.names();
    }
}
