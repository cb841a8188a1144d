package dev.jmoe.experts.cache;

import dev.jmoe.testutil.ChildJvm;
import dev.jmoe.experts.store.ExpertStore;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * With substitution off, offloading must not change a single bit: every policy, budget (down to a single slot
 * overall and one slot per layer), store and link gives the logits and greedy tokens of the fully resident run.
 * <p>
 * The runs happen in a child JVM with C2's vector-reduction intrinsic disabled: the tensor kernels sum vector
 * lanes with {@code reduceLanes(ADD)}, whose order the JDK leaves open, and C2's intrinsic sums in a different
 * order than the interpreter/C1 fallback — so even two resident runs in one JVM can differ in the last bit
 * depending on which methods are compiled yet. With the intrinsic off every tier sums the same way, and any
 * remaining difference is offloading's.
 */
class OffloadExactnessTest {
    private static final Map<String, String> RESULTS = new HashMap<>();

    static List<String> combos() {
        List<String> out = new ArrayList<>();
        String[] policies = {"lru-ondemand", "exact-smoe", "fiddler", "lfu-ondemand"};
        String[] budgets = {"slots:1", "slots:layers", "1/4", "1/2"};
        for (String model : new String[]{"qwen2moe", "mixtral"}) {
            for (String p : policies) for (String b : budgets) out.add(String.join("|", model, p, b, "direct", "unlimited"));
            // every store and a throttled link, with policies that exercise prefetch and balancing
            for (String store : dev.jmoe.experts.store.ExpertStores.names()) {
                out.add(String.join("|", model, "exact-smoe", "slots:layers", store, "2GB/s,20us"));
                out.add(String.join("|", model, "fiddler", "1/3", store, "emmc"));
            }
        }
        out.add(String.join("|", "qwen2moe", "exact-smoe", "1/4", "host", "pcie4x16"));
        return out;
    }

    @BeforeAll
    static void runAllInChild() throws Exception {
        ChildJvm.Result r = ChildJvm.run(List.of("-Xmx512m", "-XX:+UnlockDiagnosticVMOptions", "-XX:DisableIntrinsic=_VectorReductionCoerced"),
                ExactnessHarness.class, combos(), 600);
        for (String line : r.out().split("\n")) {
            if (!line.startsWith("RESULT ")) continue;
            String[] parts = line.split(" ", 3);
            RESULTS.put(parts[1], parts[2]);
        }
        if (RESULTS.isEmpty()) throw new AssertionError("exactness child JVM failed (exit " + r.exit() + "): " + r.err());
    }

    static Stream<String> cases() { return combos().stream(); }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void offloadedRunIsBitIdenticalToResident(String combo) {
        assertEquals("OK", RESULTS.getOrDefault(combo, "no result"), combo);
    }
}
