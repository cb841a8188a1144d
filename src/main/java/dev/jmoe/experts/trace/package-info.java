/**
 * Routing traces: what each MoE layer chose at each step ({@link dev.jmoe.experts.trace.RoutingTrace}, recorded to and read
 * from JSON Lines by {@link dev.jmoe.experts.trace.RoutingTraceFile}; docs/trace-format.md), and
 * {@link dev.jmoe.experts.trace.PolicySimulator}, which replays eviction policies and the Belady bound on them.
 */
package dev.jmoe.experts.trace;
