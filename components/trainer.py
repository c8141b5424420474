"""TFX Trainer entry point: a thin adapter from ``FnArgs`` to the model code.

Referenced by dotted path (``components.trainer.run_fn``) so the installed package is what runs,
locally and in a container.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import features
from components.model import ModelParams, build_model, load_word_vectors
from components.signatures import make_serving_signatures
from components.word_vectors import VECTORS_FILE

# Written next to the TensorBoard logs in the model-run artifact: per-epoch curves for reports.
HISTORY_FILE = "history.json"


# Length buckets for bucket_by_length (tokens); the last bucket is open-ended.
BUCKET_WIDTH = 32
# Examples parsed together when reading the transformed split (before per-example work).
READ_BATCH = 256
# Batches prepared ahead of the training step.
PREFETCH_BATCHES = 2
# Training steps timed apart at the start (tracing, filling the shuffle buffer): the bench
# compares steady-state throughput and skips as many steps of bare Keras.
WARMUP_STEPS = 10


def _dataset(
    fn_args: tfx.components.FnArgs,
    files: list[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    *,
    shuffle_buffer: int | None,
    repeat: bool,
    cache: bool,
    bucket_by_length: bool = False,
) -> tf.data.Dataset:
    """(tokens, label) batches over ``files``: repeated forever, or one pass with a last
    partial batch. ``cache`` keeps the parsed examples in memory after the first pass, so
    later passes skip reading and parsing; ``shuffle_buffer`` examples are shuffled afresh
    each pass (None: file order). With ``bucket_by_length`` each batch holds reviews of
    similar length and is cut to its longest one (at least one step).

    tf.data autotuning is off: its background thread, in a timed sleep, held up the deletion
    of Keras's training iterator at the end of ``fit`` for 36-48 s (TF 2.16, measured on IMDB);
    with the examples in memory there is little to tune."""
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=READ_BATCH,
            label_key=features.LABEL_KEY,
            shuffle=False,
            num_epochs=1,
        ),
        tf_transform_output.transformed_metadata.schema,
    )

    def one(x, y):
        tokens = x[features.TOKENS_KEY]
        if bucket_by_length:
            count = tf.reshape(x[features.TOKEN_COUNT_KEY], [])
            tokens = tokens[: tf.clip_by_value(count, 1, tf.shape(tokens, tf.int64)[0])]
        return tokens, y

    dataset = dataset.unbatch().map(one, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer is not None:
        dataset = dataset.shuffle(shuffle_buffer, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if bucket_by_length:
        max_len = tf_transform_output.transformed_feature_spec()[features.TOKENS_KEY].shape[0]
        boundaries = list(range(BUCKET_WIDTH, max_len, BUCKET_WIDTH))
        dataset = dataset.bucket_by_sequence_length(
            lambda tokens, _: tf.shape(tokens)[0],
            bucket_boundaries=[b + 1 for b in boundaries],
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=(tf.constant(features.PADDING_ID, tf.int64), None),
        )
    else:
        dataset = dataset.batch(batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


class _TrainTimer(keras.callbacks.Callback):
    """Seconds spent in training steps only (no validation, no start-up) and steps taken;
    also summed apart: the first ``warmup_steps``, and each epoch's steps."""

    def __init__(self, warmup_steps: int = WARMUP_STEPS):
        super().__init__()
        self.warmup_steps = warmup_steps
        self.seconds = 0.0
        self.warmup_seconds = 0.0
        self.steps = 0
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_seconds.append(0.0)

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.seconds += elapsed
        self.epoch_seconds[-1] += elapsed
        if self.steps < self.warmup_steps:
            self.warmup_seconds += elapsed
        self.steps += 1


def _vocabulary(tf_transform_output: tft.TFTransformOutput) -> list[str]:
    path = tf_transform_output.vocabulary_file_by_name(features.VOCAB_NAME)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return [line.rstrip(b"\n").decode("utf-8", "replace") for line in handle]


