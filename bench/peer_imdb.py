"""The TFX project's own IMDB example, at its documented full-data settings, measured like
bench/imdb.py measures this pipeline.

The example is imported from the installed ``tfx`` package (``tfx/examples/imdb/``); none of
its code is copied. Its pipeline is built with its own ``_create_pipeline`` and then adjusted
on the returned object to the settings its ``imdb_fetch_data.py`` documents for the full data
set: 7000 train / 800 eval steps, batch size 64 (train and eval), BeamDagRunner with its own
Beam arguments. Batch size is a module constant of its ``run_fn``, so the Trainer runs
``peer_run_fn`` below, which sets the constants and calls the example's ``run_fn``.

    .venv/bin/python -m bench.peer_imdb bench --data WORK/data/imdb --work-dir WORK/peer
        [--peer-steps 7000/800]

``--data`` is a folder written by ``sentiment-pipeline data import-imdb``: the example trains
on its ``train.csv`` only (split 90/10 into train/eval by its own ExampleGen) and is measured
on every review of its ``test.csv``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PEER_PIPELINE_MODULE = "tfx.examples.imdb.imdb_pipeline_native_keras"
PEER_UTILS_MODULE = "tfx.examples.imdb.imdb_utils_native_keras"
# Documented full-data settings (tfx/examples/imdb/imdb_fetch_data.py).
PEER_BATCH_SIZE = 64
PEER_TRAIN_STEPS = 7000
PEER_EVAL_STEPS = 800
# The Trainer's run_fn, by dotted path: importable because runs start in the repository root.
PEER_RUN_FN = "bench.peer_imdb.peer_run_fn"
# What run_peer writes into its work_dir (the only entries it deletes on the next run).
PEER_DIR_ENTRIES = ("data", "logs", "pipeline", "serving", "metadata.sqlite")


def peer_run_fn(fn_args: Any) -> None:
    """The example's ``run_fn`` with its batch-size constants at the documented 64."""
    peer = importlib.import_module(PEER_UTILS_MODULE)
    peer._TRAIN_BATCH_SIZE = PEER_BATCH_SIZE
    peer._EVAL_BATCH_SIZE = PEER_BATCH_SIZE
    peer.run_fn(fn_args)


def parse_steps(value: str) -> tuple[int, int]:
    """``TRAIN/EVAL`` steps, e.g. ``7000/800``."""
    try:
        train, evaluation = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN/EVAL steps, got {value!r}") from None
    if train < 1 or evaluation < 1:
        raise argparse.ArgumentTypeError(f"steps must be positive, got {value!r}")
    return train, evaluation


def _pipeline_module() -> Any:
    return importlib.import_module(PEER_PIPELINE_MODULE)


def pipeline_name() -> str:
    return str(_pipeline_module()._pipeline_name)


def _layout(work_dir: Path) -> dict[str, Path]:
    return {
        "data": work_dir / "data",
        "pipeline": work_dir / "pipeline",
        "serving": work_dir / "serving",
        "metadata": work_dir / "metadata.sqlite",
        "logs": work_dir / "logs",
    }


