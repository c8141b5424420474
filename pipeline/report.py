"""The summary printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.runner import RunResult
from pipeline.status import read_run

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