def epochs_and_steps(cfg: dict[str, Any], total_steps: int) -> tuple[int, int]:
    """(Keras epochs, steps per epoch): validation passes spread evenly over ``total_steps``."""
    steps_per_epoch = min(int(cfg.get("steps_per_epoch", total_steps)), total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    return epochs, math.ceil(total_steps / epochs)


def model_params(cfg: dict[str, Any], vocab_size: int, total_steps: int = 1) -> ModelParams:
    word_vectors = cfg.get("word_vectors") or {}
    return ModelParams(
        vocab_total=features.ID_OFFSET + vocab_size + int(cfg["num_oov_buckets"]),
        max_sequence_length=int(cfg["max_sequence_length"]),
        embedding_dimension=int(cfg["embedding_dimension"]),
        lstm_units=int(cfg["lstm_units"]),
        bidirectional=bool(cfg["bidirectional"]),
        dense_units=int(cfg["dense_units"]),
        num_classes=int(cfg["num_classes"]),
        dropout_keep_prob=float(cfg["dropout_keep_prob"]),
        learning_rate=_learning_rate(cfg, total_steps),
        pooling=str(cfg.get("pooling", "last")),
        embedding_dropout=float(cfg.get("embedding_dropout", 0.0)),
        adversarial_epsilon=float(cfg.get("adversarial_epsilon", 0.0)),
        weight_average_momentum=float(cfg.get("weight_average_momentum", 0.0)),
        weight_average_every=epochs_and_steps(cfg, total_steps)[1],
        embeddings_trainable=bool(
            word_vectors.get("trainable", True)
            if word_vectors
            else cfg.get("pretrain_trainable", True)
        ),
    )


def _pretrained_vectors(uri: str, params: ModelParams) -> np.ndarray:
    with tf.io.gfile.GFile(f"{uri}/{VECTORS_FILE}", "rb") as handle:
        matrix = np.load(handle)
    expected = (params.vocab_total, params.embedding_dimension)
    if matrix.shape != expected:
        raise ValueError(f"{uri}/{VECTORS_FILE}: shape {matrix.shape}, expected {expected}")
    return matrix


def _learning_rate(cfg: dict[str, Any], total_steps: int):
    rate = float(cfg["learning_rate"])
    if cfg.get("learning_rate_schedule") == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, decay_steps=total_steps)
    return rate


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    cfg: dict[str, Any] = fn_args.custom_config or {}
    keras.utils.set_random_seed(int(cfg.get("seed", 42)))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocabulary = _vocabulary(tf_transform_output)
    total_steps = int(fn_args.train_steps)
    params = model_params(cfg, len(vocabulary), total_steps)

    embedding_matrix = None
    if fn_args.base_model:  # word vectors pre-computed in the pipeline (WordVectorsGen)
        embedding_matrix = _pretrained_vectors(fn_args.base_model, params)
    elif cfg.get("word_vectors"):
        embedding_matrix, found = load_word_vectors(
            cfg["word_vectors"]["path"], vocabulary, params, seed=int(cfg.get("seed", 42))
        )
        logging.info("word vectors: %d of %d vocabulary words found", found, len(vocabulary))

    batch_size = int(cfg["batch_size"])
    bucket = bool(cfg.get("bucket_by_length", False))
    cache = bool(cfg.get("cache_examples", True))
    # Input files are often sorted by label (IMDB's are: all negative reviews, then all
    # positive ones); a buffer smaller than the split feeds long runs of one class.
    shuffle_buffer = int(cfg.get("shuffle_buffer", 100_000))
    train = _dataset(
        fn_args,
        fn_args.train_files,
        tf_transform_output,
        batch_size,
        shuffle_buffer=shuffle_buffer,
        repeat=True,
        cache=cache,
        bucket_by_length=bucket,
    )
    # Each validation pass reads the eval split once (every example, once), or its first
    # eval_steps batches when set.
    evaluation = _dataset(
        fn_args,
        fn_args.eval_files,
        tf_transform_output,
        batch_size,
        shuffle_buffer=None,
        repeat=False,
        # A cache stays empty unless a pass reads to the end of the split.
        cache=cache and not fn_args.eval_steps,
        bucket_by_length=bucket,
    )
    if fn_args.eval_steps:
        evaluation = evaluation.take(int(fn_args.eval_steps))

    model = build_model(params, embedding_matrix)
    epochs, steps_per_epoch = epochs_and_steps(cfg, total_steps)
    timer = _TrainTimer()
    callbacks = [
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        timer,
    ]
    if cfg.get("early_stopping_patience"):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                mode="max",
                patience=int(cfg["early_stopping_patience"]),
                restore_best_weights=True,
            )
        )
    started = time.perf_counter()
    history = model.fit(
        train,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=evaluation,
        callbacks=callbacks,
        verbose=2,
    )
    fit_seconds = time.perf_counter() - started
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/{HISTORY_FILE}", "w") as handle:
        json.dump(
            {
                "steps_per_epoch": steps_per_epoch,
                "epochs": epochs,
                "batch_size": batch_size,
                "train_steps": timer.steps,
                "train_seconds": timer.seconds,  # in training steps only
                "warmup_steps": min(timer.warmup_steps, timer.steps),
                "warmup_seconds": timer.warmup_seconds,  # the first steps, in train_seconds
                "epoch_train_seconds": timer.epoch_seconds,
                "fit_seconds": fit_seconds,  # including validation passes
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            },
            handle,
            indent=2,
        )

    # Export the plain functional graph (same layers and weights): the training-only subclass
    # (adversarial train_step) adds nothing to prediction, and keras.models.load_model revives
    # a plain graph with our layers alone.
    model = keras.Model(model.inputs, model.outputs, name=model.name)
    signatures = make_serving_signatures(model, tf_transform_output, cfg["class_names"])
    # No optimizer state: serving and evaluation never need it (a third of the size).
    model.save(
        fn_args.serving_model_dir, save_format="tf", signatures=signatures, include_optimizer=False
    )
