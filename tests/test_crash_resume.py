"""kill -9 during the Trainer, then re-run: the run completes from cache, pushes once, and the
metadata store keeps working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import pipeline as p
from pipeline.config import load_config
from pipeline.runner import run_pipeline
from pipeline.status import read_run

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def _overrides(work: Path, steps: int) -> list[str]:
    return [
        f"pipeline.work_dir={work}",
        f"data.schema_path={REPO / 'configs' / 'schema' / 'sentiment.pbtxt'}",
        "transform.max_sequence_length=32",
        "model.batch_size=8",
        "model.lstm_units=4",
        "model.embedding_dimension=4",
        "model.dense_units=4",
        f"model.num_iterations={steps}",
        "model.steps_per_epoch=2",
        "model.eval_steps=1",
        "evaluation.accuracy_lower_bound=0.0",
        "evaluation.max_accuracy_drop=1.0",
    ]


def _trainer_running(metadata: Path, name: str) -> bool:
    if not metadata.exists():
        return False
    try:
        status = read_run(str(metadata), name)
    except LookupError:
        return False
    return any(c.node_id == p.TRAINER and c.state == "running" for c in status.components)


def test_kill_during_trainer_then_resume(tmp_path):
    work = tmp_path / "work"
    cli = Path(sys.executable).with_name("sentiment-pipeline")
    args = [str(cli), "run", "--config", str(REPO / "configs" / "sample.yaml")]
    for item in _overrides(work, steps=100000):  # long enough to be killed mid-training
        args += ["--set", item]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = work / "metadata.sqlite"
    deadline = time.time() + 300
    try:
        while not _trainer_running(metadata, "sentiment-sample"):
            assert proc.poll() is None, "the run ended before the Trainer started"
            assert time.time() < deadline, "the Trainer never started"
            time.sleep(1)
        time.sleep(3)  # inside model.fit
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (work / "serving").exists()  # nothing was pushed by the killed run

    cfg = load_config(REPO / "configs" / "sample.yaml", _overrides(work, steps=4))
    result = run_pipeline(cfg)  # the lock of the killed run was released by the kernel
    status = read_run(result.metadata_path, result.pipeline_name)
    states = {c.node_id: c.state for c in status.components}
    for node in (p.EXAMPLE_GEN, p.STATISTICS_GEN, p.TRANSFORM):
        assert states[node] == "cached", states  # upstream reused from the killed run
    assert states[p.TRAINER] == "executed" and status.pushed is True
    versions = [d for d in (work / "serving").iterdir() if not d.name.startswith(".")]
    assert len(versions) == 1

    again = run_pipeline(cfg)  # and the store still works for later runs
    later = read_run(again.metadata_path, again.pipeline_name)
    assert {c.node_id: c.state for c in later.components}[p.TRAINER] == "cached"
    assert later.pushed is False
    assert [d for d in (work / "serving").iterdir() if not d.name.startswith(".")] == versions
