"""The summary printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from components.versioned_pusher import pushed_versions
from pipeline.config import Config
from pipeline.evaluation import accuracy_metric_name
from pipeline.runner import RunResult, absolute
from pipeline.status import read_recent_runs, read_run

_HEADLINE = [
    "example_count",
    "binary_accuracy",
    "sparse_categorical_accuracy",
    "auc",
    "precision",
    "recall",
    "calibration",
    "mean_label",
    "mean_prediction",
]


def print_summary(console: Console, result: RunResult) -> None:
    status = read_run(result.metadata_path, result.pipeline_name)
    prepared = result.prepared

    rows = ", ".join(f"{k} {v}" for k, v in prepared.rows.items())
    console.print(
        f"\n[bold]Data[/]: {rows}"
        + (f" ({prepared.dropped_empty} empty reviews dropped)" if prepared.dropped_empty else "")
    )

    table = Table(title=f"Run {status.run_id}")
    table.add_column("component")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    for c in status.components:
        style = {"failed": "red", "cached": "cyan"}.get(c.state, "green")
        table.add_row(c.node_id, f"[{style}]{c.state}[/]", f"{c.seconds:.1f}")
    console.print(table)

    if status.metrics:
        metrics = Table(title="Evaluation (candidate model)")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name in _HEADLINE:
            if name in status.metrics:
                value = status.metrics[name]
                metrics.add_row(name, f"{value:.0f}" if name == "example_count" else f"{value:.4f}")
        console.print(metrics)

    if status.blessed:
        console.print("[bold green]Blessed[/]: every threshold passed.")
    elif status.blessed is False:
        console.print("[bold red]Not blessed[/]:")
        for reason in status.reasons or [status.blessing_message or "thresholds failed"]:
            console.print(f"  - {reason}")
    if status.pushed:
        console.print(f"[bold]Pushed[/] to {status.pushed_destination}")
    else:
        reason = status.not_pushed_reason or "the model is not blessed"
        console.print(f"[bold]Not pushed[/] ({reason}): the serving directory is unchanged.")
    console.print(f"Wall time {result.seconds:.1f} s; metadata {result.metadata_path}")


def print_status(console: Console, config: Config, limit: int) -> None:
    """Recent runs (newest first) and the versions in the serving directory."""
    metadata = absolute(config.pipeline.resolved_metadata_path)
    name = config.pipeline.name
    total, statuses = read_recent_runs(metadata, name, limit)
    runs = Table(title=f"Recent runs of {name} ({total} in all)")
    runs.add_column("run", no_wrap=True)
    runs.add_column("ran/cached/failed", justify="right")
    for column in ("secs", "accuracy", "verdict"):
        runs.add_column(column, justify="right")
    for status in statuses:
        counts = {state: 0 for state in ("executed", "cached", "failed")}
        for c in status.components:
            counts[c.state] = counts.get(c.state, 0) + 1
        accuracy = status.metrics.get("binary_accuracy") or status.metrics.get(
            "sparse_categorical_accuracy"
        )
        if status.pushed:
            verdict = f"pushed {status.pushed_destination.rsplit('/', 1)[-1]}"
        elif status.blessed is False:
            verdict = "not blessed"
        elif counts["failed"]:
            verdict = "failed"
        elif status.already_serving:
            verdict = "already serving"
        else:
            verdict = status.not_pushed_reason or "not pushed"
        runs.add_row(
            status.run_id,
            f"{counts['executed']}/{counts['cached']}/{counts['failed']}",
            f"{sum(c.seconds for c in status.components):.1f}",
            "" if accuracy is None else f"{accuracy:.4f}",
            verdict,
        )
    console.print(runs)

    serving = absolute(config.pipeline.resolved_serving_dir)
    versions = pushed_versions(serving)
    table = Table(title=f"Versions in {serving} (newest serves)")
    table.add_column("version")
    table.add_column("pushed at")
    table.add_column("blessing")
    table.add_column("accuracy", justify="right")
    table.add_column("auc", justify="right")
    for version, provenance in sorted(versions.items(), key=lambda kv: -int(kv[0])):
        recorded = provenance.get("metrics") or {}
        accuracy = recorded.get(accuracy_metric_name(config.model.num_classes))
        blessing = provenance.get("blessing_uri")
        table.add_row(
            version,
            provenance.get("pushed_at", "?"),
            f"blessed ({blessing.rstrip('/').rsplit('/', 1)[-1]})" if blessing else "blessed",
            "" if accuracy is None else f"{accuracy:.4f}",
            "" if "auc" not in recorded else f"{recorded['auc']:.4f}",
        )
    console.print(table if versions else f"No versions in {serving} yet.")
