package dev.jmoe.experts.predict;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonUnwrapped;

/** What a run's predictor did: its name, and for a shadow its own counters. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record PredictorReport(@JsonProperty("name") String name, @JsonUnwrapped ShadowPredictor.Stats shadow) {
    /** The report of {@code p} now. */
    public static PredictorReport of(ExpertPredictor p) {
        return new PredictorReport(p.name(), p instanceof ShadowPredictor s ? s.stats() : null);
    }
}
