"""From a validated Config to a TFX pipeline, run locally with LocalDagRunner or BeamDagRunner."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfx import v1 as tfx

from components.versioned_pusher import pushed_versions
from pipeline import evaluation
from pipeline.config import Config, ConfigError
from pipeline.data import PreparedData, prepare_inputs
from pipeline.imdb import imported_unlabelled, is_imported_dir
from pipeline.locking import run_lock
from pipeline.pipeline import create_pipeline
from pipeline.progress import ProgressTracker, run_log, tracking


def absolute(path: str) -> str:
    """Local paths become absolute (TFX records URIs in MLMD); URIs such as gs:// stay."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def transform_custom_config(config: Config) -> dict[str, Any]:
    t = config.transform
    return {
        "vocab_size": t.vocab_size,
        "frequency_threshold": t.frequency_threshold,
        "num_oov_buckets": t.num_oov_buckets,
        "max_sequence_length": t.max_sequence_length,
        "truncation": t.truncation,
    }


def _path(path: str, local: bool) -> str:
    """A configured path as the pipeline records it: made absolute for a local run, kept as
    written for a cluster (where it names storage the pods reach)."""
    return absolute(path) if local else path


def trainer_custom_config(config: Config, local: bool = True) -> dict[str, Any]:
    """The Trainer's custom_config (``local`` as in ``_path``)."""
    m = config.model
    word_vectors = None
    if m.word_vectors is not None:
        word_vectors = {
            "path": _path(m.word_vectors.path, local),
            "trainable": m.word_vectors.trainable,
        }
    return {
        **transform_custom_config(config),
        "batch_size": m.batch_size,
        "shuffle_buffer": m.shuffle_buffer,
        "cache_examples": m.cache_examples,
        "lstm_units": m.lstm_units,
        "bidirectional": m.bidirectional,
        "num_classes": m.num_classes,
        "embedding_dimension": m.embedding_dimension,
        "dense_units": m.dense_units,
        "steps_per_epoch": m.steps_per_epoch,
        "dropout_keep_prob": m.dropout_keep_prob,
        "learning_rate": m.learning_rate,
        "learning_rate_schedule": m.learning_rate_schedule,
        "pooling": m.pooling,
        "embedding_dropout": m.embedding_dropout,
        "adversarial_epsilon": m.adversarial_epsilon,
        "weight_average_momentum": m.weight_average_momentum,
        "pretrain_trainable": m.pretrain_trainable,
        "bucket_by_length": m.bucket_by_length,
        "early_stopping_patience": m.early_stopping_patience,
        "word_vectors": word_vectors,
        "seed": m.seed,
        "class_names": list(config.data.class_names),
    }


def word_vectors_params(config: Config, local: bool = True) -> dict[str, Any] | None:
    """WordVectorsGen parameters, or None when the model does not pre-train word vectors.
    ``local``: paths as in ``_path``, and the unlabelled reviews of an imported IMDB folder
    are looked up on this machine."""
    m, d = config.model, config.data
    if not m.pretrain_word_vectors:
        return None
    unlabelled = d.unlabelled_source
    if local and unlabelled is None and is_imported_dir(d.source):
        found = imported_unlabelled(d.source)
        unlabelled = str(found) if found else None
    return {
        "dimension": m.embedding_dimension,
        "num_oov_buckets": config.transform.num_oov_buckets,
        "unlabelled_text": _path(unlabelled, local) if unlabelled else "",
        "window": m.pretrain_window,
        "seed": m.seed,
    }


