package dev.jmoe.server;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** HTTP requests by endpoint and status, for /metrics. Paths outside the API count as "other" (labels stay few). */
final class HttpMetrics {
    private static final Set<String> ENDPOINTS = Set.of("/", "/index.html", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions");

    private final Map<String, LongAdder> counts = new ConcurrentHashMap<>();

    static String endpoint(String path) {
        return ENDPOINTS.contains(path) ? path : "other";
    }

    void count(String endpoint, int status, long nanos) {
        counts.computeIfAbsent(endpoint + " " + status, k -> new LongAdder()).increment();
    }

    /** "endpoint status" → count, sorted. */
    Map<String, Long> snapshot() {
        Map<String, Long> m = new TreeMap<>();
        counts.forEach((k, v) -> m.put(k, v.sum()));
        return m;
    }
}
