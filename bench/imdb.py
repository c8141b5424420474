"""Benchmark the pipeline on the full IMDB Large Movie Review set (25,000 train / 25,000 test).

    make bench-imdb IMDB=<archive path or URL> [BENCH_ARGS=--skip-peer]
    .venv/bin/python -m bench.imdb --archive A [--work-dir DIR] [--config configs/imdb.yaml]
        [--skip-peer] [--set section.key=value ...]

Run from the repository root. Steps (methodology in bench/README.md):

1. ``sentiment-pipeline data import-imdb ARCHIVE WORK/data/imdb`` (subprocess, timed).
2. ``sentiment-pipeline run --config CONFIG --data WORK/data/imdb`` in a fresh ``WORK/run``
   (subprocess; wall time and peak RSS of its process tree).
3. The run read back from ML Metadata (component durations, Evaluator metrics, push).
4. The pushed model measured through ``serving_default`` on all test reviews: accuracy, AUC,
   batched throughput, single-review latency; its size on disk.
5. Throughput of Transform (rows/s) and of the Trainer (examples/s in training steps).
6. Bare Keras: the same model on the same transformed examples held in memory.
7. The TFX project's own IMDB example at its documented settings (bench/peer_imdb.py).

Writes bench/results/imdb-latest.json and bench/results/imdb-latest.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS_JSON = REPO / "bench" / "results" / "imdb-latest.json"
RESULTS_MD = REPO / "bench" / "results" / "imdb-latest.md"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "sentiment-bench-imdb"
DEFAULT_CONFIG = "configs/imdb.yaml"
# What a pipeline run writes into its work_dir (the only entries reset_dir deletes); checked
# against a real run by tests/test_e2e.py.
RUN_DIR_ENTRIES = ("inputs", "pipeline", "serving", "metadata.sqlite", "logs", "reports")

# Serving measurement defaults.
SERVING_BATCH_SIZE = 256
LATENCY_SAMPLES = 300
LATENCY_WARMUP = 20

# (key, label, comparison, bound, unit) for the markdown report.
TARGETS: list[tuple[str, str, str, float, str]] = [
    ("test_accuracy", "Test accuracy ({test_examples:,} reviews)", ">=", 0.900, ""),
    ("wall_seconds_total", "Pipeline wall time", "<=", 20 * 60, "s"),
    ("serving_p50_ms", "Serving latency p50 (1 review)", "<=", 5.0, "ms"),
    ("serving_p99_ms", "Serving latency p99 (1 review)", "<=", 15.0, "ms"),
    ("serving_batched_per_s", "Batched serving (256/batch)", ">=", 2000.0, "reviews/s"),
    ("trainer_vs_keras", "Trainer / bare Keras throughput", ">=", 0.9, ""),
    ("peak_rss_mb", "Peak RSS", "<=", 8 * 1024, "MiB"),
]
# Reported without a target.
OTHER_FIGURES: list[tuple[str, str, str]] = [
    ("test_auc", "Test AUC", ""),
    ("evaluator_binary_accuracy", "Evaluator accuracy (its gating split)", ""),
    ("transform_rows_per_s", "Transform throughput", "rows/s"),
    ("trainer_examples_per_s", "Trainer throughput (steady state)", "examples/s"),
    ("trainer_examples_per_s_all_steps", "Trainer throughput (every step)", "examples/s"),
    ("keras_examples_per_s", "Bare Keras throughput", "examples/s"),
    ("model_size_mb", "Model size", "MiB"),
    ("import_seconds", "Archive import", "s"),
]


def model_to_measure(status: Any, what: str) -> Path:
    """The pushed version, or the candidate when it was not pushed (so figures still exist)."""
    from pipeline.predict import newest_version

    if status.pushed_destination:
        return newest_version(Path(status.pushed_destination))
    if status.model_uri:
        return Path(status.model_uri) / "Format-Serving"
    raise BenchError(f"{what} produced no model")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and where its log is."""


# --- child processes: wall time and peak memory ----------------------------------------------


@dataclass(frozen=True)
class Measured:
    returncode: int
    seconds: float
    # ru_maxrss from wait4() of the child: the largest single process among the child and its
    # waited-for descendants (exact, but not a sum over concurrent processes).
    max_process_rss_mb: float
    # The sum of PSS over the child's whole process tree (Beam workers included), sampled every
    # SAMPLE_INTERVAL_S: catches concurrent processes, may miss a peak shorter than a sample.
    sampled_tree_pss_mb: float

    @property
    def peak_rss_mb(self) -> float:
        return max(self.max_process_rss_mb, self.sampled_tree_pss_mb)


