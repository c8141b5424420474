"""Tests of ``components.preprocessing``: the tf.Transform ``preprocessing_fn`` (run through
tf.Transform's own Beam test harness) and the plain-TF text cleaning/tokenisation helpers."""

from __future__ import annotations

import functools

import pytest
import tensorflow as tf
from tensorflow_transform.beam import tft_unit
from tensorflow_transform.tf_metadata import dataset_metadata

from components import features, preprocessing

MAX_LEN = 6

# Sentences written for this test. After cleaning they tokenise as:
#   0: the movie was great ! great fun .   (8 tokens: "<br />" removed, "GREAT"/"Great" lowered)
#   1: the plot was dull .                 (5 tokens)
#   2: (empty)                             (0 tokens)
#   3: great cast !                        (3 tokens)
SENTENCES = [
    "The movie was GREAT!<br />Great fun.",
    "The plot was dull.",
    "",
    "Great cast!",
]
LABELS = [1, 0, 0, 1]

# Token frequencies: great 3; the, was, "!", "." 2 each; movie, fun, plot, dull, cast 1 each.
# tf.Transform orders the vocabulary by descending frequency, ties broken by the token's bytes
# in descending order: among the count-2 tokens "was" (0x77) > "the" (0x74) > "." (0x2e) >
# "!" (0x21). With vocab_size (top_k) = 5 the five count-1 tokens are cut, so:
EXPECTED_VOCAB = [b"great", b"was", b"the", b".", b"!"]
# Ids are the vocabulary position + 1 (0 is padding); the single OOV bucket is 5 + 1 = 6.
GREAT, WAS, THE, DOT, BANG = 1, 2, 3, 4, 5
OOV = len(EXPECTED_VOCAB) + 1
PAD = 0

EXPECTED_ROWS = [
    # 8 tokens truncated to the first 6: "fun ." dropped; token_count keeps the true 8.
    {"tokens": [THE, OOV, WAS, GREAT, BANG, GREAT], "token_count": 8},
    # 5 tokens, one padding id at the end; "plot" and "dull" are OOV.
    {"tokens": [THE, OOV, WAS, OOV, DOT, PAD], "token_count": 5},
    # Empty review: all padding.
    {"tokens": [PAD] * MAX_LEN, "token_count": 0},
    {"tokens": [GREAT, OOV, BANG, PAD, PAD, PAD], "token_count": 3},
]


# The same rows with the 8-token review cut to its end (tail) or to its first quarter of MAX_LEN
# (6 // 4 = 1 token) and its last 5 tokens (head_tail); shorter reviews are unchanged.
EXPECTED_TAIL_ROWS = [
    {"tokens": [WAS, GREAT, BANG, GREAT, OOV, DOT], "token_count": 8},
    *EXPECTED_ROWS[1:],
]
EXPECTED_HEAD_TAIL_ROWS = [
    {"tokens": [THE, GREAT, BANG, GREAT, OOV, DOT], "token_count": 8},
    *EXPECTED_ROWS[1:],
]


def _input_data():
    return [
        {features.TEXT_KEY: [text], features.LABEL_KEY: [label]}
        for text, label in zip(SENTENCES, LABELS, strict=True)
    ]


def _expected_data(rows=EXPECTED_ROWS):
    return [{**row, "label": label} for row, label in zip(rows, LABELS, strict=True)]


def _fixed_len_metadata():
    return dataset_metadata.DatasetMetadata.from_feature_spec(
        {
            features.TEXT_KEY: tf.io.FixedLenFeature([1], tf.string),
            features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        }
    )


def _preprocessing_fn(**overrides):
    """preprocessing_fn with the settings EXPECTED_VOCAB and EXPECTED_ROWS were worked out for
    (MAX_LEN tokens, the 5 most frequent tokens, 1 OOV bucket), changed by ``overrides``."""
    custom_config = dict(
        max_sequence_length=MAX_LEN, vocab_size=5, num_oov_buckets=1, frequency_threshold=1
    )
    return functools.partial(
        preprocessing.preprocessing_fn, custom_config={**custom_config, **overrides}
    )