def model_args(config: Config, local: bool = True) -> dict[str, Any]:
    """The arguments of ``create_pipeline`` that come from the transform, model and
    evaluation sections: the same for every runner (``local`` as in ``word_vectors_params``)."""
    m, ev = config.model, config.evaluation
    compare = ev.baseline != "none"
    return {
        "transform_config": transform_custom_config(config),
        "trainer_config": trainer_custom_config(config, local),
        "train_steps": m.num_iterations,
        "eval_steps": m.eval_steps,
        "eval_config": evaluation.build_eval_config(
            num_classes=m.num_classes,
            accuracy_lower_bound=ev.accuracy_lower_bound,
            max_accuracy_drop=ev.max_accuracy_drop if compare else None,
        ),
        "baseline": ev.baseline,
        "word_vectors": word_vectors_params(config, local),
    }


def serving_state(serving_dir: str) -> str:
    """The versions present in ``serving_dir``: changes exactly when a new version is pushed."""
    return (
        ",".join(sorted(pushed_versions(serving_dir), key=int))
        if Path(serving_dir).is_dir()
        else ""
    )


def build_pipeline(
    config: Config, data_root: str, has_test_split: bool, metadata_connection_config: Any = None
) -> tfx.dsl.Pipeline:
    p = config.pipeline
    serving_dir = absolute(p.resolved_serving_dir)
    return create_pipeline(
        pipeline_name=p.name,
        pipeline_root=absolute(p.resolved_pipeline_root),
        data_root=absolute(data_root),
        has_test_split=has_test_split,
        schema_path=absolute(config.data.schema_path) if config.data.schema_path else None,
        serving_dir=serving_dir,
        serving_state=serving_state(serving_dir),
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(p.beam_pipeline_args),
        enable_cache=p.enable_cache,
        **model_args(config),
    )


def check_paths(config: Config) -> None:
    """Fail early, naming the key, when a configured file does not exist."""
    checks = [
        ("data.schema_path", config.data.schema_path),
        ("data.unlabelled_source", config.data.unlabelled_source),
    ]
    if config.model.word_vectors is not None:
        checks.append(("model.word_vectors.path", config.model.word_vectors.path))
    for key, value in checks:
        if value and "://" not in value and not Path(value).expanduser().is_file():
            raise ConfigError(f"{key}: file not found: {value}")


@dataclass
class RunResult:
    config: Config
    prepared: PreparedData
    pipeline_name: str
    metadata_path: str
    started: float
    seconds: float
    log_path: Path | None = None


def run_pipeline(
    config: Config,
    progress: ProgressTracker | None = None,
    capture_output: bool = False,
) -> RunResult:
    """Prepare the inputs, then run the whole pipeline with the configured runner.

    The run's log records go to ``<work_dir>/logs/run-<UTC time>.log`` (with
    ``capture_output``, what the libraries print too); ``progress`` follows the components.
    """
    check_paths(config)
    work_dir = Path(absolute(config.pipeline.work_dir))
    prepared = prepare_inputs(config.data, work_dir)
    metadata_path = absolute(config.pipeline.resolved_metadata_path)
    Path(metadata_path).parent.mkdir(parents=True, exist_ok=True)
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    pipeline = build_pipeline(config, str(prepared.root), prepared.has_test, connection)
    if progress is not None:
        progress.set_nodes([component.id for component in pipeline.components])
    started = time.time()
    log_path = work_dir / "logs" / time.strftime("run-%Y%m%d-%H%M%S.log", time.gmtime(started))
    for n in range(1, 100):  # two runs started within one second keep separate logs
        if not log_path.exists():
            break
        log_path = log_path.with_name(f"{log_path.stem.split('.')[0]}.{n}.log")
    with run_lock(metadata_path), run_log(log_path, capture_output), tracking(progress):
        if config.pipeline.runner == "beam":
            # BeamDagRunner is not part of tfx.v1; this is its documented import path (TFX 1.16).
            from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

            BeamDagRunner().run(pipeline)
        else:
            tfx.orchestration.LocalDagRunner().run(pipeline)
    return RunResult(
        config=config,
        prepared=prepared,
        pipeline_name=config.pipeline.name,
        metadata_path=metadata_path,
        started=started,
        seconds=time.time() - started,
        log_path=log_path,
    )
