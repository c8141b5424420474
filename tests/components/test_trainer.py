"""Tests of ``components.trainer``: how training and validation batches are drawn."""

from __future__ import annotations

import types

import numpy as np
import pytest
import tensorflow as tf

from components import features, trainer

MAX_LEN = 6


class _Accessor:
    """A stand-in for TFX's DataAccessor over a split sorted by label (as IMDB's files are).
    Review ``i`` has ``counts[i]`` tokens ``i + 1`` padded to MAX_LEN. It reads as many passes
    and batches as the Trainer asks (the Trainer asks TFXIO not to shuffle: a test checks it)
    and counts the examples it reads."""

    def __init__(self, labels: np.ndarray, counts: np.ndarray | None = None):
        self.labels = labels.astype(np.int64)
        self.counts = np.full(len(labels), MAX_LEN) if counts is None else counts
        self.options = None
        self.reads = 0

    def _examples(self):
        for i, (label, count) in enumerate(zip(self.labels, self.counts, strict=True)):
            self.reads += 1
            tokens = np.zeros(MAX_LEN, np.int64)
            tokens[:count] = i + 1
            yield {features.TOKENS_KEY: tokens, features.TOKEN_COUNT_KEY: np.int64(count)}, label

    def tf_dataset_factory(self, files, options, schema):
        self.options = options
        dataset = tf.data.Dataset.from_generator(
            self._examples,
            output_signature=(
                {
                    features.TOKENS_KEY: tf.TensorSpec([MAX_LEN], tf.int64),
                    features.TOKEN_COUNT_KEY: tf.TensorSpec([], tf.int64),
                },
                tf.TensorSpec([], tf.int64),
            ),
        )
        return dataset.repeat(options.num_epochs).batch(options.batch_size)


def _transform_output():
    return types.SimpleNamespace(
        transformed_metadata=types.SimpleNamespace(schema=None),
        transformed_feature_spec=lambda: {
            features.TOKENS_KEY: tf.io.FixedLenFeature([MAX_LEN], tf.int64)
        },
    )


def _dataset(accessor, batch_size, **kwargs):
    tf.random.set_seed(0)
    fn_args = types.SimpleNamespace(data_accessor=accessor)
    return trainer._dataset(fn_args, [], _transform_output(), batch_size, **kwargs)


def test_the_split_is_read_once_in_file_order_and_parsed_in_read_batches():
    accessor = _Accessor(np.repeat([0, 1], 20))
    dataset = _dataset(accessor, 8, shuffle_buffer=None, repeat=False, cache=False)
    list(dataset)
    # Shuffling, repeating and batching are the Trainer's own (after the cache).
    assert not accessor.options.shuffle
    assert accessor.options.num_epochs == 1
    assert accessor.options.batch_size == trainer.READ_BATCH
    assert accessor.options.label_key == features.LABEL_KEY
    # No autotuning thread: it held up the end of model.fit by up to a minute.
    assert dataset.options().autotune.enabled is False


def test_training_draws_from_the_whole_split_when_the_buffer_holds_it():
    labels = np.repeat([0, 1], 500)  # 500 negatives, then 500 positives
    dataset = _dataset(_Accessor(labels), 50, shuffle_buffer=100_000, repeat=True, cache=True)
    # Every batch of the first pass mixes both classes (a sorted file read in order would give
    # ten batches of negatives).
    for _, batch_labels in dataset.take(10):
        assert 10 <= batch_labels.numpy().sum() <= 40


def test_cached_training_reads_the_files_once_and_reshuffles_every_pass():
    accessor = _Accessor(np.repeat([0, 1], 20))
    dataset = _dataset(accessor, 10, shuffle_buffer=100, repeat=True, cache=True)
    batches = [tokens.numpy()[:, 0] for tokens, _ in dataset.take(12)]  # three passes
    passes = [np.concatenate(batches[i : i + 4]) for i in (0, 4, 8)]
    for seen in passes:
        np.testing.assert_array_equal(np.sort(seen), np.arange(1, 41))  # each review once
    assert not np.array_equal(passes[0], passes[1])
    assert accessor.reads == 40


def test_without_the_cache_every_pass_reads_the_files_again():
    accessor = _Accessor(np.repeat([0, 1], 20))
    dataset = _dataset(accessor, 10, shuffle_buffer=100, repeat=True, cache=False)
    list(dataset.take(12))  # three passes
    assert accessor.reads >= 100


@pytest.mark.parametrize("cache", [True, False])
def test_a_validation_pass_holds_every_eval_example_once_in_file_order(cache):
    labels = np.repeat([0, 1], 13)
    dataset = _dataset(_Accessor(labels), 5, shuffle_buffer=None, repeat=False, cache=cache)
    for _ in range(2):  # Keras starts a new pass at every validation
        batches = list(dataset)
        assert [len(y) for _, y in batches] == [5, 5, 5, 5, 5, 1]  # the last one partial
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), labels)
        np.testing.assert_array_equal(
            np.concatenate([t.numpy()[:, 0] for t, _ in batches]), np.arange(1, 27)
        )


def test_length_buckets_cut_each_batch_to_its_longest_review_and_keep_every_token(monkeypatch):
    # Short reviews (1-2 tokens) and long ones (5-6), alternating in the file.
    counts = np.array([1, 6, 2, 5, 2, 6, 1, 5])
    monkeypatch.setattr(trainer, "BUCKET_WIDTH", 3)  # buckets of 1-3 and 4-6 tokens
    dataset = _dataset(
        _Accessor(np.zeros(8), counts),
        4,
        shuffle_buffer=None,
        repeat=False,
        cache=False,
        bucket_by_length=True,
    )
    batches = [tokens.numpy() for tokens, _ in dataset]
    assert sorted(b.shape for b in batches) == [(4, 2), (4, 6)]
    for batch in batches:
        for row in batch:
            review = row[0] - 1
            # the review's own tokens, then padding to the batch's longest
            np.testing.assert_array_equal(row[: counts[review]], review + 1)
            assert (row[counts[review] :] == features.PADDING_ID).all()
