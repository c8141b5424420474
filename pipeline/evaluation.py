"""TFMA EvalConfig built from the evaluation section of the config."""

from __future__ import annotations

import tensorflow_model_analysis as tfma

from components import features

BINARY_ACCURACY = "binary_accuracy"
MULTICLASS_ACCURACY = "sparse_categorical_accuracy"


def accuracy_metric_name(num_classes: int) -> str:
    return BINARY_ACCURACY if num_classes == 2 else MULTICLASS_ACCURACY


def build_eval_config(
    *, num_classes: int, accuracy_lower_bound: float, max_accuracy_drop: float | None
) -> tfma.EvalConfig:
    """Metrics, the accuracy lower bound and (unless ``max_accuracy_drop`` is None) a
    no-regression change threshold against the baseline model."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_lower_bound})
    )
    if max_accuracy_drop is not None:
        threshold.change_threshold.CopyFrom(
            tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -max_accuracy_drop},
            )
        )

    if num_classes == 2:
        prediction_key = features.OUTPUT_POSITIVE
        metrics = [
            tfma.MetricConfig(class_name="BinaryAccuracy", threshold=threshold),
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="Precision"),
            tfma.MetricConfig(class_name="Recall"),
            tfma.MetricConfig(class_name="MeanLabel"),
            tfma.MetricConfig(class_name="MeanPrediction"),
            tfma.MetricConfig(class_name="Calibration"),
            tfma.MetricConfig(class_name="CalibrationPlot"),
            tfma.MetricConfig(class_name="ConfusionMatrixPlot"),
        ]
    else:
        prediction_key = features.OUTPUT_PROBABILITIES
        metrics = [
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=threshold),
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
        ]
    metrics.insert(0, tfma.MetricConfig(class_name="ExampleCount"))

    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.SERVING_TF_EXAMPLE,
                label_key=features.LABEL_KEY,
                prediction_key=prediction_key,
                # Adds the review-length bucket to slice by (a signature of the SavedModel).
                preprocessing_function_names=[features.TRANSFORM_FEATURES],
            )
        ],
        # Overall (the gate) and per review-length bucket (the report).
        slicing_specs=[
            tfma.SlicingSpec(),
            tfma.SlicingSpec(feature_keys=[features.LENGTH_BUCKET_KEY]),
        ],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        # Only the metrics above: TFMA would otherwise add the Keras model's compiled loss and
        # metrics, computed against whichever output it picks (not the 2-class softmax).
        options=tfma.Options(include_default_metrics={"value": False}),
    )
