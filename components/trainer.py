"""TFX Trainer entry point: a thin adapter from ``FnArgs`` to the model code.

Referenced by dotted path (``components.trainer.run_fn``) so the installed package is what runs,
locally and in a container.
"""

from __future__ import annotations

import json
import math
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import features
from components.model import ModelParams, build_model, load_word_vectors
from components.signatures import make_serving_signatures

# Written next to the TensorBoard logs in the model-run artifact: per-epoch curves for reports.
HISTORY_FILE = "history.json"


def _dataset(
    fn_args: tfx.components.FnArgs,
    files: list[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
) -> tf.data.Dataset:
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=features.LABEL_KEY,
            shuffle=shuffle,
            shuffle_buffer_size=10000,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    return dataset.map(lambda x, y: (x[features.TOKENS_KEY], y)).prefetch(tf.data.AUTOTUNE)


def _vocabulary(tf_transform_output: tft.TFTransformOutput) -> list[str]:
    path = tf_transform_output.vocabulary_file_by_name(features.VOCAB_NAME)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return [line.rstrip(b"\n").decode("utf-8", "replace") for line in handle]


def model_params(cfg: dict[str, Any], vocab_size: int) -> ModelParams:
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
        learning_rate=float(cfg["learning_rate"]),
        embeddings_trainable=bool(word_vectors.get("trainable", True)) if word_vectors else True,
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    cfg: dict[str, Any] = fn_args.custom_config or {}
    keras.utils.set_random_seed(int(cfg.get("seed", 42)))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocabulary = _vocabulary(tf_transform_output)
    params = model_params(cfg, len(vocabulary))

    embedding_matrix = None
    if cfg.get("word_vectors"):
        embedding_matrix, found = load_word_vectors(
            cfg["word_vectors"]["path"], vocabulary, params, seed=int(cfg.get("seed", 42))
        )
        logging.info("word vectors: %d of %d vocabulary words found", found, len(vocabulary))

    batch_size = int(cfg["batch_size"])
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, batch_size, True)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, batch_size, False)

    model = build_model(params, embedding_matrix)
    total_steps = int(fn_args.train_steps)
    steps_per_epoch = min(int(cfg.get("steps_per_epoch", total_steps)), total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    steps_per_epoch = math.ceil(total_steps / epochs)  # spread evenly: epochs x steps ~ total
    history = model.fit(
        train,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=evaluation,
        validation_steps=int(fn_args.eval_steps),
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/{HISTORY_FILE}", "w") as handle:
        json.dump(
            {
                "steps_per_epoch": steps_per_epoch,
                "epochs": epochs,
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            },
            handle,
            indent=2,
        )

    signatures = make_serving_signatures(model, tf_transform_output, cfg["class_names"])
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
