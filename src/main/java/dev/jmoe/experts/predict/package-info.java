/**
 * Predicting the experts of coming layers: {@link dev.jmoe.experts.predict.ExpertPredictor} and the registered predictors
 * ({@link dev.jmoe.experts.predict.Predictors}: shadow, gate, history, none), the shadow model that runs ahead
 * ({@link dev.jmoe.experts.predict.ShadowPredictor}, its models in {@link dev.jmoe.experts.predict.ShadowModels}),
 * {@link dev.jmoe.experts.predict.PredictorHooks} that connect a predictor to a forward pass and its predictions to a
 * {@link dev.jmoe.experts.predict.PrefetchSink}, and the evaluation of predictors (recall, precision per lookahead).
 */
package dev.jmoe.experts.predict;
