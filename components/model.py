"""The classifier: embedding -> (Bi)LSTM -> dropout -> dense -> softmax over classes.

With ``pooling="last_max_mean"`` the LSTM's last state is concatenated with the masked max and
mean over all its time steps before the dropout (the same many-to-one LSTM, reading more of
what it computed). The input length is not fixed, so batches can be cut to their longest
review; padding (id 0) is masked everywhere.

Training may add adversarial perturbations of the embeddings (``SentimentClassifier``) and a
moving average of the weights; neither changes the graph that predicts. For serving,
:func:`fused_inference` computes the same function with TensorFlow's fused LSTM kernel.

Keras 2 (``tf_keras``) is used explicitly: TFX 1.16 and tf.Transform 1.16 build their layers on
it, and it saves models with dropout and custom signatures without workarounds.
"""

from __future__ import annotations

from collections.abc import Callable
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
    # L2 norm of the adversarial perturbation added to each review's embeddings during training
    # (Miyato, Dai & Goodfellow 2017); 0 trains on the clean loss only.
    adversarial_epsilon: float = 0.0
    # Exponential moving average of the weights (Adam's use_ema), loaded into the model every
    # ``weight_average_every`` steps (each validation pass) and at the end; 0 = off.
    weight_average_momentum: float = 0.0
    weight_average_every: int | None = None


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


@keras.utils.register_keras_serializable(package="sentiment")
class NotPadding(keras.layers.Layer):
    """True where a token id is not padding: the mask every later layer receives."""

    def call(self, ids):
        return tf.not_equal(ids, features.PADDING_ID)


@keras.utils.register_keras_serializable(package="sentiment")
class SentimentClassifier(keras.Model):
    """The functional classifier, plus adversarial training on the embeddings.

    With ``adversarial_epsilon`` > 0 each training step adds, to the clean loss, the loss on
    the same batch with every review's embedded sequence moved by ``epsilon`` (L2 norm) in the
    direction that increases the loss most (Miyato et al. 2017, "Adversarial training methods
    for semi-supervised text classification"). It only changes how weights are fitted:
    prediction is the unchanged functional graph.
    """

    def __init__(self, *args, adversarial_epsilon: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.adversarial_epsilon = float(adversarial_epsilon)
        # (ids, embedded) -> probabilities through this model's own layers; a plain function,
        # not an attribute Keras would track and save as part of the model.
        self._from_embeddings: Callable[..., tf.Tensor] | None = None

    def get_config(self):
        return {**super().get_config(), "adversarial_epsilon": self.adversarial_epsilon}

    def train_step(self, data):
        if not self.adversarial_epsilon or self._from_embeddings is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        embedding = self.get_layer("embedding")
        with tf.GradientTape() as tape:
            embedded = embedding(x, training=True)
            with tf.GradientTape() as inner:
                inner.watch(embedded)
                y_pred = self._from_embeddings([x, embedded], training=True)
                clean_loss = self.compute_loss(x, y, y_pred, sample_weight)
            direction = tf.stop_gradient(inner.gradient(clean_loss, embedded))
            perturbation = self.adversarial_epsilon * tf.math.l2_normalize(direction, axis=[1, 2])
            y_adversarial = self._from_embeddings([x, embedded + perturbation], training=True)
            loss = clean_loss + self.loss(y, y_adversarial, sample_weight)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self.compute_metrics(x, y, y_pred, sample_weight)


def build_model(params: ModelParams, embedding_matrix: np.ndarray | None = None) -> keras.Model:
    """Compile the classifier. ``embedding_matrix`` (vocab_total x dim) initialises the
    embedding from pre-computed word vectors; row 0 (padding) is never read thanks to masking."""
    if params.pooling not in ("last", "last_max_mean"):
        raise ValueError(f"unknown pooling {params.pooling!r}")
    # Any length up to max_sequence_length: serving sends the padded Transform output, training
    # may send batches cut to their longest review.
    tokens = keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKENS_KEY)
    embedding = keras.layers.Embedding(
        params.vocab_total,
        params.embedding_dimension,
        mask_zero=True,  # id 0 is padding: the LSTM skips it
        trainable=params.embeddings_trainable,
        name="embedding",
    )
    not_padding = NotPadding(name="not_padding")
    spatial_dropout = (
        keras.layers.SpatialDropout1D(params.embedding_dropout, name="embedding_dropout")
        if params.embedding_dropout > 0
        else None
    )
    pooled = params.pooling == "last_max_mean"
    lstm = keras.layers.LSTM(
        params.lstm_units, return_sequences=pooled, return_state=pooled, name="lstm"
    )
    if params.bidirectional:
        lstm = keras.layers.Bidirectional(lstm, name="bilstm")
    max_mean = MaskedMaxMeanPooling1D(name="max_mean_over_time") if pooled else None
    concat = keras.layers.Concatenate(name="last_max_mean") if pooled else None
    dropout = keras.layers.Dropout(1.0 - params.dropout_keep_prob, name="dropout")
    dense = keras.layers.Dense(params.dense_units, activation="relu", name="dense")
    output = keras.layers.Dense(
        params.num_classes, activation="softmax", name=features.OUTPUT_PROBABILITIES
    )

    def classify(ids, embedded):
        """Everything after the embedding lookup (shared by both graphs below)."""
        mask = not_padding(ids)
        x = spatial_dropout(embedded) if spatial_dropout is not None else embedded
        if pooled:
            outputs = lstm(x, mask=mask)
            sequence, states = outputs[0], outputs[1:]
            # Last hidden state per direction: (h, c) for LSTM, (h_fw, c_fw, h_bw, c_bw) for BiLSTM.
            last = [states[0]] if not params.bidirectional else [states[0], states[2]]
            x = concat([*last, max_mean(sequence, mask=mask)])
        else:
            x = lstm(x, mask=mask)
        return output(dense(dropout(x)))

    model = SentimentClassifier(
        inputs=tokens,
        outputs=classify(tokens, embedding(tokens)),
        name="sentiment_lstm",
        adversarial_epsilon=params.adversarial_epsilon,
    )
    if params.adversarial_epsilon:
        # The same layers fed with (perturbed) embeddings: how adversarial training reaches them.
        embedded = keras.Input(shape=(None, params.embedding_dimension), name="embedded")
        head = keras.Model([tokens, embedded], classify(tokens, embedded))
        model._from_embeddings = lambda inputs, training: head(inputs, training=training)
    if embedding_matrix is not None:
        # Set after building, not as a Constant initializer: an initializer constant would be
        # baked into every traced function of the SavedModel (tens of MB each).
        embedding.set_weights([np.asarray(embedding_matrix, dtype="float32")])
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=params.learning_rate,
            use_ema=params.weight_average_momentum > 0,
            ema_momentum=params.weight_average_momentum or 0.99,
            ema_overwrite_frequency=(
                params.weight_average_every if params.weight_average_momentum > 0 else None
            ),
        ),
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