class PreprocessingFnTest(tft_unit.TransformTestCase):
    # tf.test.TestCase.test_session is a deprecated helper, not a test: keep pytest off it.
    test_session = None

    def test_fixed_len_text_exact_outputs(self):
        expected_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
            {
                features.TOKENS_KEY: tf.io.FixedLenFeature([MAX_LEN], tf.int64),
                features.TOKEN_COUNT_KEY: tf.io.FixedLenFeature([], tf.int64),
                features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            }
        )
        self.assertAnalyzeAndTransformResults(
            _input_data(),
            _fixed_len_metadata(),
            _preprocessing_fn(),
            expected_data=_expected_data(),
            expected_metadata=expected_metadata,
            expected_vocab_file_contents={features.VOCAB_NAME: EXPECTED_VOCAB},
        )

    def test_frequency_threshold_cuts_rare_tokens(self):
        # A large vocab_size but frequency_threshold 2 drops exactly the count-1 tokens, so
        # the vocabulary, ids and OOV id are the same as with top_k = 5 above.
        self.assertAnalyzeAndTransformResults(
            _input_data(),
            _fixed_len_metadata(),
            _preprocessing_fn(vocab_size=1000, frequency_threshold=2),
            expected_data=_expected_data(),
            expected_vocab_file_contents={features.VOCAB_NAME: EXPECTED_VOCAB},
        )

    def _assert_truncation(self, truncation, expected_rows=EXPECTED_ROWS):
        # The vocabulary is still computed over every token, only the kept ids change.
        self.assertAnalyzeAndTransformResults(
            _input_data(),
            _fixed_len_metadata(),
            _preprocessing_fn(truncation=truncation),
            expected_data=_expected_data(expected_rows),
            expected_vocab_file_contents={features.VOCAB_NAME: EXPECTED_VOCAB},
        )

    def test_explicit_head_truncation_matches_the_default(self):
        self._assert_truncation("head")

    def test_tail_truncation_keeps_the_last_tokens(self):
        self._assert_truncation("tail", EXPECTED_TAIL_ROWS)

    def test_head_tail_truncation_keeps_first_quarter_and_the_end(self):
        self._assert_truncation("head_tail", EXPECTED_HEAD_TAIL_ROWS)

    def test_var_len_text_same_tokens(self):
        # SchemaGen infers the raw text column as a VarLenFeature: same tokens expected. A
        # missing text value (no entry at all) is treated like the empty string.
        input_data = [
            {features.TEXT_KEY: [text] if text else [], features.LABEL_KEY: [label]}
            for text, label in zip(SENTENCES, LABELS, strict=True)
        ]
        input_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
            {
                features.TEXT_KEY: tf.io.VarLenFeature(tf.string),
                features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
            }
        )
        self.assertAnalyzeAndTransformResults(
            input_data,
            input_metadata,
            _preprocessing_fn(),
            expected_data=_expected_data(),
            expected_vocab_file_contents={features.VOCAB_NAME: EXPECTED_VOCAB},
        )


def test_truncate_rows_longer_shorter_and_empty():
    ids = tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3], []], dtype=tf.int64)
    cut = {t: preprocessing.truncate(ids, 8, t).to_list() for t in preprocessing.TRUNCATIONS}
    assert cut["head"] == [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3], []]
    assert cut["tail"] == [[2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3], []]
    assert cut["head_tail"] == [[1, 2, 4, 5, 6, 7, 8, 9], [1, 2, 3], []]  # 8 // 4 = 2 first


def test_truncate_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown truncation 'middle'"):
        preprocessing.truncate(tf.ragged.constant([[1]], dtype=tf.int64), 1, "middle")


def _tokens(text: str) -> list[str]:
    return [t.decode("utf-8") for t in preprocessing.tokenize(tf.constant([text]))[0].numpy()]


def test_clean_text_strips_html_lowercases_and_separates_punctuation():
    cleaned = preprocessing.clean_text(tf.constant(["Loved IT!<br /><br />Really."]))
    assert cleaned.numpy()[0].decode("utf-8").split() == ["loved", "it", "!", "really", "."]


def test_tokenize_lowercases_non_ascii_letters():
    assert _tokens("CAFÉ ÉTÉ Ünïcödé") == ["café", "été", "ünïcödé"]


def test_tokenize_makes_emoji_a_token():
    assert _tokens("great😀movie 👍") == ["great", "😀", "movie", "👍"]


def test_tokenize_keeps_hebrew_and_arabic():
    assert _tokens("סרט מצוין!") == ["סרט", "מצוין", "!"]
    # The Arabic question mark is punctuation and becomes a token of its own.
    assert _tokens("فيلم رائع؟") == ["فيلم", "رائع", "؟"]


def test_tokenize_empty_and_whitespace_only():
    tokens = preprocessing.tokenize(tf.constant(["", "   ", "<br />"]))
    assert tokens.row_lengths().numpy().tolist() == [0, 0, 0]
