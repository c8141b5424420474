"""Serving signatures with the tf.Transform graph embedded.

* ``serving_default``: a batch of raw review strings -> probabilities, label, class name.
* ``serving_tf_example``: serialized ``tf.Example`` protos (TFMA, TF Serving classify/predict).
* ``transform_features``: serialized ``tf.Example`` -> the review-length bucket, which TFMA
  slices the evaluation by (``ModelSpec.preprocessing_function_names``).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components import features
from components.model import fused_inference


def raw_text_features(
    text: tf.Tensor, raw_spec: dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]
) -> dict[str, tf.Tensor | tf.SparseTensor]:
    """Shape raw strings the way the Transform graph expects its ``text`` input."""
    column = tf.reshape(text, [-1, 1])
    if isinstance(raw_spec[features.TEXT_KEY], tf.io.FixedLenFeature):
        return {features.TEXT_KEY: column}
    batch = tf.shape(column, out_type=tf.int64)[0]
    indices = tf.stack([tf.range(batch), tf.zeros([batch], tf.int64)], axis=1)
    return {features.TEXT_KEY: tf.SparseTensor(indices, tf.reshape(text, [-1]), [batch, 1])}


# Reviews per LSTM call when a request holds many: sorted by length, each chunk is cut to its
# own longest review, so short reviews do not step through the padding of long ones.
SERVING_CHUNK = 32


def _trimmed_tokens(transformed: dict[str, tf.Tensor]) -> tf.Tensor:
    """Token ids cut to the longest review of the batch: the LSTM does not step through
    padding that every review has (masking makes the result the same, only faster)."""
    tokens = transformed[features.TOKENS_KEY]
    longest = tf.reduce_max(transformed[features.TOKEN_COUNT_KEY])  # empty batch: clipped to 1
    length = tf.clip_by_value(longest, 1, tf.shape(tokens, out_type=tf.int64)[1])
    return tokens[:, :length]


def _predict(model: keras.Model, transformed: dict[str, tf.Tensor]) -> tf.Tensor:
    """Class probabilities, the same as ``model(tokens)`` (masking ignores padding) but with
    the fused LSTM kernel (:func:`components.model.fused_inference`) and as little padding as
    possible: a small batch is cut to its longest review; a large one is sorted by length and
    run in chunks of SERVING_CHUNK, each cut to its own longest review."""
    predict = fused_inference(model)
    tokens = transformed[features.TOKENS_KEY]
    counts = tf.reshape(transformed[features.TOKEN_COUNT_KEY], [-1])
    size = tf.shape(tokens)[0]
    width = tf.shape(tokens, out_type=tf.int64)[1]

    def whole_batch():
        return predict(_trimmed_tokens(transformed))

    def sorted_chunks():
        order = tf.argsort(counts, direction="DESCENDING", stable=True)
        tokens_sorted = tf.gather(tokens, order)
        lengths = tf.cast(tf.clip_by_value(tf.gather(counts, order), 1, width), tf.int32)
        chunks = (size + SERVING_CHUNK - 1) // SERVING_CHUNK
        probabilities = tf.TensorArray(
            tf.float32,
            size=chunks,
            infer_shape=False,
            element_shape=tf.TensorShape([None, model.output_shape[-1]]),
        )

        def body(i, probabilities):
            start = i * SERVING_CHUNK
            end = tf.minimum(start + SERVING_CHUNK, size)
            chunk = tokens_sorted[start:end, : lengths[start]]  # longest first: sorted
            return i + 1, probabilities.write(i, predict(chunk))

        _, probabilities = tf.while_loop(lambda i, _: i < chunks, body, (0, probabilities))
        # Back to the request's order.
        return tf.gather(probabilities.concat(), tf.math.invert_permutation(order))

    return tf.cond(size > 2 * SERVING_CHUNK, sorted_chunks, whole_batch)


def length_bucket_names(boundaries: Sequence[int]) -> list[str]:
    """``(100, 200)`` -> ``["<100", "100-199", ">=200"]``."""
    names = [f"<{boundaries[0]}"]
    names += [f"{lo}-{hi - 1}" for lo, hi in zip(boundaries, boundaries[1:], strict=False)]
    return names + [f">={boundaries[-1]}"]


def length_bucket(token_count: tf.Tensor, boundaries: Sequence[int]) -> tf.Tensor:
    """[batch] token counts -> [batch] bucket names."""
    index = tf.searchsorted(
        tf.constant(list(boundaries), tf.int64), tf.reshape(token_count, [-1]), side="right"
    )
    return tf.gather(tf.constant(length_bucket_names(boundaries)), index)


def _outputs(probabilities: tf.Tensor, class_names: Sequence[str]) -> dict[str, tf.Tensor]:
    label = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
    outputs = {
        features.OUTPUT_PROBABILITIES: probabilities,
        features.OUTPUT_LABEL: label,
        features.OUTPUT_CLASS_NAME: tf.gather(tf.constant(list(class_names)), label),
    }
    if probabilities.shape[-1] == 2:
        outputs[features.OUTPUT_POSITIVE] = probabilities[:, 1]
    return outputs


def make_serving_signatures(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, class_names: Sequence[str]
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    # Attached to the model so that the Transform graph's assets are saved with it.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    raw_spec.pop(features.LABEL_KEY, None)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_raw_text(text):
        transformed = model.tft_layer(raw_text_features(text, raw_spec))
        return _outputs(_predict(model, transformed), class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_examples(serialized):
        parsed = tf.io.parse_example(serialized, raw_spec)
        transformed = model.tft_layer(parsed)
        return _outputs(_predict(model, transformed), class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, raw_spec))
        return {
            features.LENGTH_BUCKET_KEY: length_bucket(
                transformed[features.TOKEN_COUNT_KEY], features.LENGTH_BUCKET_BOUNDARIES
            )
        }

    return {
        features.SERVING_RAW: serve_raw_text.get_concrete_function(),
        features.SERVING_TF_EXAMPLE: serve_tf_examples.get_concrete_function(),
        features.TRANSFORM_FEATURES: transform_features.get_concrete_function(),
    }