def _block_lstm_sequence(cell: keras.layers.LSTMCell, inputs: tf.Tensor) -> tf.Tensor:
    """Hidden states [batch, time, units] of a Keras LSTM cell run over every step of
    ``inputs`` [batch, time, features] by TensorFlow's fused ``BlockLSTM`` kernel."""
    # Keras keeps gates as (input, forget, cell, output); BlockLSTM as (input, cell, forget,
    # output), with input and recurrent weights stacked.
    i, f, c, o = tf.split(tf.concat([cell.kernel, cell.recurrent_kernel], axis=0), 4, axis=1)
    bi, bf, bc, bo = tf.split(cell.bias, 4)
    zeros_state = tf.zeros([tf.shape(inputs)[0], cell.units])
    no_peephole = tf.zeros([cell.units])
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(inputs)[1], tf.int64),
        x=tf.transpose(inputs, [1, 0, 2]),
        cs_prev=zeros_state,
        h_prev=zeros_state,
        w=tf.concat([i, c, f, o], axis=1),
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=tf.concat([bi, bc, bf, bo], axis=0),
        forget_bias=0.0,  # Keras folds it into the bias
        cell_clip=-1.0,  # no clipping, as in Keras
        use_peephole=False,
    )
    return tf.transpose(outputs[-1], [1, 0, 2])


def fused_inference(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """``tokens -> probabilities``, the same function as ``model(tokens, training=False)``
    for a model from :func:`build_model`, computed with the fused ``BlockLSTM`` kernel.

    Keras runs an LSTM as a while loop of about fifteen small ops per time step, and the
    per-op overhead dominates on a CPU: one review of 200 tokens costs ~4x more that way. The
    fused kernel does a whole sequence in one op. Prediction only (dropout is off); training
    keeps the Keras layers. Reviews must be padded at the end (as Transform pads them): a
    sequence's length is its number of non-padding ids.
    """
    embedding = model.get_layer("embedding").embeddings
    bidirectional = any(layer.name == "bilstm" for layer in model.layers)
    recurrent = model.get_layer("bilstm" if bidirectional else "lstm")
    cells = (
        [recurrent.forward_layer.cell, recurrent.backward_layer.cell]
        if bidirectional
        else [recurrent.cell]
    )
    pooled = any(layer.name == "max_mean_over_time" for layer in model.layers)
    dense = model.get_layer("dense")
    output = model.get_layer(features.OUTPUT_PROBABILITIES)

    def predict(tokens: tf.Tensor) -> tf.Tensor:
        mask = tf.not_equal(tokens, features.PADDING_ID)
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        steps = tf.maximum(lengths, 1)  # an empty review: its outputs are zeroed below
        last_step = tf.stack([tf.range(tf.shape(tokens)[0]), steps - 1], axis=1)
        embedded = tf.gather(embedding, tokens)
        forward = _block_lstm_sequence(cells[0], embedded)
        last = [tf.gather_nd(forward, last_step)]
        sequence = forward
        if bidirectional:
            # The backward LSTM reads each review from its own last token: reverse only the
            # valid part, so padding stays at the end, then align the outputs with the input.
            reversed_outputs = _block_lstm_sequence(
                cells[1], tf.reverse_sequence(embedded, steps, seq_axis=1, batch_axis=0)
            )
            last.append(tf.gather_nd(reversed_outputs, last_step))
            backward = tf.reverse_sequence(reversed_outputs, steps, seq_axis=1, batch_axis=0)
            sequence = tf.concat([forward, backward], axis=-1)
        has_tokens = tf.expand_dims(lengths > 0, 1)
        parts = [tf.where(has_tokens, state, tf.zeros_like(state)) for state in last]
        if pooled:
            parts.append(model.get_layer("max_mean_over_time")(sequence, mask=mask))
        return output(dense(tf.concat(parts, axis=-1)))

    return predict
