"""What a run did, read back from ML Metadata: per-component state and duration, the
evaluation metrics, the blessing and why, and where the model was pushed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tensorflow_model_analysis as tfma
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.serving_baseline import candidate_metrics
from pipeline import pipeline as p

_STATE = metadata_store_pb2.Execution.State
STATE_NAMES = {
    _STATE.NEW: "new",
    _STATE.RUNNING: "running",
    _STATE.COMPLETE: "executed",
    _STATE.FAILED: "failed",
    _STATE.CACHED: "cached",
    _STATE.CANCELED: "canceled",
}


@dataclass
class ComponentStatus:
    node_id: str
    state: str
    seconds: float


@dataclass
class RunStatus:
    run_id: str
    components: list[ComponentStatus] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    blessed: bool | None = None
    reasons: list[str] = field(default_factory=list)
    blessing_message: str = ""
    pushed: bool = False
    pushed_destination: str | None = None
    not_pushed_reason: str | None = None
    already_serving: str | None = None  # the version that already serves this model
    evaluation_uri: str | None = None
    model_uri: str | None = None
    model_run_uri: str | None = None
    # "<component>.<output key>" -> URI, e.g. "Transform.transform_graph".
    outputs: dict[str, str] = field(default_factory=dict)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    if not Path(metadata_path).is_file():
        raise FileNotFoundError(f"no metadata store at {metadata_path}: has the pipeline run yet?")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def run_ids(store: metadata_store.MetadataStore, pipeline_name: str) -> list[str]:
    """Pipeline run ids, oldest first."""
    runs = store.get_contexts_by_type("pipeline_run")
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return []
    children = {c.id for c in store.get_children_contexts_by_context(pipeline_ctx.id)}
    mine = [r for r in runs if r.id in children] if children else runs
    return [r.name for r in sorted(mine, key=lambda r: r.create_time_since_epoch)]


def _artifact_outputs(
    store: metadata_store.MetadataStore, execution_id: int
) -> dict[str, metadata_store_pb2.Artifact]:
    """Output key (e.g. ``transform_graph``) -> artifact, for one execution."""
    events = store.get_events_by_execution_ids([execution_id])
    keys = {
        e.artifact_id: (e.path.steps[0].key if e.path.steps else str(e.artifact_id))
        for e in events
        if e.type == metadata_store_pb2.Event.OUTPUT
    }
    artifacts = store.get_artifacts_by_id(list(keys)) if keys else []
    return {keys[a.id]: a for a in artifacts}


def _custom(artifact: metadata_store_pb2.Artifact, key: str):
    if key not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[key]
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def _node_names(store: metadata_store.MetadataStore, pipeline_name: str) -> dict[int, str]:
    """Execution id -> component id, for every execution of ``pipeline_name``."""
    node_of: dict[int, str] = {}
    prefix = f"{pipeline_name}."
    for ctx in store.get_contexts_by_type("node"):
        if ctx.name.startswith(prefix):
            for execution in store.get_executions_by_context(ctx.id):
                node_of[execution.id] = ctx.name[len(prefix) :]
    return node_of


def read_run(metadata_path: str, pipeline_name: str, run_id: str | None = None) -> RunStatus:
    """Status of ``run_id`` (default: the latest run) of ``pipeline_name``."""
    store = open_store(metadata_path)
    ids = run_ids(store, pipeline_name)
    if not ids:
        raise LookupError(f"no runs of pipeline '{pipeline_name}' in {metadata_path}")
    return _read_run(store, pipeline_name, run_id or ids[-1], _node_names(store, pipeline_name))


def read_recent_runs(
    metadata_path: str, pipeline_name: str, limit: int
) -> tuple[int, list[RunStatus]]:
    """(number of runs, the ``limit`` latest runs newest first), with one store connection."""
    store = open_store(metadata_path)
    ids = run_ids(store, pipeline_name)
    if not ids:
        raise LookupError(f"no runs of pipeline '{pipeline_name}' in {metadata_path}")
    node_of = _node_names(store, pipeline_name)
    return len(ids), [_read_run(store, pipeline_name, r, node_of) for r in reversed(ids[-limit:])]


def _read_run(
    store: metadata_store.MetadataStore, pipeline_name: str, run_id: str, node_of: dict[int, str]
) -> RunStatus:
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run_ctx is None:
        raise LookupError(f"no run '{run_id}' of pipeline '{pipeline_name}'")
    status = RunStatus(run_id=run_id)
    executions = sorted(
        store.get_executions_by_context(run_ctx.id), key=lambda e: e.create_time_since_epoch
    )
    for execution in executions:
        node = node_of.get(execution.id, execution.type.rsplit(".", 1)[-1])
        seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
        state = STATE_NAMES.get(execution.last_known_state, "unknown")
        status.components.append(ComponentStatus(node, state, max(seconds, 0.0)))
        by_key = _artifact_outputs(store, execution.id)
        status.outputs.update({f"{node}.{key}": a.uri for key, a in by_key.items()})
        outputs = list(by_key.values())
        if node == p.TRAINER:
            status.model_uri = next((a.uri for a in outputs if a.type == "Model"), None)
            status.model_run_uri = next((a.uri for a in outputs if a.type == "ModelRun"), None)
        elif node == p.EVALUATOR:
            for artifact in outputs:
                if artifact.type == "ModelBlessing":
                    blessed = _custom(artifact, "blessed")
                    status.blessed = None if blessed is None else bool(blessed)
                    status.blessing_message = str(_custom(artifact, "blessing_message") or "")
                elif artifact.type == "ModelEvaluation":
                    status.evaluation_uri = artifact.uri
        elif node == p.PUSHER:
            for artifact in outputs:
                if artifact.type == "PushedModel":
                    status.pushed = bool(_custom(artifact, "pushed"))
                    status.pushed_destination = _custom(artifact, "pushed_destination")
                    status.not_pushed_reason = _custom(artifact, "skipped_reason")
                    status.already_serving = _custom(artifact, "already_serving_version")
    if status.evaluation_uri:
        status.metrics, status.reasons = evaluation_summary(status.evaluation_uri)
    return status


def evaluation_summary(evaluation_uri: str) -> tuple[dict[str, float], list[str]]:
    """Overall-slice metrics of the candidate and a readable line per failed threshold."""
    metrics = candidate_metrics(evaluation_uri)
    reasons = []
    validation = tfma.load_validation_result(evaluation_uri)
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            name = failure.metric_key.name
            what = "change vs baseline" if failure.metric_key.is_diff else "value"
            reasons.append(
                f"{name} {what} {failure.metric_value.double_value.value:.4f} failed "
                f"the threshold {threshold_text(failure.metric_threshold)}"
            )
    return metrics, reasons


def threshold_text(threshold) -> str:
    """``>= 0.85 and change >= -0.005``: a TFMA MetricThreshold as the user configured it."""
    parts = []
    if threshold.HasField("value_threshold"):
        vt = threshold.value_threshold
        if vt.HasField("lower_bound"):
            parts.append(f">= {vt.lower_bound.value:g}")
        if vt.HasField("upper_bound"):
            parts.append(f"<= {vt.upper_bound.value:g}")
    if threshold.HasField("change_threshold"):
        ct = threshold.change_threshold
        if ct.HasField("absolute"):
            parts.append(f"change >= {ct.absolute.value:g}")
    return " and ".join(parts) or str(threshold).strip()
