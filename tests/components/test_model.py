"""Tests of ``components.model`` (build_model, load_word_vectors) and of the serving signatures
in ``components.signatures``, saved and reloaded with a real (tiny) tf.Transform graph."""

from __future__ import annotations

import functools
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras as keras
from tensorflow_transform.tf_metadata import dataset_metadata

from components import features, preprocessing, signatures
from components.model import ModelParams, build_model, fused_inference, load_word_vectors

MAX_LEN = 6


def _params(**overrides) -> ModelParams:
    base = dict(
        vocab_total=12,
        max_sequence_length=MAX_LEN,
        embedding_dimension=8,
        lstm_units=8,
        dense_units=8,
        num_classes=2,
    )
    return ModelParams(**{**base, **overrides})


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


# --- build_model ------------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 3])
def test_output_shape_and_rows_sum_to_one(num_classes):
    model = build_model(_params(num_classes=num_classes))
    x = np.array([[5, 7, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]], dtype=np.int64)
    probs = model(x, training=False).numpy()
    assert probs.shape == (3, num_classes)
    assert np.all(probs >= 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(3), rtol=1e-5)


@pytest.mark.parametrize(
    "bidirectional,pooling",
    [(False, "last"), (True, "last"), (False, "last_max_mean"), (True, "last_max_mean")],
)
def test_padding_is_masked(bidirectional, pooling):
    model = build_model(_params(bidirectional=bidirectional, pooling=pooling))
    x = np.array([[5, 7, 0, 0, 0, 0], [3, 0, 0, 0, 0, 0]], dtype=np.int64)
    before = model(x, training=False).numpy()

    # Replace the padding row of the embedding with large random values: if id 0 is masked,
    # the LSTM never reads it and the output cannot change.
    embedding = model.get_layer("embedding")
    (weights,) = embedding.get_weights()
    weights[features.PADDING_ID] = np.random.default_rng(0).normal(0.0, 5.0, weights.shape[1])
    embedding.set_weights([weights])
    np.testing.assert_allclose(model(x, training=False).numpy(), before, rtol=1e-6, atol=1e-7)

    # Changing a real token does change the output (the comparison above is not vacuous).
    changed = model(np.array([[5, 8, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0]]), training=False).numpy()
    assert np.all(np.abs(changed - before).max(axis=1) > 1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "last_max_mean"])
def test_padded_and_unpadded_copies_agree(bidirectional, pooling):
    # Training may cut a batch to its longest review; serving sends max_sequence_length tokens.
    model = build_model(_params(bidirectional=bidirectional, pooling=pooling))
    short = model(np.array([[5, 7, 2]], dtype=np.int64), training=False).numpy()
    padded = model(np.array([[5, 7, 2, 0, 0, 0]], dtype=np.int64), training=False).numpy()
    np.testing.assert_allclose(padded, short, rtol=1e-5, atol=1e-6)
    empty = model(np.zeros((1, MAX_LEN), dtype=np.int64), training=False).numpy()
    assert np.all(np.isfinite(empty))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "last_max_mean"])