def build_peer_pipeline(work_dir: Path, train_steps: int, eval_steps: int) -> Any:
    """The example's pipeline over ``work_dir/data``, with the documented Trainer settings."""
    from tfx.components import Trainer
    from tfx.proto import trainer_pb2
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    peer_pipeline = _pipeline_module()
    spec = importlib.util.find_spec(PEER_UTILS_MODULE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{PEER_UTILS_MODULE} is not installed")
    paths = _layout(work_dir)
    pipeline = peer_pipeline._create_pipeline(
        pipeline_name=pipeline_name(),
        pipeline_root=str(paths["pipeline"]),
        data_root=str(paths["data"]),
        module_file=spec.origin,  # Transform keeps the example's module file
        serving_model_dir=str(paths["serving"]),
        metadata_path=str(paths["metadata"]),
        beam_pipeline_args=list(peer_pipeline._beam_pipeline_args),
    )
    (trainer,) = [c for c in pipeline.components if isinstance(c, Trainer)]
    props = trainer.exec_properties
    # The component spec keeps proto parameters as deterministic JSON text; keep the form.
    for key, proto_type, num_steps in (
        (specs.TRAIN_ARGS_KEY, trainer_pb2.TrainArgs, train_steps),
        (specs.EVAL_ARGS_KEY, trainer_pb2.EvalArgs, eval_steps),
    ):
        value = props[key]
        args = proto_type()
        if isinstance(value, str):
            proto_utils.json_to_proto(value, args)
        else:
            args.CopyFrom(value)
        args.num_steps = num_steps
        props[key] = proto_utils.proto_to_json(args) if isinstance(value, str) else args
    # Exactly one of module_file / module_path / run_fn may be set (udf_utils.get_fn). With
    # module_file unset, the Trainer's module-packaging dependency resolves to nothing.
    props[specs.MODULE_FILE_KEY] = None
    props[specs.MODULE_PATH_KEY] = None
    props[specs.RUN_FN_KEY] = PEER_RUN_FN
    return pipeline


def run_pipeline(work_dir: Path, train_steps: int, eval_steps: int) -> None:
    """Build and run the example's pipeline with BeamDagRunner (its runner), in this process."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    BeamDagRunner().run(build_peer_pipeline(work_dir, train_steps, eval_steps))


def peer_scorer(model_dir: Path) -> Any:
    """The example's ``serving_default``: serialized tf.Example with a ``text`` feature in, one
    logit out. Building the Examples is part of each call (a client has to)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    signature = loaded.signatures["serving_default"]

    def score(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        examples = [
            tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "text": tf.train.Feature(
                            bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])
                        )
                    }
                )
            ).SerializeToString()
            for text in batch
        ]
        out = signature(examples=tf.constant(examples, dtype=tf.string))
        _ = loaded  # keep the SavedModel (and its variables) alive with the signature
        (logits,) = out.values()
        logits = logits.numpy().reshape(-1)
        return logits, (logits > 0).astype(np.int64)

    return score


