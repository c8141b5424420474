"""A Python-function component that fails the run on data anomalies.

(No ``from __future__ import annotations`` here: TFX parses the real type hints.)

TFX's ExampleValidator only *records* anomalies (and a per-split ``blessed`` flag); Transform
and Trainer would go on and train on data that breaks the schema. This gate reads the anomalies
of every split and raises one readable error listing them, so nothing downstream runs.
"""

import os

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The input data does not match the schema; the message lists every anomaly."""


def summarize_anomalies(anomalies_by_split: "dict[str, anomalies_pb2.Anomalies]") -> list[str]:
    """One line per anomaly: ``split: feature: short description (long description)``."""
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            detail = f" ({info.description})" if info.description else ""
            lines.append(f"{split}: feature '{feature}': {info.short_description}{detail}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"{split}: dataset: {info.short_description} ({info.description})")
    return lines


def read_anomalies(uri: str, split_names: list[str]) -> dict[str, anomalies_pb2.Anomalies]:
    return {
        split: anomalies_util.load_anomalies_binary(
            os.path.join(uri, f"Split-{split}", ANOMALIES_FILE)
        )
        for split in split_names
    }


def check_anomalies(uri: str, split_names: list[str]) -> None:
    """Raise DataAnomaliesError listing every anomaly recorded under ``uri``."""
    lines = summarize_anomalies(read_anomalies(uri, split_names))
    if lines:
        raise DataAnomaliesError(
            "the input data does not match the schema; training was not started.\n  "
            + "\n  ".join(lines)
            + f"\nFull report: {uri}"
        )


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    """Fail the run when any split has anomalies against the schema."""
    check_anomalies(anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
