"""Tests of ``bench/imdb.py``: how the Trainer and bare Keras throughputs are computed."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from bench.imdb import in_memory_batches, trainer_throughput


def _status(model_run_uri, trainer_seconds=None):
    components = [types.SimpleNamespace(node_id="Trainer", seconds=trainer_seconds)]
    return types.SimpleNamespace(model_run_uri=str(model_run_uri), components=components)


def _config(steps=100, batch_size=10):
    model = types.SimpleNamespace(num_iterations=steps, batch_size=batch_size)
    return types.SimpleNamespace(model=model)


def test_trainer_throughput_leaves_out_the_warmup_steps(tmp_path):
    history = {
        "train_steps": 110,
        "batch_size": 10,
        "train_seconds": 30.0,
        "warmup_steps": 10,
        "warmup_seconds": 20.0,  # tracing and the shuffle buffer
        "epoch_train_seconds": [25.0, 5.0],
    }
    (tmp_path / "history.json").write_text(json.dumps(history))
    figures = trainer_throughput(_status(tmp_path), _config())
    assert figures["trainer_examples_per_s"] == pytest.approx(100 * 10 / 10.0)
    assert figures["trainer_examples_per_s_all_steps"] == pytest.approx(110 * 10 / 30.0)
    assert figures["trainer"]["epoch_train_seconds"] == [25.0, 5.0]


def test_trainer_throughput_without_warmup_figures_counts_every_step(tmp_path):
    history = {"train_steps": 50, "batch_size": 4, "train_seconds": 8.0}
    (tmp_path / "history.json").write_text(json.dumps(history))
    figures = trainer_throughput(_status(tmp_path), _config())
    assert figures["trainer_examples_per_s"] == figures["trainer_examples_per_s_all_steps"] == 25.0
    assert figures["trainer"]["seconds_source"] == "history.json train_seconds"


def test_trainer_throughput_falls_back_to_the_component_duration(tmp_path):
    figures = trainer_throughput(_status(tmp_path, trainer_seconds=40.0), _config(100, 8))
    assert figures["trainer_examples_per_s"] == 20.0
    assert figures["trainer"]["seconds_source"] == "Trainer component seconds"


def test_in_memory_batches_follow_the_trainers_length_buckets():
    # 64 reviews: 32 of 1-10 tokens, 32 of 40-60, padded to 64; bucket width 32.
    rng = np.random.default_rng(0)
    counts = np.concatenate([rng.integers(1, 11, 32), rng.integers(40, 61, 32)])
    tokens = np.zeros((64, 64), np.int64)
    for i, count in enumerate(counts):
        tokens[i, :count] = i + 1
    labels = np.arange(64) % 2
    batches = in_memory_batches(tokens, counts, labels, 8, True, rng)
    assert len(batches) == 8  # every review once, in full batches
    seen = []
    for batch_tokens, batch_labels in batches:
        reviews = batch_tokens[:, 0] - 1
        seen.extend(reviews)
        # one bucket per batch, cut to its longest review
        assert len({counts[r] > 32 for r in reviews}) == 1
        assert batch_tokens.shape == (8, counts[reviews].max())
        np.testing.assert_array_equal(batch_labels, labels[reviews])
    assert sorted(seen) == list(range(64))