def test_fused_inference_computes_the_keras_model(bidirectional, pooling):
    """The serving path (fused BlockLSTM kernel) gives the Keras model's answers: reviews of
    every length, a full one, an empty one; with trained-looking (non-initial) weights."""
    params = _params(
        bidirectional=bidirectional, pooling=pooling, dropout_keep_prob=0.5, embedding_dropout=0.3
    )
    model = build_model(params)
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.4, w.shape).astype("f4") for w in model.get_weights()])
    x = np.array(
        [
            [5, 7, 2, 9, 11, 3],
            [5, 7, 2, 0, 0, 0],
            [4, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [1, 10, 1, 10, 6, 0],
        ],
        dtype=np.int64,
    )
    expected = model(x, training=False).numpy()
    got = fused_inference(model)(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Not vacuous: the reviews get different answers.
    assert np.abs(expected[0] - expected[1]).max() > 1e-3
    assert np.abs(expected[1] - expected[2]).max() > 1e-3
    # Inside a traced function (as in the serving signatures), with a cut batch.
    traced = tf.function(fused_inference(model))
    np.testing.assert_allclose(traced(tf.constant(x[1:3, :3])).numpy(), expected[1:3], atol=1e-6)


def test_dropout_only_in_training():
    model = build_model(_params(dropout_keep_prob=0.5, lstm_units=16, dense_units=16))
    assert model.get_layer("dropout").rate == pytest.approx(0.5)
    x = np.array([[1, 2, 3, 4, 5, 6], [5, 7, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0]], dtype=np.int64)
    train_a = model(x, training=True).numpy()
    train_b = model(x, training=True).numpy()
    assert not np.allclose(train_a, train_b)
    infer_a = model(x, training=False).numpy()
    infer_b = model(x, training=False).numpy()
    np.testing.assert_array_equal(infer_a, infer_b)


def test_embedding_matrix_initialises_weights_and_trainable_flag():
    params = _params(vocab_total=5, embedding_dimension=3, embeddings_trainable=False)
    matrix = np.arange(15, dtype="float32").reshape(5, 3) / 10.0
    model = build_model(params, matrix)
    embedding = model.get_layer("embedding")
    np.testing.assert_array_equal(embedding.get_weights()[0], matrix)
    assert not embedding.trainable
    assert build_model(_params()).get_layer("embedding").trainable


def test_weight_average_is_loaded_every_n_steps():
    """momentum 0.5 every 2 steps: after step 2 the weights are 0.25 w0 + 0.25 w1 + 0.5 w2 of
    the same training without averaging (w_k: weights after k steps)."""
    common = dict(bidirectional=True, pooling="last_max_mean", dropout_keep_prob=1.0)
    averaged = build_model(_params(weight_average_momentum=0.5, weight_average_every=2, **common))
    plain = build_model(_params(**common))
    plain.set_weights(averaged.get_weights())
    x = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9]], dtype=np.int64)
    y = np.array([1, 0])
    trajectory = [[w.numpy() for w in plain.trainable_weights]]
    for _ in range(2):
        plain.train_on_batch(x, y)
        trajectory.append([w.numpy() for w in plain.trainable_weights])
    averaged.train_on_batch(x, y)
    after_one = [w.numpy() for w in averaged.trainable_weights]
    for got, want in zip(after_one, trajectory[1], strict=True):  # not loaded after step 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    averaged.train_on_batch(x, y)
    for got, w0, w1, w2 in zip(averaged.trainable_weights, *trajectory, strict=True):
        np.testing.assert_allclose(got.numpy(), 0.25 * w0 + 0.25 * w1 + 0.5 * w2, atol=1e-6)
    assert not np.allclose(
        trajectory[2][0], 0.25 * trajectory[0][0] + 0.25 * trajectory[1][0] + 0.5 * trajectory[2][0]
    )


