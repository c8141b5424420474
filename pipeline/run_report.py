"""A static HTML report of one run, with PNG charts (matplotlib) and no JavaScript.

Everything comes from the run's own record: ML Metadata names the artifacts; the Transform
output gives rows, classes, review lengths and vocabulary coverage; ``history.json`` of the
Trainer gives the training curves; TFMA's results give metrics, thresholds, baseline deltas, the
confusion matrix and the metrics per review-length slice; the Pusher says what was published.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from matplotlib.figure import Figure

from components import features
from components.versioned_pusher import pushed_versions
from pipeline import pipeline as p
from pipeline.evaluation import accuracy_metric_name
from pipeline.status import RunStatus, read_run, threshold_text

REPORT_FILE = "index.html"
CANDIDATE, BASELINE = "candidate", "baseline"


@dataclass
class SplitSummary:
    rows: int = 0
    classes: Counter = field(default_factory=Counter)
    token_counts: list[int] = field(default_factory=list)
    tokens: int = 0  # non-padding token ids (after truncation)
    oov_tokens: int = 0
    width: int = 0  # max_sequence_length: the width of the padded token ids

    @property
    def oov_rate(self) -> float:
        return self.oov_tokens / self.tokens if self.tokens else 0.0


@dataclass
class MetricRow:
    name: str
    value: float | None
    baseline: float | None = None
    diff: float | None = None
    threshold: str = ""
    passed: bool | None = None


def report_dir(work_dir: str | Path, run_id: str) -> Path:
    """``<work_dir>/reports/<run id with ':' replaced>``."""
    return Path(work_dir) / "reports" / re.sub(r"[^A-Za-z0-9._-]", "-", run_id)


# --- reading the run --------------------------------------------------------------------------


def split_summaries(transformed_examples_uri: str, transform_graph_uri: str) -> dict:
    """Rows, class counts, token counts and OOV tokens per split of the Transform output."""
    output = tft.TFTransformOutput(transform_graph_uri)
    vocab_size = output.vocabulary_size_by_name(features.VOCAB_NAME)
    spec = output.transformed_feature_spec()
    summaries: dict[str, SplitSummary] = {}
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(transformed_examples_uri, "Split-*"))):
        name = os.path.basename(split_dir.rstrip("/"))[len("Split-") :]
        files = tf.io.gfile.glob(os.path.join(split_dir, "*"))
        summary = SplitSummary()
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(512)
        for batch in dataset.map(lambda x: tf.io.parse_example(x, spec)):
            ids = batch[features.TOKENS_KEY].numpy()
            summary.rows += len(ids)
            summary.width = ids.shape[1]
            summary.token_counts.extend(batch[features.TOKEN_COUNT_KEY].numpy().ravel().tolist())
            if features.LABEL_KEY in batch:
                summary.classes.update(batch[features.LABEL_KEY].numpy().ravel().tolist())
            real = ids != features.PADDING_ID
            summary.tokens += int(real.sum())
            summary.oov_tokens += int((ids > vocab_size + features.ID_OFFSET - 1).sum())
        summaries[name] = summary
    order = {"train": 0, "eval": 1, "test": 2}
    return dict(sorted(summaries.items(), key=lambda kv: (order.get(kv[0], 9), kv[0])))


def _snake(class_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def metric_rows(evaluation_uri: str) -> tuple[list[MetricRow], dict[str, dict[str, float]]]:
    """Overall metrics (candidate, baseline, delta, threshold, pass) and per-slice metrics."""
    eval_config = tfma.load_eval_result(evaluation_uri).config
    thresholds = {
        _snake(m.class_name): m.threshold
        for spec in eval_config.metrics_specs
        for m in spec.metrics
        if m.HasField("threshold")
    }
    failed = set()
    validation = tfma.load_validation_result(evaluation_uri)
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failed.add(failure.metric_key.name)

    overall: dict[str, MetricRow] = {}
    slices: dict[str, dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        keys = slice_metrics.slice_key.single_slice_keys
        for kv in slice_metrics.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            key, value = kv.key, kv.value.double_value.value
            is_baseline = key.model_name == BASELINE
            if keys:
                if not key.is_diff and not is_baseline:
                    bucket = keys[0].bytes_value.decode() or str(keys[0].int64_value)
                    slices.setdefault(bucket, {})[key.name] = value
                continue
            row = overall.setdefault(key.name, MetricRow(key.name, None))
            if key.is_diff:
                row.diff = value
            elif is_baseline:
                row.baseline = value
            else:
                row.value = value
    for name, threshold in thresholds.items():
        if name in overall:
            overall[name].threshold = threshold_text(threshold)
            overall[name].passed = name not in failed
    return list(overall.values()), slices


def confusion_matrix(evaluation_uri: str) -> dict[str, float] | None:
    """tp/fp/tn/fn of the overall slice at the 0.5 threshold (binary models)."""
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name and kv.key.model_name != CANDIDATE:
                continue
            matrices = kv.value.confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            best = min(matrices, key=lambda m: abs(m.threshold - 0.5))
            return {
                "tp": best.true_positives,
                "fp": best.false_positives,
                "tn": best.true_negatives,
                "fn": best.false_negatives,
            }
    return None


# --- charts -----------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path.name


def chart_lengths(splits: dict[str, SplitSummary], max_len: int | None, path: Path) -> str:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    longest = max((max(s.token_counts, default=0) for s in splits.values()), default=1)
    bins = np.linspace(0, max(longest, 1), 40)
    for name, summary in splits.items():
        ax.hist(summary.token_counts, bins=bins, alpha=0.5, label=name, density=True)
    if max_len:
        ax.axvline(max_len, color="black", linestyle="--", label=f"max_sequence_length {max_len}")
    ax.set_xlabel("tokens per review (before truncation)")
    ax.set_ylabel("share of reviews")
    ax.legend()
    return _save(fig, path)


def chart_classes(splits: dict[str, SplitSummary], class_names: list[str], path: Path) -> str:
    fig = Figure(figsize=(3.4, 3.2))
    ax = fig.add_subplot()
    names = list(splits)
    bottom = np.zeros(len(names))
    for class_id, class_name in enumerate(class_names):
        shares = np.array(
            [splits[n].classes.get(class_id, 0) / max(splits[n].rows, 1) for n in names]
        )
        ax.bar(names, shares, bottom=bottom, label=class_name)
        bottom += shares
    ax.set_ylabel("share of rows")
    ax.set_ylim(0, 1)
    ax.legend()
    return _save(fig, path)


def chart_history(history: dict[str, list[float]], path: Path) -> str:
    fig = Figure(figsize=(8, 3.2))
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, label in ((metric, "train"), (f"val_{metric}", "eval")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch (validation pass)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(metric)
        ax.legend()
    return _save(fig, path)


def chart_confusion(matrix: dict[str, float], class_names: list[str], path: Path) -> str:
    fig = Figure(figsize=(3.8, 3.4))
    ax = fig.add_subplot()
    grid = np.array([[matrix["tn"], matrix["fp"]], [matrix["fn"], matrix["tp"]]])
    ax.imshow(grid, cmap="Blues")
    for (row, col), value in np.ndenumerate(grid):
        color = "white" if value > grid.max() / 2 else "black"
        ax.text(col, row, f"{value:.0f}", ha="center", va="center", color=color)
    ax.set_xticks([0, 1], [f"pred. {class_names[0]}", f"pred. {class_names[1]}"])
    ax.set_yticks([0, 1], [class_names[0], class_names[1]])
    return _save(fig, path)


def chart_slices(slices: dict[str, dict[str, float]], metric: str, path: Path) -> str:
    order = sorted(slices, key=_bucket_order)
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    values = [slices[b].get(metric, float("nan")) for b in order]
    bars = ax.bar(order, values)
    for bar, bucket in zip(bars, order, strict=True):
        count = slices[bucket].get("example_count", 0)
        ax.annotate(
            f"n={count:.0f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel("review length (tokens)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05)
    return _save(fig, path)


def _bucket_order(name: str) -> int:
    """ "<100" < "100-199" < ... < ">=400"."""
    digits = re.findall(r"\d+", name)
    if not digits or name.startswith("<"):
        return -1
    return int(digits[0]) + (1 if name.startswith(">") else 0)


# --- HTML -------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if np.isnan(value):
        return "n/a"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(name: str, alt: str) -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:980px;color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;
margin-top:2rem}table{border-collapse:collapse;margin:.6rem 0}
td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
.verdict{padding:.8rem 1rem;border-radius:6px;font-size:1.1rem;margin:1rem 0}
.ok{background:#dafbe1;border:1px solid #4ac26b}.bad{background:#ffebe9;border:1px solid #ff8182}
.muted{color:#57606a;font-size:.9rem}img{max-width:100%;display:block;margin:.5rem 0}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}.charts img{margin:0}
"""


