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


def _dataset(
    fn_args: tfx.components.FnArgs,
    files: list[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle_buffer: int | None,
    bucket_by_length: bool = False,
) -> tf.data.Dataset:
    """(tokens, label) batches, repeated forever; shuffled through a buffer of
    ``shuffle_buffer`` examples unless it is None. With ``bucket_by_length`` each batch holds
    reviews of similar length and is cut to its longest one (at least one step)."""
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=features.LABEL_KEY,
            shuffle=shuffle_buffer is not None,
            shuffle_buffer_size=shuffle_buffer or 1,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    if not bucket_by_length:
        return dataset.map(lambda x, y: (x[features.TOKENS_KEY], y)).prefetch(tf.data.AUTOTUNE)

    def trim(x, y):
        tokens = x[features.TOKENS_KEY]
        length = tf.clip_by_value(x[features.TOKEN_COUNT_KEY], 1, tf.shape(tokens, tf.int64)[0])
        return tokens[:length], y

    max_len = tf_transform_output.transformed_feature_spec()[features.TOKENS_KEY].shape[0]
    boundaries = list(range(BUCKET_WIDTH, max_len, BUCKET_WIDTH))
    return (
        dataset.unbatch()
        .map(trim, num_parallel_calls=tf.data.AUTOTUNE)
        .bucket_by_sequence_length(
            lambda tokens, _: tf.shape(tokens)[0],
            bucket_boundaries=[b + 1 for b in boundaries],
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=(tf.constant(features.PADDING_ID, tf.int64), None),
        )
        .prefetch(tf.data.AUTOTUNE)
    )


class _TrainTimer(keras.callbacks.Callback):
    """Seconds spent in training steps only (no validation, no start-up) and steps taken."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.steps = 0
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds += time.perf_counter() - self._start
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
    # Input files are often sorted by label (IMDB's are: all negative reviews, then all
    # positive ones); a buffer smaller than the split feeds long runs of one class.
    shuffle_buffer = int(cfg.get("shuffle_buffer", 100_000))
    train = _dataset(
        fn_args, fn_args.train_files, tf_transform_output, batch_size, shuffle_buffer, bucket
    )
    evaluation = _dataset(
        fn_args, fn_args.eval_files, tf_transform_output, batch_size, None, bucket
    )

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
        validation_steps=int(fn_args.eval_steps),
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
