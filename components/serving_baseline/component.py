"""LastPushedModel: a Python-function component that turns the newest pushed version into the
Evaluator's baseline Model artifact.

(No ``from __future__ import annotations`` here: TFX parses the real type hints.)

TFX's latest-blessed-model Resolver compiles, for Kubeflow Pipelines v2, into MLMD artifact
queries that only Vertex AI Pipelines executes. This component reads the serving directory
instead, which every orchestrator can reach, so "no regression against what is serving" means
the same locally and on Kubeflow.
"""

import json
import os
from typing import Any

from absl import logging
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from components.versioned_pusher.executor import pushed_versions

# Where TFX's path_utils.serving_model_path looks for a model's SavedModel.
SERVING_MODEL_DIR = "Format-Serving"

FOUND_KEY = "baseline_found"
VERSION_KEY = "baseline_version"
MODEL_URI_KEY = "baseline_model_uri"
PUSHED_AT_KEY = "baseline_pushed_at"
METRICS_KEY = "baseline_metrics"


def latest_pushed_version(serving_dir: str) -> tuple[str, dict[str, Any]] | None:
    """(version, provenance) of the newest complete version under ``serving_dir``, if any."""
    if not fileio.exists(serving_dir):
        return None
    versions = pushed_versions(serving_dir)
    if not versions:
        return None
    version = max(versions, key=int)
    return version, versions[version]


@tfx.dsl.components.component
def LastPushedModel(
    serving_dir: tfx.dsl.components.Parameter[str],
    serving_state: tfx.dsl.components.Parameter[str],
    model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
) -> None:
    """Copy the newest pushed version into ``model``; leave it empty when nothing is pushed.

    ``serving_state`` names the versions present when the pipeline was built; it only makes the
    cache key change when a new version appears (the executor always reads the directory).
    """
    del serving_state
    found = latest_pushed_version(serving_dir)
    if found is None:
        logging.info("No pushed version in %s: the candidate has no baseline.", serving_dir)
        model.set_int_custom_property(FOUND_KEY, 0)
        return
    version, provenance = found
    # A copy, not a pointer: the baseline stays what it was even if the version is removed.
    io_utils.copy_dir(
        os.path.join(serving_dir, version), os.path.join(model.uri, SERVING_MODEL_DIR)
    )
    model.set_int_custom_property(FOUND_KEY, 1)
    model.set_string_custom_property(VERSION_KEY, version)
    model.set_string_custom_property(MODEL_URI_KEY, str(provenance.get("model_uri", "")))
    model.set_string_custom_property(PUSHED_AT_KEY, str(provenance.get("pushed_at", "")))
    model.set_string_custom_property(
        METRICS_KEY, json.dumps(provenance.get("metrics", {}), sort_keys=True)
    )
    logging.info("Baseline: version %s of %s.", version, serving_dir)