def verdict_text(status: RunStatus) -> tuple[str, bool]:
    """(sentence, good?) that the report shows as its verdict."""
    if status.blessed is None:
        failed = [c.node_id for c in status.components if c.state == "failed"]
        where = f" in {', '.join(failed)}" if failed else ""
        return f"The run did not finish{where}: no evaluation, nothing pushed.", False
    if not status.blessed:
        reasons = "; ".join(status.reasons) or status.blessing_message or "a threshold failed"
        return f"Not blessed: {reasons}. Nothing was pushed.", False
    if status.pushed:
        return f"Blessed and pushed as version {Path(status.pushed_destination).name}.", True
    if status.already_serving:
        return f"Blessed; already serving as version {status.already_serving}.", True
    return f"Blessed but not pushed: {status.not_pushed_reason or 'unknown reason'}.", False


def write_report(
    metadata_path: str,
    pipeline_name: str,
    out_dir: Path | None = None,
    *,
    work_dir: str | Path | None = None,
    run_id: str | None = None,
    log_path: Path | None = None,
    serving_dir: str | None = None,
    class_names: list[str] | None = None,
) -> Path:
    """Write ``index.html`` and its PNGs for ``run_id`` (default: the latest run)."""
    status = read_run(metadata_path, pipeline_name, run_id)
    if out_dir is None:
        if work_dir is None:
            raise ValueError("give out_dir or work_dir")
        out_dir = report_dir(work_dir, status.run_id)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    class_names = class_names or ["negative", "positive"]
    sections: list[str] = []

    verdict, good = verdict_text(status)
    sections.append(f'<div class="verdict {"ok" if good else "bad"}">{html.escape(verdict)}</div>')

    steps = [
        [html.escape(c.node_id), html.escape(c.state), f"{c.seconds:.1f}"]
        for c in status.components
    ]
    sections.append("<h2>Components</h2>" + _table(["component", "state", "seconds"], steps))

    graph = status.outputs.get(f"{p.TRANSFORM}.transform_graph")
    examples = status.outputs.get(f"{p.TRANSFORM}.transformed_examples")
    if graph and examples and tf.io.gfile.exists(examples):
        splits = split_summaries(examples, graph)
        max_len = max((s.width for s in splits.values()), default=0) or None
        rows = []
        for name, s in splits.items():
            balance = ", ".join(
                f"{class_names[c] if c < len(class_names) else c} {n / max(s.rows, 1):.0%}"
                for c, n in sorted(s.classes.items())
            )
            median = float(np.median(s.token_counts)) if s.token_counts else 0.0
            rows.append([name, str(s.rows), balance, f"{median:.0f}", f"{s.oov_rate:.2%}"])
        sections.append(
            "<h2>Data</h2>"
            + _table(["split", "rows", "classes", "median tokens", "OOV rate"], rows)
            + '<p class="muted">OOV rate: share of the kept (non-padding) tokens outside the '
            "vocabulary, which is built from the train split only.</p>"
            + '<div class="charts">'
            + _img(chart_lengths(splits, max_len, staging / "lengths.png"), "review lengths")
            + _img(chart_classes(splits, class_names, staging / "classes.png"), "class balance")
            + "</div>"
        )

    history_path = os.path.join(status.model_run_uri or "", "history.json")
    if status.model_run_uri and tf.io.gfile.exists(history_path):
        with tf.io.gfile.GFile(history_path) as handle:
            history = json.load(handle)
        sections.append(
            "<h2>Training</h2>"
            + f'<p class="muted">{history.get("train_steps", "?")} training steps of batch '
            f"{history.get('batch_size', '?')}, {history.get('epochs', '?')} validation passes, "
            f"{history.get('train_seconds', 0):.1f} s in training steps.</p>"
            + _img(chart_history(history.get("history", {}), staging / "training.png"), "curves")
        )

    if status.evaluation_uri and tf.io.gfile.exists(status.evaluation_uri):
        metrics, slices = metric_rows(status.evaluation_uri)
        has_baseline = any(m.baseline is not None for m in metrics)
        header = ["metric", "candidate"] + (["baseline", "delta"] if has_baseline else [])
        header += ["threshold", "result"]
        rows = []
        for m in sorted(metrics, key=lambda m: (m.threshold == "", m.name)):
            result = ""
            if m.passed is not None:
                result = (
                    '<span class="pass">pass</span>'
                    if m.passed
                    else ('<span class="fail">FAIL</span>')
                )
            row = [html.escape(m.name), _fmt(m.value)]
            if has_baseline:
                row += [_fmt(m.baseline), "" if m.diff is None else f"{m.diff:+.4f}"]
            rows.append(row + [html.escape(m.threshold), result])
        note = (
            "Baseline: the model the candidate must not regress against."
            if has_baseline
            else "No baseline yet: only the absolute thresholds apply."
        )
        sections.append(
            "<h2>Evaluation</h2>" + _table(header, rows) + f'<p class="muted">{note}</p>'
        )
        matrix = confusion_matrix(status.evaluation_uri)
        if matrix and len(class_names) == 2:
            sections.append(
                "<h3>Confusion matrix (threshold 0.5)</h3>"
                + _img(chart_confusion(matrix, class_names, staging / "confusion.png"), "matrix")
            )
        if slices:
            accuracy = accuracy_metric_name(len(class_names))
            rows = [
                [
                    html.escape(b),
                    _fmt(slices[b].get("example_count")),
                    _fmt(slices[b].get(accuracy)),
                    _fmt(slices[b].get("auc")),
                ]
                for b in sorted(slices, key=_bucket_order)
            ]
            sections.append(
                "<h3>By review length</h3>"
                + _table(["tokens", "examples", accuracy, "auc"], rows)
                + _img(chart_slices(slices, accuracy, staging / "slices.png"), "per slice")
            )

    if serving_dir and tf.io.gfile.isdir(serving_dir):
        versions = pushed_versions(serving_dir)
        rows = []
        for version, provenance in sorted(versions.items(), key=lambda kv: -int(kv[0])):
            recorded = provenance.get("metrics", {})
            accuracy = recorded.get(accuracy_metric_name(len(class_names)))
            rows.append(
                [
                    version,
                    html.escape(str(provenance.get("pushed_at", ""))),
                    _fmt(accuracy),
                    html.escape(str(provenance.get("model_uri", ""))),
                ]
            )
        if rows:
            sections.append(
                f"<h2>Pushed versions in {html.escape(serving_dir)}</h2>"
                + _table(["version", "pushed at", "accuracy when blessed", "model"], rows)
            )

    links = []
    if log_path is not None and Path(log_path).is_file():
        shutil.copyfile(log_path, staging / "run.log")
    elif (out_dir / "run.log").is_file():  # regenerated later: keep the log copied at the time
        shutil.copyfile(out_dir / "run.log", staging / "run.log")
    if (staging / "run.log").is_file():
        links.append('<a href="run.log">full log</a>')
    if status.model_run_uri:
        links.append(
            f"TensorBoard: <code>tensorboard --logdir {html.escape(status.model_run_uri)}</code>"
        )
    footer = f'<p class="muted">{" · ".join(links)}</p>' if links else ""

    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(pipeline_name)} run {html.escape(status.run_id)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(pipeline_name)}</h1>"
        f'<p class="muted">Run {html.escape(status.run_id)} · metadata '
        f"{html.escape(metadata_path)}</p>" + "".join(sections) + footer + "</body></html>"
    )
    (staging / REPORT_FILE).write_text(page, encoding="utf-8")
    # The report appears complete or not at all (a re-generation replaces it whole).
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir / REPORT_FILE
