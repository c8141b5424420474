"""The TFMA EvalConfig that gates the Pusher."""

import tensorflow_model_analysis as tfma

from pipeline.evaluation import build_eval_config


def _metrics(config):
    return {m.class_name: m for m in config.metrics_specs[0].metrics}


def test_binary_config_has_metrics_bound_and_change_threshold():
    config = build_eval_config(num_classes=2, accuracy_lower_bound=0.85, max_accuracy_drop=0.01)
    metrics = _metrics(config)
    assert {"ExampleCount", "BinaryAccuracy", "AUC", "Precision", "Recall", "Calibration"} <= set(
        metrics
    )
    threshold = metrics["BinaryAccuracy"].threshold
    assert threshold.value_threshold.lower_bound.value == 0.85
    assert threshold.change_threshold.absolute.value == -0.01
    assert threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert config.options.include_default_metrics.value is False  # no compiled Keras metrics
    spec = config.model_specs[0]
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == (
        "serving_tf_example",
        "label",
        "positive_probability",
    )


def test_without_baseline_there_is_no_change_threshold():
    config = build_eval_config(num_classes=2, accuracy_lower_bound=0.5, max_accuracy_drop=None)
    threshold = _metrics(config)["BinaryAccuracy"].threshold
    assert not threshold.HasField("change_threshold")


def test_multiclass_uses_sparse_categorical_accuracy():
    config = build_eval_config(num_classes=3, accuracy_lower_bound=0.4, max_accuracy_drop=0.0)
    metrics = _metrics(config)
    assert metrics["SparseCategoricalAccuracy"].threshold.value_threshold.lower_bound.value == 0.4
    assert config.model_specs[0].prediction_key == "probabilities"
