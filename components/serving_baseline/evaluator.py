"""Evaluator: TFX's component and executor, plus two things the gate needs on every orchestrator.

1. A baseline Model artifact without a SavedModel (LastPushedModel before the first push) counts
   as no baseline: the change threshold is skipped, as TFX does when the Resolver finds nothing.
2. The candidate's overall metrics are recorded next to the blessing (``metrics.json``), so the
   Pusher can store them with the version it publishes.
3. A baseline exported before the models gained the ``transform_features`` signature (which the
   review-length slices need) is still compared with: those slices are skipped for that run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow_model_analysis as tfma
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import executor as tfx_evaluator_executor

# Not exported by tfx.v1; the documented way to give a standard component another executor.
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from components import features
from components.versioned_pusher.executor import METRICS_FILE

CANDIDATE = "candidate"


def is_saved_model(model_uri: str) -> bool:
    """Whether a Model artifact's directory holds a SavedModel where TFX looks for one."""
    path = path_utils.serving_model_path(model_uri)
    return fileio.exists(os.path.join(path, "saved_model.pb"))


def has_signature(model_uri: str, signature_name: str) -> bool:
    """Whether the SavedModel of a Model artifact exports ``signature_name`` (no loading)."""
    path = os.path.join(path_utils.serving_model_path(model_uri), "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with fileio.open(path, "rb") as handle:
        saved_model.ParseFromString(handle.read())
    return any(signature_name in graph.signature_def for graph in saved_model.meta_graphs)


def without_preprocessing(eval_config: tfma.EvalConfig) -> tfma.EvalConfig:
    """``eval_config`` minus preprocessing functions and the slices on what they produce."""
    produced = {features.LENGTH_BUCKET_KEY}
    config = tfma.EvalConfig()
    config.CopyFrom(eval_config)
    for spec in config.model_specs:
        del spec.preprocessing_function_names[:]
    kept = [s for s in config.slicing_specs if not produced & set(s.feature_keys)]
    del config.slicing_specs[:]
    config.slicing_specs.extend(kept)
    return config


def candidate_metrics(evaluation_uri: str) -> dict[str, float]:
    """Overall-slice metrics of the candidate model (no diffs, no baseline values)."""
    metrics: dict[str, float] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or (key.model_name and key.model_name != CANDIDATE):
                continue
            if kv.value.HasField("double_value"):
                metrics[key.name] = kv.value.double_value.value
    return metrics


class Executor(tfx_evaluator_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        if baselines and not all(is_saved_model(b.uri) for b in baselines):
            logging.info("The baseline holds no model yet: gating on absolute thresholds only.")
            input_dict = {
                k: v
                for k, v in input_dict.items()
                if k != standard_component_specs.BASELINE_MODEL_KEY
            }
            baselines = []
        if baselines and not all(
            has_signature(b.uri, features.TRANSFORM_FEATURES) for b in baselines
        ):
            logging.warning(
                "The baseline model has no '%s' signature (exported by an older version): "
                "no review-length slices in this evaluation.",
                features.TRANSFORM_FEATURES,
            )
            eval_config = tfma.EvalConfig()
            proto_utils.json_to_proto(
                exec_properties[standard_component_specs.EVAL_CONFIG_KEY], eval_config
            )
            exec_properties = {
                **exec_properties,
                standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
                    without_preprocessing(eval_config)
                ),
            }
        super().Do(input_dict, output_dict, exec_properties)

        evaluation = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EVALUATION_KEY]
        )
        blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY]
        )
        io_utils.write_string_file(
            os.path.join(blessing.uri, METRICS_FILE),
            json.dumps(candidate_metrics(evaluation.uri), indent=2, sort_keys=True),
        )


class Evaluator(tfx.components.Evaluator):
    """TFX's Evaluator (same inputs, outputs and id) running the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
