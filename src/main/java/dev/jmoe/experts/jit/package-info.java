/**
 * OD-MoE on one node: {@link dev.jmoe.experts.jit.JustInTimeExpertSource} keeps only a working set, loads each expert a
 * predictor names just in time for its layer and evicts it after use; {@link dev.jmoe.experts.jit.OdMoeRuntime} installs
 * it with its predictor.
 */
package dev.jmoe.experts.jit;
