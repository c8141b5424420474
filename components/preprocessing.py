"""tf.Transform ``preprocessing_fn``: raw review text -> fixed-length token ids.

Steps: lower-case (Unicode), strip HTML tags such as ``<br />``, put spaces around punctuation
and symbols so they become tokens of their own, split on white space, map tokens to ids with a
vocabulary computed over the training split, shift ids so that 0 is padding, then pad or
truncate to ``max_sequence_length``. The true token count is kept.

Truncation (``truncation``) of a review longer than ``max_sequence_length``: ``head`` keeps its
first tokens, ``tail`` its last ones (a review's verdict is often at its end), ``head_tail`` its
first quarter and last three quarters of ``max_sequence_length`` (Sun et al., 2019). Kept tokens
stay in order and left-aligned, padding after them.

Id layout: 0 = padding, 1..V = vocabulary (most frequent first), V+1..V+B = OOV buckets.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from components import features

DEFAULTS: dict[str, Any] = {
    "vocab_size": 20000,
    "frequency_threshold": 1,
    "num_oov_buckets": 1,
    "max_sequence_length": 256,
    "truncation": "head",
}

TRUNCATIONS = ("head", "tail", "head_tail")

_HTML_TAG = r"<[^>]*>"
# Unicode punctuation and symbols (emoji are symbols), each made a token of its own.
_PUNCT = r"([\p{P}\p{S}])"


def _as_vector(x: tf.Tensor | tf.SparseTensor, default: Any) -> tf.Tensor:
    """A [batch] dense tensor from a [batch, 1] dense or sparse raw feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default
        )
    return tf.reshape(x, [-1])


def clean_text(text: tf.Tensor) -> tf.Tensor:
    """Lower-cased text with HTML tags removed and punctuation separated by spaces."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, _HTML_TAG, " ")
    return tf.strings.regex_replace(text, _PUNCT, r" \1 ")


def tokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """[batch] strings -> [batch, (tokens)] ragged string tokens."""
    return tf.strings.split(clean_text(text))


def truncate(ids: tf.RaggedTensor, max_len: int, truncation: str = "head") -> tf.RaggedTensor:
    """At most ``max_len`` ids per row: the first (head), the last (tail) or the first
    ``max_len // 4`` and the last ``max_len - max_len // 4`` (head_tail)."""
    if truncation not in TRUNCATIONS:
        raise ValueError(f"unknown truncation {truncation!r}; expected one of {TRUNCATIONS}")
    head = {"head": max_len, "tail": 0, "head_tail": max_len // 4}[truncation]
    if head == max_len:
        return ids[:, :max_len]
    # Rows no longer than max_len come out whole: their part after `head` fits in the rest.
    return tf.concat([ids[:, :head], ids[:, head:][:, -(max_len - head) :]], axis=1)


def preprocessing_fn(
    inputs: dict[str, Any], custom_config: dict[str, Any] | None = None
) -> dict[str, tf.Tensor]:
    cfg = {**DEFAULTS, **(custom_config or {})}
    max_len = int(cfg["max_sequence_length"])

    text = _as_vector(inputs[features.TEXT_KEY], default="")
    tokens = tokenize(text)
    ids = tft.compute_and_apply_vocabulary(
        tokens,
        top_k=int(cfg["vocab_size"]),
        frequency_threshold=int(cfg["frequency_threshold"]),
        num_oov_buckets=int(cfg["num_oov_buckets"]),
        vocab_filename=features.VOCAB_NAME,
    )
    ids = ids + features.ID_OFFSET
    ids = truncate(ids, max_len, str(cfg["truncation"]))
    padded = ids.to_tensor(default_value=features.PADDING_ID, shape=[None, max_len])

    outputs = {
        features.TOKENS_KEY: tf.cast(padded, tf.int64),
        features.TOKEN_COUNT_KEY: tf.cast(tokens.row_lengths(), tf.int64),
    }
    if features.LABEL_KEY in inputs:
        outputs[features.LABEL_KEY] = tf.cast(_as_vector(inputs[features.LABEL_KEY], -1), tf.int64)
    return outputs