# Reading smaps_rollup walks the process's page tables (about 30 ms of CPU, 43 ms wall, for
# the 2 GB Trainer process here), taken from the run being measured: a sample every 0.5 s
# took about 3% of the 2-core machine during training.
SAMPLE_INTERVAL_S = 2.0


def _parent_pids() -> dict[int, int]:
    """{pid: parent pid} of every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may contain spaces) are: state, ppid, ...
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` (shared pages split between their users, so a sum over
    processes does not count shared libraries twice); VmRSS where smaps_rollup is missing."""
    for path, field in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def tree_pss_kib(root: int) -> int:
    """Memory of ``root`` and all its descendants: the sum of their proportional set sizes."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parent_pids().items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss_kib(pid)
        todo.extend(children.get(pid, []))
    return total


class _TreeMemorySampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_INTERVAL_S):
            self.peak_kib = max(self.peak_kib, tree_pss_kib(self.pid))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_measured(cmd: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` in the repository root with its output in ``log_path``; time it and measure
    its peak memory (see ``Measured``). Linux only (wait4, /proc)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = _TreeMemorySampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop()
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=proc.returncode,
        seconds=seconds,
        max_process_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        sampled_tree_pss_mb=sampler.peak_kib / 1024,
    )


def check(measured: Measured, what: str, log_path: Path) -> None:
    if measured.returncode == 0:
        return
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
    raise BenchError(
        f"{what} failed with exit code {measured.returncode}; last lines of {log_path}:\n"
        + "\n".join(tail)
    )


# --- serving ---------------------------------------------------------------------------------

# A batch of raw reviews -> (positive-class score, predicted label) per review.
Scorer = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]


def read_labelled_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and labels of a ``text,label`` CSV written by ``import-imdb``."""
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    texts: list[str] = []
    labels: list[int] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype=np.int64)


def measure_serving(
    score: Scorer,
    texts: list[str],
    labels: np.ndarray,
    *,
    batch_size: int = SERVING_BATCH_SIZE,
    latency_samples: int = LATENCY_SAMPLES,
    latency_warmup: int = LATENCY_WARMUP,
    seed: int = 0,
) -> dict[str, Any]:
    """Quality and speed of ``score`` on every review.

    One warm-up batch, then the whole set in batches of ``batch_size`` (timed; its outputs give
    accuracy and AUC); then ``latency_warmup`` + ``latency_samples`` calls with one randomly
    chosen review each, the latter timed one by one."""
    from sklearn.metrics import roc_auc_score

    score(texts[:batch_size])  # warm-up
    scores, predicted = [], []
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        s, p = score(texts[start : start + batch_size])
        scores.append(s)
        predicted.append(p)
    batched_seconds = time.perf_counter() - started
    all_scores = np.concatenate(scores)
    all_predicted = np.concatenate(predicted)
    auc = float(roc_auc_score(labels, all_scores)) if len(np.unique(labels)) == 2 else float("nan")

    rng = np.random.default_rng(seed)
    total = latency_warmup + latency_samples
    picks = rng.choice(len(texts), size=total, replace=len(texts) < total)
    latencies_ms = []
    for i, index in enumerate(picks):
        started = time.perf_counter()
        score([texts[index]])
        elapsed = time.perf_counter() - started
        if i >= latency_warmup:
            latencies_ms.append(elapsed * 1e3)
    lat = np.asarray(latencies_ms)
    return {
        "test_examples": len(texts),
        "test_accuracy": float(np.mean(all_predicted == labels)),
        "test_auc": auc,
        "serving_batched_per_s": len(texts) / batched_seconds,
        "serving_batched_seconds": batched_seconds,
        "serving_batch_size": batch_size,
        "serving_p50_ms": float(np.percentile(lat, 50)),
        "serving_p99_ms": float(np.percentile(lat, 99)),
        "serving_mean_ms": float(lat.mean()),
        "latency_samples": latency_samples,
        "latency_warmup": latency_warmup,
    }


