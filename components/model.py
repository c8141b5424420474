"""The classifier: embedding -> (Bi)LSTM -> dropout -> dense -> softmax over classes.

With ``pooling="last_max_mean"`` the LSTM's last state is concatenated with the masked max and
mean over all its time steps before the dropout (the same many-to-one LSTM, reading more of
what it computed). The input length is not fixed, so batches can be cut to their longest
review; padding (id 0) is masked everywhere.

Keras 2 (``tf_keras``) is used explicitly: TFX 1.16 and tf.Transform 1.16 build their layers on
it, and it saves models with dropout and custom signatures without workarounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components import features


@dataclass(frozen=True)
class ModelParams:
    vocab_total: int  # embedding rows: padding + vocabulary + OOV buckets
    max_sequence_length: int
    embedding_dimension: int = 64
    lstm_units: int = 64
    bidirectional: bool = False
    dense_units: int = 64
    num_classes: int = 2
    dropout_keep_prob: float = 0.8
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3
    embeddings_trainable: bool = True
    pooling: str = "last"  # "last" or "last_max_mean"
    embedding_dropout: float = 0.0  # drops whole embedding channels (SpatialDropout1D)


@keras.utils.register_keras_serializable(package="sentiment")
class MaskedMaxMeanPooling1D(keras.layers.Layer):
    """[max over time, mean over time] of the unmasked steps (zeros for a sequence with none)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = tf.ones(tf.shape(inputs)[:2], dtype=tf.bool)
        valid = tf.expand_dims(mask, -1)
        lowest = tf.fill(tf.shape(inputs), inputs.dtype.min)
        maximum = tf.reduce_max(tf.where(valid, inputs, lowest), axis=1)
        any_valid = tf.reduce_any(valid, axis=1)
        maximum = tf.where(any_valid, maximum, tf.zeros_like(maximum))
        weights = tf.cast(valid, inputs.dtype)
        mean = tf.math.divide_no_nan(
            tf.reduce_sum(inputs * weights, axis=1), tf.reduce_sum(weights, axis=1)
        )
        return tf.concat([maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None


def build_model(params: ModelParams, embedding_matrix: np.ndarray | None = None) -> keras.Model:
    """Compile the classifier. ``embedding_matrix`` (vocab_total x dim) initialises the
    embedding from pre-computed word vectors; row 0 (padding) is never read thanks to masking."""
    # Any length up to max_sequence_length: serving sends the padded Transform output, training
    # may send batches cut to their longest review.
    tokens = keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKENS_KEY)
    x = keras.layers.Embedding(
        params.vocab_total,
        params.embedding_dimension,
        mask_zero=True,  # id 0 is padding: the LSTM skips it
        trainable=params.embeddings_trainable,
        name="embedding",
    )(tokens)
    if params.embedding_dropout > 0:
        x = keras.layers.SpatialDropout1D(params.embedding_dropout, name="embedding_dropout")(x)
    if params.pooling not in ("last", "last_max_mean"):
        raise ValueError(f"unknown pooling {params.pooling!r}")
    pooled = params.pooling == "last_max_mean"
    lstm = keras.layers.LSTM(
        params.lstm_units, return_sequences=pooled, return_state=pooled, name="lstm"
    )
    if params.bidirectional:
        lstm = keras.layers.Bidirectional(lstm, name="bilstm")
    if pooled:
        outputs = lstm(x)
        sequence, states = outputs[0], outputs[1:]
        # Last hidden state per direction: (h, c) for LSTM, (h_fw, c_fw, h_bw, c_bw) for BiLSTM.
        last = [states[0]] if not params.bidirectional else [states[0], states[2]]
        x = keras.layers.Concatenate(name="last_max_mean")(
            [*last, MaskedMaxMeanPooling1D(name="max_mean_over_time")(sequence)]
        )
    else:
        x = lstm(x)
    x = keras.layers.Dropout(1.0 - params.dropout_keep_prob, name="dropout")(x)
    x = keras.layers.Dense(params.dense_units, activation="relu", name="dense")(x)
    probabilities = keras.layers.Dense(
        params.num_classes, activation="softmax", name=features.OUTPUT_PROBABILITIES
    )(x)
    model = keras.Model(inputs=tokens, outputs=probabilities, name="sentiment_lstm")
    if embedding_matrix is not None:
        # Set after building, not as a Constant initializer: an initializer constant would be
        # baked into every traced function of the SavedModel (tens of MB each).
        model.get_layer("embedding").set_weights([np.asarray(embedding_matrix, dtype="float32")])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def load_word_vectors(
    path: str, vocabulary: list[str], params: ModelParams, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Embedding matrix for ``vocabulary`` from a GloVe/word2vec text file.

    Row ``i + 1`` holds the vector of ``vocabulary[i]``; words missing from the file, OOV
    buckets and padding get small random vectors. Returns (matrix, number of words found).
    A word2vec header line ("count dim") is skipped; a vector whose size is not
    ``embedding_dimension`` is an error naming the file and line.
    """
    dim = params.embedding_dimension
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(params.vocab_total, dim)).astype("float32")
    matrix[features.PADDING_ID] = 0.0
    index = {word: i + features.ID_OFFSET for i, word in enumerate(vocabulary)}
    found = 0
    with tf.io.gfile.GFile(path, "r") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) < 2:
                continue
            row = index.get(parts[0])
            if row is None:
                continue
            if len(parts) - 1 != dim:
                raise ValueError(
                    f"{path}, line {line_no}: vector for {parts[0]!r} has {len(parts) - 1} "
                    f"values, expected model.embedding_dimension = {dim}"
                )
            matrix[row] = np.asarray(parts[1:], dtype="float32")
            found += 1
    return matrix, found