def _csv_rows(path: Path) -> int:
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    with path.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def run_peer(
    archive_dir: str | Path,
    work_dir: str | Path,
    *,
    steps: tuple[int, int] = (PEER_TRAIN_STEPS, PEER_EVAL_STEPS),
    latency_samples: int | None = None,
    latency_warmup: int | None = None,
) -> dict[str, Any]:
    """Run and measure the example. ``archive_dir`` is the folder ``import-imdb`` wrote (its
    ``train.csv`` trains the example, its ``test.csv`` measures it); ``work_dir`` is emptied."""
    from bench.imdb import (
        LATENCY_SAMPLES,
        LATENCY_WARMUP,
        check,
        dir_bytes,
        measure_serving,
        model_to_measure,
        read_labelled_csv,
        reset_dir,
        run_measured,
    )
    from pipeline.imdb import TEST_CSV, TRAIN_CSV
    from pipeline.status import read_run

    source = Path(archive_dir).expanduser().resolve()
    work = Path(work_dir).expanduser().resolve()
    paths = _layout(work)
    reset_dir(work, PEER_DIR_ENTRIES)
    paths["data"].mkdir(parents=True)
    # The example's ExampleGen reads every file in data_root: only the training reviews.
    (paths["data"] / TRAIN_CSV).symlink_to(source / TRAIN_CSV)

    train_steps, eval_steps = steps
    log = paths["logs"] / "peer-run.log"
    cmd = [sys.executable, "-m", "bench.peer_imdb", "run", "--work-dir", str(work)]
    cmd += ["--peer-steps", f"{train_steps}/{eval_steps}"]
    run = run_measured(cmd, log)
    check(run, "the TFX IMDB example", log)

    name = pipeline_name()
    status = read_run(str(paths["metadata"]), name)
    component_seconds = {c.node_id: c.seconds for c in status.components}
    model_dir = model_to_measure(status, "the TFX IMDB example")

    texts, labels = read_labelled_csv(source / TEST_CSV)
    serving = measure_serving(
        peer_scorer(model_dir),
        texts,
        labels,
        latency_samples=LATENCY_SAMPLES if latency_samples is None else latency_samples,
        latency_warmup=LATENCY_WARMUP if latency_warmup is None else latency_warmup,
    )
    transform_rows = _csv_rows(source / TRAIN_CSV)  # its train + eval splits
    transform_seconds = component_seconds.get("Transform", math.nan)
    trainer_seconds = component_seconds.get("Trainer", math.nan)
    return {
        "settings": {
            "pipeline_module": PEER_PIPELINE_MODULE,
            "utils_module": PEER_UTILS_MODULE,
            "runner": "BeamDagRunner",
            "beam_pipeline_args": list(_pipeline_module()._beam_pipeline_args),
            "batch_size": PEER_BATCH_SIZE,
            "train_steps": train_steps,
            "eval_steps": eval_steps,
        },
        "pipeline_name": name,
        "run_id": status.run_id,
        "wall_seconds_total": run.seconds,
        "component_seconds": component_seconds,
        "evaluator_binary_accuracy": status.metrics.get("binary_accuracy"),
        "evaluator_metrics": status.metrics,
        "blessed": status.blessed,
        "pushed_model": str(model_dir) if status.pushed_destination else None,
        "measured_model": str(model_dir),
        "transform_rows": transform_rows,
        "transform_rows_per_s": transform_rows / transform_seconds if transform_seconds else None,
        # Its run_fn is not instrumented: the Trainer component's duration, which also covers
        # model building, the eval_steps validation pass and the export.
        "trainer_examples_per_s": train_steps * PEER_BATCH_SIZE / trainer_seconds
        if trainer_seconds
        else None,
        "trainer": {
            "steps": train_steps,
            "batch_size": PEER_BATCH_SIZE,
            "seconds": trainer_seconds,
            "seconds_source": "Trainer component seconds",
        },
        "keras_examples_per_s": None,
        "trainer_vs_keras": None,
        **serving,
        "peak_rss_mb": run.peak_rss_mb,
        "peak_rss": {
            "max_process_mb": run.max_process_rss_mb,
            "sampled_tree_pss_mb": run.sampled_tree_pss_mb,
        },
        "model_size_mb": dir_bytes(model_dir) / 1024**2,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peer_imdb", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run the example and measure it; print JSON")
    bench.add_argument("--data", type=Path, required=True, help="folder from import-imdb")
    bench.add_argument("--work-dir", type=Path, required=True, help="emptied first")
    bench.add_argument("--latency-samples", type=int, default=None)
    bench.add_argument("--latency-warmup", type=int, default=None)
    run = sub.add_parser("run", help="only run the pipeline over WORK_DIR/data (used by bench)")
    run.add_argument("--work-dir", type=Path, required=True)
    for command in (bench, run):
        command.add_argument(
            "--peer-steps", type=parse_steps, default=(PEER_TRAIN_STEPS, PEER_EVAL_STEPS),
            metavar="TRAIN/EVAL", help="train/eval steps (default: the documented 7000/800)",
        )  # fmt: skip
    args = parser.parse_args(argv)

    if args.command == "run":
        started = time.perf_counter()
        run_pipeline(args.work_dir.resolve(), *args.peer_steps)
        print(f"TFX IMDB example finished in {time.perf_counter() - started:.1f} s")
        return 0

    from bench.imdb import json_safe, quiet_tensorflow

    quiet_tensorflow()
    result = run_peer(
        args.data,
        args.work_dir,
        steps=args.peer_steps,
        latency_samples=args.latency_samples,
        latency_warmup=args.latency_warmup,
    )
    print(json.dumps(json_safe(result), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
