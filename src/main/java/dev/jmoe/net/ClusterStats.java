package dev.jmoe.net;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.concurrent.atomic.AtomicLong;

/** Counters of a main node's traffic with its workers (thread-safe). */
public final class ClusterStats {
    final AtomicLong bytesSent = new AtomicLong(), bytesReceived = new AtomicLong(), computeCalls = new AtomicLong(),
            prefetchMessages = new AtomicLong(), failovers = new AtomicLong(), workersLost = new AtomicLong(),
            decodeExpertUses = new AtomicLong(), decodePredicted = new AtomicLong(), readyOnArrival = new AtomicLong(),
            loadWaitNanos = new AtomicLong(), layerWaitNanos = new AtomicLong(), layers = new AtomicLong(), shadowBytesSent = new AtomicLong(),
            shadowBytesReceived = new AtomicLong(), workerComputeNanos = new AtomicLong(), miniBatched = new AtomicLong();

    /** A snapshot, as a report's JSON shows it. */
    public record Snapshot(@JsonProperty("bytes_sent") long bytesSent, @JsonProperty("bytes_received") long bytesReceived,
                           @JsonProperty("compute_calls") long computeCalls, @JsonProperty("prefetch_messages") long prefetchMessages,
                           @JsonProperty("failovers") long failovers, @JsonProperty("workers_lost") long workersLost,
                           @JsonProperty("decode_expert_uses") long decodeExpertUses,
                           @JsonProperty("decode_uses_predicted") long decodePredicted,
                           @JsonProperty("calls_expert_ready") long readyOnArrival,
                           @JsonProperty("worker_load_wait_ms") double loadWaitMillis,
                           @JsonProperty("moe_layer_wait_ms") double layerWaitMillis,
                           @JsonProperty("moe_layers") long layers,
                           @JsonProperty("shadow_bytes_sent") long shadowBytesSent,
                           @JsonProperty("shadow_bytes_received") long shadowBytesReceived,
                           @JsonProperty("worker_compute_ms") double workerComputeMillis,
                           @JsonProperty("experts_in_mini_batches") long miniBatched) {
        /** Share of decode expert uses whose expert had been predicted for that worker (OD-MoE's prediction recall). */
        @JsonProperty("prediction_recall")
        public Double recall() {
            return decodeExpertUses == 0 ? null : (double) decodePredicted / decodeExpertUses;
        }

        /** Share of compute calls that found their expert loaded (no stall on the worker's link). */
        @JsonProperty("ready_rate")
        public Double readyRate() {
            return computeCalls == 0 ? null : (double) readyOnArrival / computeCalls;
        }

        public Snapshot minus(Snapshot o) {
            return new Snapshot(bytesSent - o.bytesSent, bytesReceived - o.bytesReceived, computeCalls - o.computeCalls,
                    prefetchMessages - o.prefetchMessages, failovers - o.failovers, workersLost - o.workersLost,
                    decodeExpertUses - o.decodeExpertUses, decodePredicted - o.decodePredicted, readyOnArrival - o.readyOnArrival,
                    loadWaitMillis - o.loadWaitMillis, layerWaitMillis - o.layerWaitMillis, layers - o.layers,
                    shadowBytesSent - o.shadowBytesSent, shadowBytesReceived - o.shadowBytesReceived, workerComputeMillis - o.workerComputeMillis,
                    miniBatched - o.miniBatched);
        }
    }

    public Snapshot snapshot() {
        return new Snapshot(bytesSent.get(), bytesReceived.get(), computeCalls.get(), prefetchMessages.get(), failovers.get(), workersLost.get(),
                decodeExpertUses.get(), decodePredicted.get(), readyOnArrival.get(), loadWaitNanos.get() / 1e6, layerWaitNanos.get() / 1e6,
                layers.get(), shadowBytesSent.get(), shadowBytesReceived.get(), workerComputeNanos.get() / 1e6, miniBatched.get());
    }
}
