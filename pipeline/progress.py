"""Live progress of a run, and its log file.

TFX's runners announce every component in their log ("Component X is running." /
"... is finished." from LocalDagRunner, "node X is ..." from BeamDagRunner, and "A cached
execution N is used." in between when the launcher reuses a result). ``ProgressTracker`` is a
logging handler that follows those records; ``live_progress`` draws them as a table that
refreshes while the pipeline runs. ``run_log`` sends every log record of the run (and,
optionally, what the libraries print) to a file in the run directory.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

_RUNNING = re.compile(r"^(?:Component|node) (\S+) is running\.$")
_FINISHED = re.compile(r"^(?:Component|node) (\S+) is finished\.$")
_CACHED = re.compile(r"^A cached execution \d+ is used\.$")

WAITING, RUNNING, EXECUTED, CACHED, FAILED = "waiting", "running", "executed", "cached", "failed"
_STYLE = {RUNNING: "yellow", EXECUTED: "green", CACHED: "cyan", FAILED: "red"}


@dataclass
class NodeProgress:
    node_id: str
    state: str = WAITING
    started: float | None = None
    finished: float | None = None

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.finished or now) - self.started


class ProgressTracker(logging.Handler):
    """Per-component state from TFX's runner log records (thread-safe)."""

    def __init__(self, node_ids: list[str] | None = None, clock=time.monotonic) -> None:
        super().__init__(level=logging.INFO)
        self._clock = clock
        self._lock = threading.Lock()
        self.nodes: dict[str, NodeProgress] = {}
        self.started = clock()
        self.set_nodes(node_ids or [])

    def set_nodes(self, node_ids: list[str]) -> None:
        with self._lock:
            for node_id in node_ids:
                self.nodes.setdefault(node_id, NodeProgress(node_id))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is not ours to judge
            return
        now = self._clock()
        with self._lock:
            if match := _RUNNING.match(message):
                node = self.nodes.setdefault(match.group(1), NodeProgress(match.group(1)))
                node.state, node.started, node.finished = RUNNING, now, None
            elif match := _FINISHED.match(message):
                node = self.nodes.setdefault(match.group(1), NodeProgress(match.group(1)))
                node.state = CACHED if node.state == CACHED else EXECUTED
                node.finished = now
                node.started = node.started if node.started is not None else now
            elif _CACHED.match(message):
                running = [n for n in self.nodes.values() if n.state == RUNNING]
                if len(running) == 1:  # the launcher of the running component reused a result
                    running[0].state = CACHED

    def mark_failed(self) -> None:
        """The run raised: whatever was running failed."""
        now = self._clock()
        with self._lock:
            for node in self.nodes.values():
                if node.state in (RUNNING, CACHED) and node.finished is None:
                    node.state, node.finished = FAILED, now

    def snapshot(self) -> list[NodeProgress]:
        with self._lock:
            return [NodeProgress(**vars(n)) for n in self.nodes.values()]

    def table(self) -> Table:
        now = self._clock()
        nodes = self.snapshot()
        done = sum(n.state in (EXECUTED, CACHED) for n in nodes)
        table = Table(
            title=f"Pipeline: {done}/{len(nodes)} components done, {now - self.started:.0f} s",
            title_justify="left",
        )
        table.add_column("component")
        table.add_column("state")
        table.add_column("seconds", justify="right")
        for node in nodes:
            elapsed = node.elapsed(now)
            style = _STYLE.get(node.state, "")
            state = f"[{style}]{node.state}[/]" if style else node.state
            table.add_row(node.node_id, state, "" if elapsed is None else f"{elapsed:.1f}")
        return table


@contextlib.contextmanager
def tracking(tracker: ProgressTracker | None) -> Iterator[None]:
    """Attach ``tracker`` to the loggers TFX's runners use, for the duration of the block."""
    if tracker is None:
        yield
        return
    root = logging.getLogger()  # absl's logger (TFX's) propagates to the root logger
    root.addHandler(tracker)
    try:
        yield
    except BaseException:
        tracker.mark_failed()
        raise
    finally:
        root.removeHandler(tracker)


@contextlib.contextmanager
def live_progress(tracker: ProgressTracker, console: Console) -> Iterator[None]:
    """Redraw ``tracker``'s table on ``console`` while the block runs."""
    # Bound to the terminal now: the run redirects sys.stdout to its log file meanwhile.
    terminal = Console(file=console.file)
    with Live(
        get_renderable=tracker.table,
        console=terminal,
        refresh_per_second=2,
        transient=True,  # the summary that follows shows the final states
        redirect_stdout=False,
        redirect_stderr=False,
    ):
        yield


@contextlib.contextmanager
def run_log(path: Path, capture_output: bool) -> Iterator[Path]:
    """Every log record of the run (INFO and up) into ``path``; with ``capture_output``, what
    TensorFlow/Keras/Beam print to stdout/stderr from Python goes there too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    absl = logging.getLogger("absl")
    saved_levels = (root.level, absl.level)
    root.setLevel(logging.INFO)
    if absl.level > logging.INFO or absl.level == logging.NOTSET:
        absl.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        if capture_output:
            with (
                contextlib.redirect_stdout(handler.stream),
                contextlib.redirect_stderr(handler.stream),
            ):
                yield path
        else:
            yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved_levels[0])
        absl.setLevel(saved_levels[1])
        sys.stdout.flush()
