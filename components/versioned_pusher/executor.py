"""Executor for TFX's Pusher (``custom_executor_spec``), filesystem destinations only.

Differences from the stock executor, which copies file by file into ``<base>/<version>/``:

* **Atomic:** the SavedModel is copied into a hidden staging directory next to the versions and
  renamed into place, so a model server polling ``<base>`` never sees a partial version (on
  local and POSIX filesystems, where a directory rename is atomic).
* **Once per model:** each version records where it came from in
  ``assets.extra/provenance.json`` (``assets.extra`` is ignored by TF Serving). A blessed model
  that is already serving, e.g. when a re-run blesses the cached candidate against itself, is
  not copied again; the PushedModel artifact says so in ``skipped_reason``.
* **Unique versions:** a version number (unix seconds) that already exists is bumped.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

PROVENANCE_FILE = "assets.extra/provenance.json"
SKIPPED_REASON_KEY = "skipped_reason"
ALREADY_SERVING_KEY = "already_serving_version"
# Written next to the blessing by components.serving_baseline's Evaluator executor.
METRICS_FILE = "metrics.json"


def pushed_versions(base_directory: str) -> dict[str, dict[str, Any]]:
    """``{version: provenance}`` for every complete version under ``base_directory``."""
    versions: dict[str, dict[str, Any]] = {}
    if not fileio.exists(base_directory):
        return versions
    for name in fileio.listdir(base_directory):
        name = name.rstrip("/")
        path = os.path.join(base_directory, name)
        if not name.isdigit() or not fileio.exists(os.path.join(path, "saved_model.pb")):
            continue
        provenance_path = os.path.join(path, PROVENANCE_FILE)
        provenance: dict[str, Any] = {}
        if fileio.exists(provenance_path):
            provenance = json.loads(io_utils.read_string_file(provenance_path))
        versions[name] = provenance
    return versions


def _recorded_metrics(blessing_uri: str) -> dict[str, float]:
    """Metrics the Evaluator wrote next to the blessing (empty with TFX's stock Evaluator)."""
    path = os.path.join(blessing_uri, METRICS_FILE)
    return json.loads(io_utils.read_string_file(path)) if fileio.exists(path) else {}


def _remove_stale_staging(base_directory: str) -> None:
    """Remove staging directories left by pushes that were killed half-way."""
    for name in fileio.listdir(base_directory):
        name = name.rstrip("/")
        if name.startswith(".staging-"):
            logging.info("Removing %s, left by an interrupted push.", name)
            fileio.rmtree(os.path.join(base_directory, name))


class Executor(tfx_pusher_executor.Executor):
    """Pusher executor: atomic, de-duplicated filesystem pushes."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property(SKIPPED_REASON_KEY, "the model is not blessed")
            return
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        blessing = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_BLESSING_KEY]
        )
        model_path = self.GetModelPath(input_dict)

        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("only filesystem push destinations are supported")
        base = destination.filesystem.base_directory

        for version, provenance in sorted(pushed_versions(base).items()):
            if provenance.get("model_uri") == model.uri:
                reason = f"this model is already serving as version {version}"
                logging.info("Not pushing: %s.", reason)
                self._MarkNotPushed(model_push)
                model_push.set_string_custom_property(SKIPPED_REASON_KEY, reason)
                model_push.set_string_custom_property(ALREADY_SERVING_KEY, version)
                return

        fileio.makedirs(base)
        _remove_stale_staging(base)
        version = int(time.time())
        while fileio.exists(os.path.join(base, str(version))):
            version += 1
        staging = os.path.join(base, f".staging-{version}-{os.getpid()}")
        if fileio.exists(staging):
            fileio.rmtree(staging)
        io_utils.copy_dir(model_path, staging)
        io_utils.write_string_file(
            os.path.join(staging, PROVENANCE_FILE),
            json.dumps(
                {
                    "model_uri": model.uri,
                    "model_id": model.id,
                    "blessing_uri": blessing.uri,
                    # The candidate's overall metrics, as the Evaluator recorded them.
                    "metrics": _recorded_metrics(blessing.uri),
                    "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            ),
        )
        serving_path = os.path.join(base, str(version))
        fileio.rename(staging, serving_path)  # the version appears complete, or not at all
        logging.info("Model written to serving path %s.", serving_path)

        io_utils.copy_dir(model_path, model_push.uri)  # archive, as the stock executor does
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))
