"""The gating matrix, end to end on data the test writes (clearly separable sentences):

1. no baseline, metrics above the bound     -> pushed (version A)
2. a better candidate than the baseline     -> pushed as a new version beside A
3. a worse candidate beyond the threshold   -> not pushed; serving directory byte-for-byte same

once with TFX's latest-blessed Resolver and once with the serving-directory baseline
(LastPushedModel, the one Kubeflow runs use): the gate must mean the same thing with both.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from components.versioned_pusher import PROVENANCE_FILE
from pipeline import pipeline as p
from pipeline.config import load_config
from pipeline.runner import run_pipeline
from pipeline.status import read_run

pytestmark = pytest.mark.e2e

GOOD = ["good", "great", "wonderful", "superb", "lovely", "brilliant"]
BAD = ["bad", "awful", "terrible", "boring", "dreadful", "dull"]
FILLER = ["the", "film", "movie", "was", "really", "quite", "plot", "acting"]


def _write_reviews(path: Path, rows: int = 240) -> None:
    rng = random.Random(7)
    lines = ["text,label"]
    for i in range(rows):
        label = i % 2
        words = rng.sample(FILLER, 4) + rng.sample(GOOD if label else BAD, 2)
        rng.shuffle(words)
        lines.append(f"{' '.join(words)} {i},{label}")
    path.write_text("\n".join(lines) + "\n")


def _snapshot(directory: Path) -> dict[str, str]:
    return {
        str(f.relative_to(directory)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _run(work: Path, data: Path, *, trained: bool, seed: int, baseline: str):
    cfg = load_config(
        None,
        [
            f"pipeline.work_dir={work}",
            f"data.source={data}",
            "transform.max_sequence_length=12",
            "model.batch_size=16",
            "model.lstm_units=8",
            "model.embedding_dimension=8",
            "model.dense_units=8",
            "model.num_iterations=60",
            "model.steps_per_epoch=60",
            "model.eval_steps=2",
            f"model.learning_rate={0.01 if trained else 1e-9}",
            f"model.seed={seed}",
            "evaluation.accuracy_lower_bound=0.0",
            "evaluation.max_accuracy_drop=0.05",
            f"evaluation.baseline={baseline}",
        ],
    )
    result = run_pipeline(cfg)
    return read_run(result.metadata_path, result.pipeline_name), Path(
        cfg.pipeline.resolved_serving_dir
    )


@pytest.fixture(scope="module", params=["latest_blessed", "last_pushed"])
def matrix(request, tmp_path_factory):
    baseline = request.param
    work = tmp_path_factory.mktemp(f"gating-{baseline}")
    data = work / "reviews.csv"
    _write_reviews(data)
    untrained, serving = _run(work, data, trained=False, seed=1, baseline=baseline)
    after_untrained = _snapshot(serving)
    trained, _ = _run(work, data, trained=True, seed=2, baseline=baseline)
    after_trained = _snapshot(serving)
    worse, _ = _run(work, data, trained=False, seed=3, baseline=baseline)
    after_worse = _snapshot(serving)
    return {
        "baseline": baseline,
        "serving": serving,
        "statuses": (untrained, trained, worse),
        "snapshots": (after_untrained, after_trained, after_worse),
    }


def _versions(snapshot: dict[str, str]) -> set[str]:
    return {name.split("/")[0] for name in snapshot}


def test_no_baseline_is_pushed(matrix):
    status = matrix["statuses"][0]
    assert status.blessed is True and status.pushed is True
    assert len(_versions(matrix["snapshots"][0])) == 1


def test_better_candidate_is_pushed_beside_the_old_version(matrix):
    status = matrix["statuses"][1]
    assert status.metrics["binary_accuracy"] > matrix["statuses"][0].metrics["binary_accuracy"]
    assert status.blessed is True and status.pushed is True
    before, after = _versions(matrix["snapshots"][0]), _versions(matrix["snapshots"][1])
    assert before < after and len(after) == 2  # the old version is still there
    old = next(iter(before))
    assert {k: v for k, v in matrix["snapshots"][1].items() if k.startswith(old)} == matrix[
        "snapshots"
    ][0]


def test_worse_candidate_is_blocked_and_serving_is_unchanged(matrix):
    status = matrix["statuses"][2]
    states = {c.node_id: c.state for c in status.components}
    assert states[p.TRAINER] == "executed" and states[p.EVALUATOR] == "executed"
    assert status.blessed is False and status.pushed is False
    assert any("change vs baseline" in r and "binary_accuracy" in r for r in status.reasons)
    assert matrix["snapshots"][2] == matrix["snapshots"][1]  # byte-for-byte


def test_the_baseline_component_matches_the_config(matrix):
    nodes = {c.node_id for c in matrix["statuses"][2].components}
    if matrix["baseline"] == "last_pushed":
        assert p.LAST_PUSHED in nodes and p.RESOLVER not in nodes
    else:
        assert p.RESOLVER in nodes and p.LAST_PUSHED not in nodes


def test_pushed_versions_record_the_metrics_they_were_blessed_with(matrix):
    for status in matrix["statuses"][:2]:
        version = Path(status.pushed_destination).name
        provenance = json.loads((matrix["serving"] / version / PROVENANCE_FILE).read_text())
        assert provenance["metrics"]["binary_accuracy"] == pytest.approx(
            status.metrics["binary_accuracy"]
        )
        assert provenance["metrics"]["example_count"] == status.metrics["example_count"]
