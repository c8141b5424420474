"""The live progress table follows TFX's runner log records; the run log captures everything."""

import logging
import sys

import pytest

from pipeline.progress import (
    CACHED,
    EXECUTED,
    FAILED,
    RUNNING,
    WAITING,
    ProgressTracker,
    run_log,
    tracking,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _log(message: str, *args) -> None:
    # The exact records TFX 1.16 writes (LocalDagRunner / launcher / BeamDagRunner).
    logging.getLogger("absl").info(message, *args)


def _states(tracker):
    return {n.node_id: n.state for n in tracker.snapshot()}


@pytest.fixture
def info_logging():
    absl = logging.getLogger("absl")
    saved = absl.level
    absl.setLevel(logging.INFO)
    yield
    absl.setLevel(saved)


def test_states_follow_the_runner_log(info_logging):
    clock = Clock()
    tracker = ProgressTracker(["CsvExampleGen", "Transform", "Trainer"], clock=clock)
    with tracking(tracker):
        _log("Component %s is running.", "CsvExampleGen")
        assert _states(tracker)["CsvExampleGen"] == RUNNING
        clock.now += 4.0
        _log("Component %s is finished.", "CsvExampleGen")
        _log("Component %s is running.", "Transform")
        _log("A cached execution %d is used.", 17)
        clock.now += 1.0
        _log("Component %s is finished.", "Transform")
        _log("node %s is running.", "Trainer")  # BeamDagRunner's wording
    _log("Component %s is finished.", "Trainer")  # after the block: not tracked any more
    assert _states(tracker) == {"CsvExampleGen": EXECUTED, "Transform": CACHED, "Trainer": RUNNING}
    elapsed = {n.node_id: n.elapsed(clock.now) for n in tracker.snapshot()}
    assert elapsed["CsvExampleGen"] == pytest.approx(4.0)
    assert elapsed["Transform"] == pytest.approx(1.0)


def test_a_failure_marks_the_running_component_and_leaves_the_rest_waiting(info_logging):
    tracker = ProgressTracker(["CsvExampleGen", "Trainer", "Pusher"], clock=Clock())
    with pytest.raises(RuntimeError), tracking(tracker):
        _log("Component %s is running.", "CsvExampleGen")
        _log("Component %s is finished.", "CsvExampleGen")
        _log("Component %s is running.", "Trainer")
        raise RuntimeError("boom")
    assert _states(tracker) == {"CsvExampleGen": EXECUTED, "Trainer": FAILED, "Pusher": WAITING}


def test_the_table_shows_progress(info_logging):
    clock = Clock()
    tracker = ProgressTracker(["A", "B"], clock=clock)
    with tracking(tracker):
        _log("Component %s is running.", "A")
        clock.now += 2.5
        _log("Component %s is finished.", "A")
    table = tracker.table()
    assert table.title == "Pipeline: 1/2 components done, 2 s"
    cells = [list(column.cells) for column in table.columns]
    assert cells[0] == ["A", "B"]
    assert cells[1] == ["[green]executed[/]", "waiting"]
    assert cells[2] == ["2.5", ""]


def test_run_log_captures_records_and_printed_output(tmp_path):
    path = tmp_path / "logs" / "run.log"
    logging.getLogger("absl").setLevel(logging.ERROR)  # as a quiet terminal would have it
    before = sys.stdout
    with run_log(path, capture_output=True):
        _log("Component %s is running.", "Trainer")
        print("Epoch 1/2")
        print("warning from a library", file=sys.stderr)
    assert sys.stdout is before
    text = path.read_text()
    assert "INFO absl: Component Trainer is running." in text
    assert "Epoch 1/2" in text and "warning from a library" in text
    assert logging.getLogger("absl").level == logging.ERROR  # restored