def pipeline_scorer(model_dir: Path) -> Scorer:
    """The pipeline's ``serving_default`` signature: raw strings in, class probabilities out."""
    import tensorflow as tf

    from components import features

    loaded = tf.saved_model.load(str(model_dir))
    signature = loaded.signatures[features.SERVING_RAW]

    def score(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        out = signature(text=tf.constant(batch, dtype=tf.string))
        probabilities = out[features.OUTPUT_PROBABILITIES].numpy()
        _ = loaded  # keep the SavedModel (and its variables) alive with the signature
        return probabilities[:, 1], out[features.OUTPUT_LABEL].numpy()

    return score


def reset_dir(path: Path, own_entries: tuple[str, ...]) -> None:
    """Delete ``path``, a directory an earlier bench wrote, so the next step starts fresh.
    Refuses when it holds an entry whose name starts with none of ``own_entries``."""
    if not path.exists():
        return
    foreign = sorted(p.name for p in path.iterdir() if not p.name.startswith(own_entries))
    if foreign:
        raise BenchError(
            f"{path} holds {', '.join(foreign[:5])}, which the bench did not write; not deleting "
            "it: choose another --work-dir"
        )
    shutil.rmtree(path)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- trainer vs bare Keras -------------------------------------------------------------------


def transform_outputs(metadata_path: str, pipeline_name: str) -> tuple[str, str]:
    """(transform_graph URI, transformed_examples URI) of the latest Transform execution."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline import pipeline as p
    from pipeline.status import open_store

    store = open_store(metadata_path)
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{p.TRANSFORM}")
    if node is None:
        raise BenchError(f"no {p.TRANSFORM} node of '{pipeline_name}' in {metadata_path}")
    executions = store.get_executions_by_context(node.id)
    latest = max(executions, key=lambda e: e.create_time_since_epoch)
    events = store.get_events_by_execution_ids([latest.id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = store.get_artifacts_by_id(ids)
    graph = next((a.uri for a in artifacts if a.type == "TransformGraph"), None)
    examples = next((a.uri for a in artifacts if a.type == "Examples"), None)
    if graph is None or examples is None:
        raise BenchError(f"the {p.TRANSFORM} execution {latest.id} has no graph or examples")
    return graph, examples


def load_transformed_train(
    examples_uri: str, feature_spec: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, token_count, label) of every example in the transformed ``train`` split."""
    import tensorflow as tf

    from components import features

    files = sorted(str(f) for f in Path(examples_uri, "Split-train").iterdir() if f.is_file())
    if not files:
        raise BenchError(f"{examples_uri}/Split-train: no transformed examples")
    compression = "GZIP" if files[0].endswith(".gz") else ""
    dataset = (
        tf.data.TFRecordDataset(files, compression_type=compression)
        .batch(1024)
        .map(lambda serialized: tf.io.parse_example(serialized, feature_spec))
    )
    tokens, counts, labels = [], [], []
    for batch in dataset:
        tokens.append(batch[features.TOKENS_KEY].numpy())
        counts.append(batch[features.TOKEN_COUNT_KEY].numpy().reshape(-1))
        labels.append(batch[features.LABEL_KEY].numpy().reshape(-1))
    return np.concatenate(tokens), np.concatenate(counts), np.concatenate(labels)


def in_memory_batches(
    tokens: np.ndarray,
    counts: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    bucket_by_length: bool,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Full batches shaped like the Trainer's: padded to max_sequence_length, or with
    ``bucket_by_length`` grouped into the Trainer's length buckets and cut to their longest."""
    from components.trainer import BUCKET_WIDTH

    max_len = tokens.shape[1]
    if bucket_by_length:
        lengths = np.clip(counts, 1, max_len)
        last_bucket = len(range(BUCKET_WIDTH, max_len, BUCKET_WIDTH))
        bucket_of = np.minimum((lengths - 1) // BUCKET_WIDTH, last_bucket)
        groups = [rng.permutation(np.flatnonzero(bucket_of == b)) for b in np.unique(bucket_of)]
    else:
        lengths = np.full(len(tokens), max_len)
        groups = [rng.permutation(len(tokens))]
    batches = []
    for group in groups:
        for start in range(0, len(group) - batch_size + 1, batch_size):
            chunk = group[start : start + batch_size]
            width = int(lengths[chunk].max())
            batches.append((tokens[chunk, :width], labels[chunk]))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def keras_throughput(
    config: Any,
    transform_graph_uri: str,
    examples_uri: str,
    *,
    num_examples: int | None,
    steps: int | None,
    warmup_steps: int | None,
) -> dict[str, Any]:
    """Examples/s of ``model.fit`` on the pipeline's model and transformed examples in memory,
    timed per training step exactly as the Trainer times itself (batch begin to batch end).
    By default on the whole training split, batched as the Trainer batches it: ``steps`` timed
    steps (default: one pass) after ``warmup_steps`` untimed ones (default: as many as the
    Trainer times apart). ``num_examples`` samples that many examples instead."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    from components import features
    from components.model import build_model
    from components.trainer import WARMUP_STEPS, model_params
    from pipeline.runner import trainer_custom_config

    transform_output = tft.TFTransformOutput(transform_graph_uri)
    vocab_file = transform_output.vocabulary_file_by_name(features.VOCAB_NAME)
    with tf.io.gfile.GFile(vocab_file, "rb") as handle:
        vocab_size = sum(1 for _ in handle)
    custom_config = trainer_custom_config(config)
    batch_size = int(custom_config["batch_size"])
    bucket = bool(custom_config.get("bucket_by_length", False))

    tokens, counts, labels = load_transformed_train(
        examples_uri, transform_output.transformed_feature_spec()
    )
    rng = np.random.default_rng(config.model.seed)
    if num_examples is None:  # the whole split (in_memory_batches shuffles it)
        num_examples = len(tokens)
    else:
        pick = rng.choice(len(tokens), size=num_examples, replace=len(tokens) < num_examples)
        tokens, counts, labels = tokens[pick], counts[pick], labels[pick]
    batches = in_memory_batches(tokens, counts, labels, batch_size, bucket, rng)
    if not batches:
        raise BenchError(f"no full batch of {batch_size} from {num_examples} sampled examples")

    def forever():
        while True:
            yield from batches

    dataset = tf.data.Dataset.from_generator(
        forever,
        output_signature=(
            tf.TensorSpec([None, None], tf.int64),
            tf.TensorSpec([None], tf.int64),
        ),
    ).prefetch(tf.data.AUTOTUNE)

    class StepTimer(keras.callbacks.Callback):
        """Seconds inside training steps (batch begin to batch end) and steps taken."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds, self.steps, self._start = 0.0, 0, 0.0

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.seconds += time.perf_counter() - self._start
            self.steps += 1

    keras.utils.set_random_seed(config.model.seed)
    params = model_params(custom_config, vocab_size, total_steps=config.model.num_iterations)
    model = build_model(params)
    if warmup_steps is None:
        warmup_steps = WARMUP_STEPS
    model.fit(dataset, steps_per_epoch=warmup_steps, epochs=1, verbose=0)
    timer = StepTimer()
    started = time.perf_counter()
    model.fit(
        dataset, steps_per_epoch=steps or len(batches), epochs=1, verbose=0, callbacks=[timer]
    )
    fit_seconds = time.perf_counter() - started
    return {
        "keras_examples_per_s": timer.steps * batch_size / timer.seconds,
        "keras": {
            "sampled_examples": num_examples,
            "distinct_batches": len(batches),
            "mean_batch_length": float(np.mean([b[0].shape[1] for b in batches])),
            "bucket_by_length": bucket,
            "batch_size": batch_size,
            "warmup_steps": warmup_steps,
            "steps": timer.steps,
            "step_seconds": timer.seconds,
            "fit_seconds": fit_seconds,
            "vocab_size": vocab_size,
        },
    }


def trainer_throughput(status: Any, config: Any) -> dict[str, Any]:
    """Examples/s in the Trainer's training steps after its warm-up steps (as bare Keras is
    timed), from its history.json; all steps, and the Trainer component's duration without
    a history, are reported beside it."""
    from components.trainer import HISTORY_FILE

    history: dict[str, Any] = {}
    if status.model_run_uri:
        path = Path(status.model_run_uri) / HISTORY_FILE
        if path.is_file():
            history = json.loads(path.read_text(encoding="utf-8"))
    steps = int(history.get("train_steps") or config.model.num_iterations)
    batch_size = int(history.get("batch_size") or config.model.batch_size)
    warmup_steps = int(history.get("warmup_steps") or 0)
    warmup_seconds = float(history.get("warmup_seconds") or 0.0)
    if history.get("train_seconds"):
        seconds, source = float(history["train_seconds"]), "history.json train_seconds"
    else:
        seconds = next((c.seconds for c in status.components if c.node_id == "Trainer"), math.nan)
        source = "Trainer component seconds"
    all_steps = steps * batch_size / seconds if seconds else math.nan
    steady = all_steps
    if warmup_steps and steps > warmup_steps and seconds > warmup_seconds:
        steady = (steps - warmup_steps) * batch_size / (seconds - warmup_seconds)
    return {
        "trainer_examples_per_s": steady,
        "trainer_examples_per_s_all_steps": all_steps,
        "trainer": {
            "steps": steps,
            "batch_size": batch_size,
            "seconds": seconds,
            "seconds_source": source,
            "warmup_steps": warmup_steps,
            "warmup_seconds": warmup_seconds,
            "epoch_train_seconds": history.get("epoch_train_seconds"),
            "fit_seconds": history.get("fit_seconds"),
            "epochs": history.get("epochs"),
        },
    }


# --- report ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "machine": f"{platform.node()} {platform.machine()} {model}".strip(),
        "cpus": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
    }


def json_safe(value: Any) -> Any:
    """NaN and infinities become null; floats are rounded for reading."""
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value.is_integer() or abs(value) >= 100:
            text = f"{value:,.0f}"
        elif abs(value) >= 10:
            text = f"{value:.1f}"
        else:
            text = f"{value:.3f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _verdict(value: Any, comparison: str, bound: float) -> str:
    if value is None:
        return "n/a"
    ok = value >= bound if comparison == ">=" else value <= bound
    return "yes" if ok else "**no**"


def markdown_report(result: dict[str, Any]) -> str:
    peer = result.get("peer") or {}
    has_peer = "settings" in peer
    lines = [
        f"# IMDB benchmark, {result['date']}",
        "",
        f"Machine: {result['machine']}, {result['cpus']} CPUs. Config: `{result['config']}`"
        + (f", overrides: `{' '.join(result['overrides'])}`" if result["overrides"] else "")
        + ".",
        f"Pushed model: `{result['pushed_model']}`. "
        f"Bench total: {_fmt(result['bench_seconds'], 's')}.",
        "",
    ]
    header = "| Figure | Target | This pipeline | Met |"
    rule = "|---|---|---|---|"
    if has_peer:
        header += " TFX IMDB example | Met |"
        rule += "---|---|"
    lines += [header, rule]
    for key, label, comparison, bound, unit in TARGETS:
        ours = result.get(key)
        bound_text = f"{comparison} {_fmt(float(bound), unit)}"
        verdict = _verdict(ours, comparison, bound)
        label = label.format(test_examples=result.get("test_examples") or 0)
        row = f"| {label} | {bound_text} | {_fmt(ours, unit)} | {verdict} |"
        if has_peer:
            theirs = peer.get(key)
            row += f" {_fmt(theirs, unit)} | {_verdict(theirs, comparison, bound)} |"
        lines.append(row)
    for key, label, unit in OTHER_FIGURES:
        row = f"| {label} | | {_fmt(result.get(key), unit)} | |"
        if has_peer:
            row += f" {_fmt(peer.get(key), unit)} | |"
        lines.append(row)
    lines += ["", "Component seconds:", ""]
    names = list(result["component_seconds"])
    if has_peer:
        names += [n for n in peer.get("component_seconds", {}) if n not in names]
    lines += ["| Component | This pipeline |" + (" TFX IMDB example |" if has_peer else "")]
    lines += ["|---|---|" + ("---|" if has_peer else "")]
    for name in names:
        row = f"| {name} | {_fmt(result['component_seconds'].get(name))} |"
        if has_peer:
            row += f" {_fmt(peer.get('component_seconds', {}).get(name))} |"
        lines.append(row)
    if peer.get("skipped"):
        lines += ["", "Peer (TFX IMDB example): skipped (--skip-peer)."]
    elif peer.get("pending"):
        lines += ["", "Peer (TFX IMDB example): running."]
    elif peer.get("error"):
        lines += ["", f"Peer (TFX IMDB example): failed: {peer['error']}"]
    elif has_peer:
        s = peer.get("settings", {})
        lines += [
            "",
            f"Peer: `{s.get('pipeline_module')}` (BeamDagRunner, batch {s.get('batch_size')}, "
            f"{s.get('train_steps')} train / {s.get('eval_steps')} eval steps); it trains on "
            f"the {peer.get('transform_rows') or 0:,} train reviews (its own 90/10 train/eval "
            f"split) and is measured on the same {peer.get('test_examples') or 0:,} test "
            "reviews. Its Evaluator accuracy is on its eval split, thresholding logits at 0.5. "
            "Its Trainer throughput is over the Trainer component's whole time (its run_fn "
            "is not instrumented); ours is timed in the training steps.",
        ]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def _cli(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("tensorflow", "absl", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from bench.peer_imdb import PEER_EVAL_STEPS, PEER_TRAIN_STEPS, parse_steps

    parser = argparse.ArgumentParser(
        prog="python -m bench.imdb", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--archive", required=True, help="aclImdb_v1.tar.gz path, folder or URL")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="scratch space")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline config")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override passed to the pipeline run (repeatable)",
    )  # fmt: skip
    parser.add_argument("--skip-peer", action="store_true", help="do not run the TFX example")
    parser.add_argument(
        "--peer-from", metavar="JSON",
        help="reuse the peer figures of an earlier results file instead of re-running it",
    )  # fmt: skip
    parser.add_argument(
        "--peer-steps", type=parse_steps, default=(PEER_TRAIN_STEPS, PEER_EVAL_STEPS),
        metavar="TRAIN/EVAL", help="peer train/eval steps (default: its documented 7000/800)",
    )  # fmt: skip
    parser.add_argument("--reuse-import", action="store_true", help="keep an earlier import")
    parser.add_argument("--latency-samples", type=int, default=LATENCY_SAMPLES)
    parser.add_argument("--latency-warmup", type=int, default=LATENCY_WARMUP)
    parser.add_argument(
        "--keras-steps", type=int, default=None,
        help="timed steps of bare Keras (default: one pass over the training split)",
    )  # fmt: skip
    parser.add_argument(
        "--keras-warmup-steps", type=int, default=None,
        help="untimed first steps of bare Keras (default: the Trainer's warm-up steps)",
    )  # fmt: skip
    parser.add_argument(
        "--keras-examples", type=int, default=None,
        help="examples sampled for bare Keras (default: the whole training split)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench_started = time.perf_counter()
    quiet_tensorflow()
    from pipeline.config import ConfigError, load_config
    from pipeline.imdb import MANIFEST, TEST_CSV
    from pipeline.status import read_run

    work = args.work_dir.expanduser().resolve()
    data_dir, run_dir, logs = work / "data" / "imdb", work / "run", work / "logs"
    config_path = str(Path(args.config).expanduser().resolve())
    overrides = [*args.overrides, f"pipeline.work_dir={run_dir}"]
    try:
        config = load_config(config_path, [*overrides, f"data.source={data_dir}"])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    archive = args.archive if "://" in args.archive else str(Path(args.archive).resolve())
    print(f"[1/7] importing {archive} into {data_dir}", flush=True)
    if not args.reuse_import:
        (data_dir / MANIFEST).unlink(missing_ok=True)  # forces a timed import; keeps a download
    imported = run_measured(
        [_cli("sentiment-pipeline"), "data", "import-imdb", archive, str(data_dir)],
        logs / "import.log",
    )
    check(imported, "import-imdb", logs / "import.log")
    manifest = json.loads((data_dir / MANIFEST).read_text(encoding="utf-8"))

    print(f"[2/7] running the pipeline in a fresh {run_dir}", flush=True)
    reset_dir(run_dir, RUN_DIR_ENTRIES)
    cmd = [_cli("sentiment-pipeline"), "run", "--config", config_path]
    for override in overrides:
        cmd += ["--set", override]
    cmd += ["--data", str(data_dir)]
    run = run_measured(cmd, logs / "run.log")
    check(run, "the pipeline run", logs / "run.log")
    print(f"      {run.seconds:.0f} s, peak RSS {run.peak_rss_mb:.0f} MiB", flush=True)

    print("[3/7] reading the run from ML Metadata", flush=True)
    metadata_path = config.pipeline.resolved_metadata_path
    status = read_run(metadata_path, config.pipeline.name)
    prepared = sorted((run_dir / "inputs").glob("*/prepared.json"), key=lambda p: p.stat().st_mtime)
    rows = json.loads(prepared[-1].read_text(encoding="utf-8"))["rows"] if prepared else {}
    component_seconds = {c.node_id: c.seconds for c in status.components}

    print("[4/7] measuring the pushed model on every test review", flush=True)
    model_dir = model_to_measure(status, "the run")
    texts, labels = read_labelled_csv(data_dir / TEST_CSV)
    serving = measure_serving(
        pipeline_scorer(model_dir),
        texts,
        labels,
        latency_samples=args.latency_samples,
        latency_warmup=args.latency_warmup,
    )
    print(
        f"      accuracy {serving['test_accuracy']:.4f}, p50 {serving['serving_p50_ms']:.1f} ms",
        flush=True,
    )

    print("[5/7] trainer and transform throughput", flush=True)
    trainer = trainer_throughput(status, config)
    transform_seconds = component_seconds.get("Transform", math.nan)
    transform_rows = sum(rows.values())

    print("[6/7] bare Keras on the same model and data in memory", flush=True)
    graph_uri, examples_uri = transform_outputs(metadata_path, config.pipeline.name)
    keras = keras_throughput(
        config,
        graph_uri,
        examples_uri,
        num_examples=args.keras_examples,
        steps=args.keras_steps,
        warmup_steps=args.keras_warmup_steps,
    )

    metrics = status.metrics
    figures: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **machine_info(),
        "archive": archive,
        "work_dir": str(work),
        "config": args.config,
        "overrides": list(args.overrides),
        "run_command": cmd,
        "pipeline_name": config.pipeline.name,
        "run_id": status.run_id,
        "import_seconds": imported.seconds,
        "imported_counts": manifest.get("counts"),
        "data_rows": rows,
        "test_accuracy": serving["test_accuracy"],
        "test_auc": serving["test_auc"],
        "test_examples": serving["test_examples"],
        "evaluator_binary_accuracy": metrics.get("binary_accuracy"),
        "evaluator_auc": metrics.get("auc"),
        "evaluator_metrics": metrics,
        "blessed": status.blessed,
        "blessing_reasons": status.reasons,
        "pushed_model": str(model_dir) if status.pushed_destination else None,
        "measured_model": str(model_dir),
        "wall_seconds_total": run.seconds,
        "component_seconds": component_seconds,
        "transform_rows": transform_rows,
        "transform_rows_per_s": transform_rows / transform_seconds if transform_seconds else None,
        **trainer,
        **keras,
        "trainer_vs_keras": trainer["trainer_examples_per_s"] / keras["keras_examples_per_s"],
        **{k: v for k, v in serving.items() if k not in ("test_accuracy", "test_auc")},
        "peak_rss_mb": run.peak_rss_mb,
        "peak_rss": {
            "max_process_mb": run.max_process_rss_mb,
            "sampled_tree_pss_mb": run.sampled_tree_pss_mb,
            "sample_interval_s": SAMPLE_INTERVAL_S,
        },
        "model_size_mb": dir_bytes(model_dir) / 1024**2,
    }

    def write(peer: dict[str, Any]) -> str:
        result = json_safe(
            {**figures, "bench_seconds": time.perf_counter() - bench_started, "peer": peer}
        )
        write_atomic(RESULTS_JSON, json.dumps(result, indent=2, allow_nan=False) + "\n")
        report = markdown_report(result)
        write_atomic(RESULTS_MD, report)
        return report

    peer: dict[str, Any] = {"skipped": True}
    if args.peer_from:
        earlier = json.loads(Path(args.peer_from).read_text(encoding="utf-8"))
        peer = {**earlier["peer"], "reused_from": f"{args.peer_from} ({earlier.get('date')})"}
        print(f"[7/7] peer figures reused from {args.peer_from} ({earlier.get('date')})")
    elif args.skip_peer:
        print("[7/7] peer skipped (--skip-peer)")
    else:
        # This pipeline's figures are on disk before the (long) peer run starts.
        write({"pending": True})
        train_steps, eval_steps = args.peer_steps
        print(f"[7/7] the TFX IMDB example ({train_steps}/{eval_steps} steps)", flush=True)
        from bench.peer_imdb import run_peer

        try:
            peer = run_peer(
                data_dir,
                work / "peer",
                steps=args.peer_steps,
                latency_samples=args.latency_samples,
                latency_warmup=args.latency_warmup,
            )
        except Exception as exc:  # the peer is a comparison: keep this pipeline's figures
            peer = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"error: the TFX IMDB example failed: {exc}", file=sys.stderr)
    report = write(peer)
    print("\n" + report)
    print(f"written to {RESULTS_JSON} and {RESULTS_MD}")
    return 1 if "error" in peer else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