def _sgd_step(model, x, y):
    """One plain SGD step (learning rate 1): the weights move by exactly minus the gradient."""
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(),
    )
    model.train_on_batch(x, y)
    return [w.numpy() for w in model.trainable_weights]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_adversarial_training_adds_the_loss_at_the_worst_perturbation(bidirectional):
    """One step with adversarial_epsilon = the clean gradient plus the gradient at embeddings
    moved by epsilon (L2 per review) along the clean loss gradient, computed here independently:
    every id occurs once in the batch, so moving an embedding row moves exactly one position."""
    eps = 0.7
    common = dict(
        vocab_total=12, bidirectional=bidirectional, pooling="last_max_mean", dropout_keep_prob=1.0
    )
    x = np.array([[1, 2, 3, 4, 0, 0], [5, 6, 7, 8, 9, 10]], dtype=np.int64)
    y = np.array([1, 0])
    adversarial = build_model(_params(adversarial_epsilon=eps, **common))
    plain = build_model(_params(**common))
    plain.set_weights(adversarial.get_weights())
    start = [w.numpy() for w in plain.trainable_weights]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def gradients():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, plain(x, training=True))
        grads = tape.gradient(loss, plain.trainable_weights)
        return [tf.convert_to_tensor(g).numpy() for g in grads]

    clean = gradients()
    embedding = plain.get_layer("embedding").embeddings
    table_index = [i for i, w in enumerate(plain.trainable_weights) if w is embedding][0]
    moved = start[table_index].copy()
    for review in x:
        rows = review[review != features.PADDING_ID]
        direction = clean[table_index][rows]
        moved[rows] += eps * direction / np.linalg.norm(direction)
    embedding.assign(moved)
    at_perturbation = gradients()
    expected = [w - g1 - g2 for w, g1, g2 in zip(start, clean, at_perturbation, strict=True)]
    for got, want in zip(_sgd_step(adversarial, x, y), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # The adversarial term is not negligible here: a step without it would fail the check above.
    assert not np.allclose(expected[table_index], start[table_index] - clean[table_index])


# --- load_word_vectors ------------------------------------------------------------------------

VOCABULARY = ["the", "movie", "great"]  # ids 1, 2, 3; id 4 is the OOV bucket
WV_PARAMS = _params(vocab_total=1 + len(VOCABULARY) + 1, embedding_dimension=3)
THE = [0.1, -0.2, 0.3]
MOVIE = [1.5, 2.5, -3.5]


def _check_matrix(matrix, found):
    assert matrix.shape == (5, 3)
    assert matrix.dtype == np.float32
    assert found == 2
    np.testing.assert_array_equal(matrix[features.PADDING_ID], np.zeros(3, np.float32))
    np.testing.assert_array_equal(matrix[1], np.asarray(THE, np.float32))
    np.testing.assert_array_equal(matrix[2], np.asarray(MOVIE, np.float32))
    # "great" (missing from the file) and the OOV bucket get small random vectors.
    for row in (3, 4):
        assert np.any(matrix[row] != 0.0)
        assert np.all(np.abs(matrix[row]) < 0.5)


def test_load_glove_file(tmp_path):
    path = tmp_path / "glove.txt"
    lines = [
        "the 0.1 -0.2 0.3",
        "unused 9 9 9",
        "movie 1.5 2.5 -3.5",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    matrix, found = load_word_vectors(str(path), VOCABULARY, WV_PARAMS, seed=7)
    _check_matrix(matrix, found)
    # Same seed, same random rows.
    again, _ = load_word_vectors(str(path), VOCABULARY, WV_PARAMS, seed=7)
    np.testing.assert_array_equal(matrix, again)


def test_load_word2vec_text_file_with_header(tmp_path):
    path = tmp_path / "vectors.w2v.txt"
    # word2vec text format: "count dim" header, lines often end with a space.
    lines = [
        "3 3",
        "movie 1.5 2.5 -3.5 ",
        "the 0.1 -0.2 0.3 ",
        "other 0 0 0 ",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    matrix, found = load_word_vectors(str(path), VOCABULARY, WV_PARAMS)
    _check_matrix(matrix, found)


def test_load_word_vectors_wrong_dimension(tmp_path):
    path = tmp_path / "glove.bad.txt"
    path.write_text("the 0.1 -0.2 0.3\nunused 1 2\nmovie 1.5 2.5\n", encoding="utf-8")
    with pytest.raises(ValueError) as excinfo:
        load_word_vectors(str(path), VOCABULARY, WV_PARAMS)
    message = str(excinfo.value)
    assert str(path) in message
    assert "line 3" in message
    assert "'movie'" in message


# --- serving signatures -----------------------------------------------------------------------

TRAIN_SENTENCES = [
    "The movie was GREAT!<br />Great fun.",
    "The plot was dull.",
    "A great cast, a dull script.",
    "Fun fun fun!",
]
CLASS_NAMES = ["negative", "positive"]


def _write_transform_fn(output_dir: str, temp_dir: str, text_spec) -> None:
    data = [
        {features.TEXT_KEY: [text], features.LABEL_KEY: [i % 2]}
        for i, text in enumerate(TRAIN_SENTENCES)
    ]
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
        {features.TEXT_KEY: text_spec, features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    )
    fn = functools.partial(
        preprocessing.preprocessing_fn,
        custom_config={"max_sequence_length": MAX_LEN, "vocab_size": 50},
    )
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=temp_dir):
        raw = pipeline | beam.Create(data, reshuffle=False)
        transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
        # The raw schema next to the transform graph, as TFX's Transform component writes it.
        _ = metadata | tft_beam.WriteMetadata(
            os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline
        )


def _example(text: str) -> bytes:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.TEXT_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])
                )
            }
        )
    ).SerializeToString()


