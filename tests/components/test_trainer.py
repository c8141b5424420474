"""Tests of ``components.trainer``: how training batches are drawn."""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from components import features, trainer


class _LabelSortedAccessor:
    """A stand-in for TFX's DataAccessor over a split sorted by label (as IMDB's files are):
    it applies the shuffle the Trainer asks for, the way TFXIO does, before batching."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        self.options = None

    def tf_dataset_factory(self, files, options, schema):
        self.options = options
        tokens = np.tile(np.arange(1, 5, dtype=np.int64), (len(self.labels), 1))
        dataset = tf.data.Dataset.from_tensor_slices(
            ({features.TOKENS_KEY: tokens}, self.labels.astype(np.int64))
        )
        if options.shuffle:
            dataset = dataset.shuffle(options.shuffle_buffer_size, seed=0)
        return dataset.repeat().batch(options.batch_size)


def _first_batches_labels(shuffle_buffer):
    labels = np.repeat([0, 1], 500)  # 500 negatives, then 500 positives
    accessor = _LabelSortedAccessor(labels)
    fn_args = types.SimpleNamespace(data_accessor=accessor)
    transform_output = types.SimpleNamespace(
        transformed_metadata=types.SimpleNamespace(schema=None)
    )
    dataset = trainer._dataset(fn_args, [], transform_output, 50, shuffle_buffer)
    batches = [y.numpy() for _, y in dataset.take(10)]
    return accessor.options, batches


def test_training_draws_from_the_whole_split_when_the_buffer_holds_it():
    options, batches = _first_batches_labels(shuffle_buffer=100_000)
    assert options.shuffle and options.shuffle_buffer_size == 100_000
    # Every batch of the first pass mixes both classes (a sorted file read in order would give
    # ten batches of negatives).
    for labels in batches:
        assert 10 <= labels.sum() <= 40


def test_evaluation_batches_are_not_shuffled():
    options, batches = _first_batches_labels(shuffle_buffer=None)
    assert not options.shuffle
    assert all(labels.sum() == 0 for labels in batches)
