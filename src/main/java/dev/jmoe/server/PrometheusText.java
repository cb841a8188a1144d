package dev.jmoe.server;

import dev.jmoe.engine.BatchScheduler;
import dev.jmoe.engine.FinishReason;
import dev.jmoe.engine.LatencyHistogram;
import dev.jmoe.engine.SchedulerMetrics;
import dev.jmoe.experts.OffloadStats;
import dev.jmoe.experts.OffloadStats.Counter;
import java.util.Locale;
import java.util.Map;

/** The server's figures in Prometheus' text exposition format (version 0.0.4). */
final class PrometheusText {
    private PrometheusText() {}

    static String render(BatchScheduler scheduler, HttpMetrics http) {
        StringBuilder sb = new StringBuilder(4096);
        header(sb, "jmoe_http_requests_total", "counter", "HTTP requests answered, by endpoint and status");
        for (Map.Entry<String, Long> e : http.snapshot().entrySet()) {
            String[] k = e.getKey().split(" ");
            sb.append("jmoe_http_requests_total{endpoint=\"").append(k[0]).append("\",status=\"").append(k[1]).append("\"} ").append(e.getValue()).append('\n');
        }
        SchedulerMetrics m = scheduler.metrics();
        counter(sb, "jmoe_requests_submitted_total", "generations accepted into the queue", m.submitted());
        counter(sb, "jmoe_requests_refused_total", "generations refused because the queue was full", m.refused());
        counter(sb, "jmoe_requests_failed_total", "generations that ended because the forward pass failed", m.failed());
        header(sb, "jmoe_requests_finished_total", "counter", "generations ended, by finish reason");
        for (FinishReason r : FinishReason.values()) {
            sb.append("jmoe_requests_finished_total{reason=\"").append(r.name().toLowerCase(Locale.ROOT)).append("\"} ").append(m.finished(r)).append('\n');
        }
        counter(sb, "jmoe_prompt_tokens_total", "prompt tokens evaluated", m.promptTokens());
        counter(sb, "jmoe_generated_tokens_total", "tokens generated", m.generatedTokens());
        counter(sb, "jmoe_batch_steps_total", "forward steps run", m.steps());
        counter(sb, "jmoe_batch_rows_total", "rows (tokens) the forward steps held", m.stepRows());
        counter(sb, "jmoe_batch_step_seconds_total", "time spent in forward steps", m.stepNanos() / 1e9);
        histogram(sb, "jmoe_time_to_first_token_seconds", "submission to first token", m.timeToFirstToken());
        histogram(sb, "jmoe_time_per_output_token_seconds", "time between consecutive tokens of a generation", m.timePerToken());
        gauge(sb, "jmoe_queue_depth", "generations waiting for a slot", scheduler.queued());
        gauge(sb, "jmoe_slots_busy", "slots running a generation", scheduler.busySlots());
        gauge(sb, "jmoe_slots_total", "slots (--parallel)", scheduler.config().slots());
        gauge(sb, "jmoe_kv_positions_used", "KV memory positions held by running generations", scheduler.kvUsed());
        gauge(sb, "jmoe_kv_positions_total", "KV memory positions", scheduler.kvCapacity());
        OffloadStats s = scheduler.offloadStats();
        if (s != null) {
            header(sb, "jmoe_expert_hits_total", "counter", "expert uses served from fast memory, by kind");
            sb.append("jmoe_expert_hits_total{kind=\"exact\"} ").append(s.total(Counter.EXACT_HITS)).append('\n');
            sb.append("jmoe_expert_hits_total{kind=\"substitution\"} ").append(s.total(Counter.SUBSTITUTIONS)).append('\n');
            sb.append("jmoe_expert_hits_total{kind=\"prefetch\"} ").append(s.total(Counter.PREFETCH_HITS)).append('\n');
            header(sb, "jmoe_expert_misses_total", "counter", "expert uses that were not in fast memory, by what was done");
            sb.append("jmoe_expert_misses_total{kind=\"loaded\"} ").append(s.total(Counter.MISSES_LOADED)).append('\n');
            sb.append("jmoe_expert_misses_total{kind=\"computed\"} ").append(s.total(Counter.MISSES_COMPUTED)).append('\n');
            counter(sb, "jmoe_expert_prefetches_total", "expert prefetches issued", s.total(Counter.PREFETCHES_ISSUED));
            counter(sb, "jmoe_expert_evictions_total", "experts evicted from fast memory", s.total(Counter.EVICTIONS));
            counter(sb, "jmoe_expert_bytes_moved_total", "expert bytes moved into fast memory", s.total(Counter.BYTES_MOVED));
            counter(sb, "jmoe_expert_stall_seconds_total", "time the forward pass waited for experts", s.total(Counter.STALL_NANOS) / 1e9);
            gauge(sb, "jmoe_expert_resident_bytes_peak", "most expert bytes resident at once", s.peakResidentBytes());
        }
        return sb.toString();
    }

    private static void header(StringBuilder sb, String name, String type, String help) {
        sb.append("# HELP ").append(name).append(' ').append(help).append('\n');
        sb.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void counter(StringBuilder sb, String name, String help, double v) {
        header(sb, name, "counter", help);
        sb.append(name).append(' ').append(number(v)).append('\n');
    }

    private static void gauge(StringBuilder sb, String name, String help, double v) {
        header(sb, name, "gauge", help);
        sb.append(name).append(' ').append(number(v)).append('\n');
    }

    private static void histogram(StringBuilder sb, String name, String help, LatencyHistogram h) {
        header(sb, name, "histogram", help);
        double[] bounds = h.bounds();
        for (int i = 0; i < bounds.length; i++) {
            sb.append(name).append("_bucket{le=\"").append(number(bounds[i])).append("\"} ").append(h.cumulative(i)).append('\n');
        }
        long count = h.count();
        sb.append(name).append("_bucket{le=\"+Inf\"} ").append(count).append('\n');
        sb.append(name).append("_sum ").append(number(h.sum())).append('\n');
        sb.append(name).append("_count ").append(count).append('\n');
    }

    private static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return java.math.BigDecimal.valueOf(v).round(new java.math.MathContext(9)).stripTrailingZeros().toPlainString();
    }
}