@pytest.mark.parametrize(
    "text_spec",
    [tf.io.FixedLenFeature([1], tf.string), tf.io.VarLenFeature(tf.string)],
    ids=["fixed_len", "var_len"],
)
def test_serving_signatures_save_and_reload(tmp_path, text_spec):
    transform_dir = str(tmp_path / "transform")
    _write_transform_fn(transform_dir, str(tmp_path / "tft_tmp"), text_spec)
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    vocab_size = tf_transform_output.vocabulary_size_by_name(features.VOCAB_NAME)
    assert vocab_size > 5

    params = _params(vocab_total=features.ID_OFFSET + vocab_size + 1, dropout_keep_prob=0.8)
    model = build_model(params)
    assert model.get_layer("dropout").rate == pytest.approx(0.2)
    sigs = signatures.make_serving_signatures(model, tf_transform_output, CLASS_NAMES)
    export_dir = str(tmp_path / "serving_model")
    model.save(export_dir, save_format="tf", signatures=sigs)

    texts = ["A GREAT movie!", "Dull, dull plot.", "", "unseen words only 😀"]
    # Reference: the in-memory model on tokens from the same Transform graph.
    transformed = tf_transform_output.transform_raw_features(
        {features.TEXT_KEY: tf.constant([[t] for t in texts])}
        if isinstance(text_spec, tf.io.FixedLenFeature)
        else {features.TEXT_KEY: tf.sparse.from_dense(tf.constant([[t] for t in texts]))}
    )
    expected = model(transformed[features.TOKENS_KEY], training=False).numpy()
    del model

    loaded = tf.saved_model.load(export_dir)
    assert set(loaded.signatures.keys()) == {
        features.SERVING_RAW,
        features.SERVING_TF_EXAMPLE,
        features.TRANSFORM_FEATURES,
    }
    raw = loaded.signatures[features.SERVING_RAW](text=tf.constant(texts))
    examples = loaded.signatures[features.SERVING_TF_EXAMPLE](
        examples=tf.constant([_example(t) for t in texts])
    )

    for out in (raw, examples):
        assert set(out.keys()) == {
            features.OUTPUT_PROBABILITIES,
            features.OUTPUT_LABEL,
            features.OUTPUT_CLASS_NAME,
            features.OUTPUT_POSITIVE,
        }
        probs = out[features.OUTPUT_PROBABILITIES].numpy()
        assert probs.shape == (len(texts), 2)
        np.testing.assert_allclose(probs.sum(axis=1), np.ones(len(texts)), rtol=1e-5)
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
        labels = out[features.OUTPUT_LABEL].numpy()
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, probs.argmax(axis=1))
        assert out[features.OUTPUT_CLASS_NAME].numpy().tolist() == [
            CLASS_NAMES[i].encode() for i in labels
        ]
        np.testing.assert_array_equal(out[features.OUTPUT_POSITIVE].numpy(), probs[:, 1])

    np.testing.assert_array_equal(
        raw[features.OUTPUT_PROBABILITIES].numpy(),
        examples[features.OUTPUT_PROBABILITIES].numpy(),
    )

    # The length bucket TFMA slices by: every test text is shorter than 100 tokens.
    buckets = loaded.signatures[features.TRANSFORM_FEATURES](
        examples=tf.constant([_example(t) for t in texts])
    )[features.LENGTH_BUCKET_KEY]
    assert buckets.numpy().tolist() == [b"<100"] * len(texts)


def test_a_large_request_is_served_in_length_sorted_chunks_with_the_same_answers(tmp_path):
    text_spec = tf.io.FixedLenFeature([1], tf.string)
    transform_dir = str(tmp_path / "transform")
    _write_transform_fn(transform_dir, str(tmp_path / "tft_tmp"), text_spec)
    tf_transform_output = tft.TFTransformOutput(transform_dir)
    vocab_size = tf_transform_output.vocabulary_size_by_name(features.VOCAB_NAME)
    model = build_model(_params(vocab_total=features.ID_OFFSET + vocab_size + 1))
    sigs = signatures.make_serving_signatures(model, tf_transform_output, CLASS_NAMES)
    rng = np.random.default_rng(3)
    words = ["great", "dull", "plot", "fun", "cast", "movie", "unknown"]
    # More than two chunks, lengths from 0 to past MAX_LEN, in no particular order.
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(0, MAX_LEN + 5, 150)]
    assert len(texts) > 2 * signatures.SERVING_CHUNK
    transformed = tf_transform_output.transform_raw_features(
        {features.TEXT_KEY: tf.constant([[t] for t in texts])}
    )
    expected = model(transformed[features.TOKENS_KEY], training=False).numpy()
    served = sigs[features.SERVING_RAW](text=tf.constant(texts))
    np.testing.assert_allclose(
        served[features.OUTPUT_PROBABILITIES].numpy(), expected, rtol=1e-5, atol=1e-6
    )
    empty = sigs[features.SERVING_RAW](text=tf.constant([], tf.string))
    assert empty[features.OUTPUT_PROBABILITIES].shape == (0, 2)


def test_length_buckets_have_exact_boundaries():
    counts = tf.constant([0, 99, 100, 199, 200, 399, 400, 5000], tf.int64)
    names = signatures.length_bucket(counts, (100, 200, 400)).numpy().tolist()
    assert names == [
        b"<100",
        b"<100",
        b"100-199",
        b"100-199",
        b"200-399",
        b"200-399",
        b">=400",
        b">=400",
    ]
    assert signatures.length_bucket_names((10,)) == ["<10", ">=10"]
