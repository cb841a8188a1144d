/**
 * jmoe as a library. {@link dev.jmoe.engine.Engine#open} opens a model under an {@link dev.jmoe.engine.EngineConfig}
 * (threads, context, packing, activation rounding, and the {@link dev.jmoe.engine.ExpertRuntimeConfig}: expert budget,
 * store, link, policy, predictor, shadow); each {@link dev.jmoe.engine.Session} holds one conversation and generates
 * with a {@link dev.jmoe.engine.GenerationRequest}, streaming to a {@link dev.jmoe.engine.TokenListener} and returning a
 * {@link dev.jmoe.engine.GenerationResult} with typed {@link dev.jmoe.engine.GenerationStats}. Everything an engine
 * sets is its own: engines in one process do not affect each other. The command line is a thin shell over this package.
 */
package dev.jmoe.engine;
