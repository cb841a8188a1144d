package dev.jmoe.experts.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jmoe.experts.store.ExpertStores;
import dev.jmoe.testutil.ChildJvm;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Exactness in every format: with substitution off, an offloaded or predicted run gives the resident run's logits bit for
 * bit — prompt batches and decode steps — for every tensor type jmoe runs (formats whose experts the resident run packs,
 * Q4_0, Q4_K_M, Q5_K_M's Q6_K parts and Q6_K, included: their slots hold the same packed copies), every store, every
 * exact policy preset, scheduling variant (prefetch rule, balancer split and overlap), eviction policy that looks ahead and
 * predictor. Tiny random models (2 layers, 8 experts, width 256), one per type, made and
 * run in a child JVM with C2's vector-reduction intrinsic off (see {@link OffloadExactnessTest} for why).
 */
class ExactnessMatrixTest {
    static final String[] TYPES = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M", "Q5_K_M", "Q6_K"};
    /** Runtimes every type and store is run with (key=value;… for ExactnessMatrixHarness#config). */
    static final String[] RUNTIMES = {
            "policy=lru-ondemand;budget=1/4",
            "policy=lfu-ondemand;budget=1/6",
            "policy=fiddler;budget=1/3;link=200MB/s,50us;slow=1",
            // SMoE: score-window eviction, next-layer prefetch, two-pointer split with the slow side in parallel
            "policy=exact-smoe;budget=1/4;link=200MB/s,50us;slow=1",
            // SMoE's prefetch from the approximate output; the first balancer (expert-id order, slow side after the hits)
            "policy=exact-smoe;budget=1/4;link=200MB/s,50us;slow=1;prefetch-rule=smoe;split=id;overlap=false",
            "policy=exact-smoe;budget=1/4;predictor=shadow;lookahead=2",
            "policy=exact-smoe;budget=1/3;predictor=history;lookahead=2;eviction=predictive",
            "policy=exact-smoe;budget=1/4;predictor=gate;lookahead=1;eviction=predictive",
            "policy=odmoe;predictor=shadow;lookahead=2",
            "policy=odmoe;predictor=none",
    };
    /**
     * Predictive eviction by a shadow that looks two tokens ahead (lookahead 4 on the 2-layer models): the shadow
     * speculates two tokens and its speculative KV entries must never reach the main run. A few types and stores.
     */
    static final String TWO_TOKENS_AHEAD = "policy=exact-smoe;budget=1/4;predictor=shadow;lookahead=4;eviction=predictive";
    /** A shared expert (qwen2moe) joins the fused decode dispatch resident: a few runtimes on the packed types. */
    static final String[] SHARED_TYPES = {"Q4_0", "Q4_K_M", "Q8_0"};

    private static final Map<String, String> RESULTS = new HashMap<>();

    static List<String> cases() {
        List<String> out = new ArrayList<>();
        for (String t : TYPES) {
            for (String store : ExpertStores.names()) for (String r : RUNTIMES) out.add(String.join("|", t, "llama", store, r));
        }
        for (String t : SHARED_TYPES) {
            out.add(String.join("|", t, "qwen2moe", "direct", RUNTIMES[3]));
            out.add(String.join("|", t, "qwen2moe", "host", RUNTIMES[4]));
            out.add(String.join("|", t, "qwen2moe", "host", TWO_TOKENS_AHEAD));
        }
        for (String t : new String[] {"F32", "F16"}) out.add(String.join("|", t, "llama", "direct", TWO_TOKENS_AHEAD));
        return out;
    }

    @BeforeAll
    static void runAllInChild() throws Exception {
        ChildJvm.Result r = ChildJvm.run(List.of("-Xmx1g", "-XX:+UnlockDiagnosticVMOptions", "-XX:DisableIntrinsic=_VectorReductionCoerced"),
                ExactnessMatrixHarness.class, cases(), 900);
        for (String line : r.out().split("\n")) {
            if (!line.startsWith("RESULT ")) continue;
            int sp = line.lastIndexOf(" OK");
            String rest = line.substring(7);
            int fail = rest.indexOf(" FAIL ");
            if (rest.endsWith(" OK")) RESULTS.put(rest.substring(0, rest.length() - 3), "OK");
            else if (fail >= 0) RESULTS.put(rest.substring(0, fail), rest.substring(fail + 1));
        }
        if (RESULTS.isEmpty()) throw new AssertionError("exactness child JVM failed (exit " + r.exit() + "): " + r.err());
    }

    static Stream<String> matrix() { return cases().stream(); }

    @ParameterizedTest(name = "{0}")
    @MethodSource("matrix")
    void offloadedRunIsBitIdenticalToResident(String c) {
        assertEquals("OK", RESULTS.getOrDefault(c, "no result"), c);
    }
}
