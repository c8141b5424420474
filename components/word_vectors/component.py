"""WordVectorsGen: pre-compute word vectors inside the pipeline (PPMI + truncated SVD).

Counts how often vocabulary tokens occur near each other (window, weighted 1/distance) in the
training split and, optionally, in a file of unlabelled texts (one per line; for IMDB the 50,000
``train/unsup`` reviews), turns the counts into positive pointwise mutual information and keeps
the top singular vectors (Levy, Goldberg & Dagan 2015: as good as word2vec at this size, and
deterministic). Test data never enters: only the ``train`` split is read.

Tokens come from the Transform graph itself, so the vectors use exactly the ids the model sees.
The output is a ``Model`` artifact holding ``Format-Serving/vectors.npy`` [vocab_total,
dimension] (the payload directory of a Model artifact); the Trainer
receives it as ``base_model`` and initialises its embedding from it.

(No ``from __future__ import annotations`` here: TFX parses the real type hints.)
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from scipy import sparse
from sklearn.utils.extmath import randomized_svd
from tfx import v1 as tfx
from tfx.utils import path_utils

from components import features
from components.signatures import raw_text_features

VECTORS_FILE = "vectors.npy"
_BATCH = 512
_TARGET_STD = 0.1  # scale of the vectors, close to what a trained embedding settles at


def train_token_ids(transformed_examples_uri: str) -> list[np.ndarray]:
    """Token ids (padding removed) of every review in the transformed ``train`` split."""
    pattern = os.path.join(transformed_examples_uri, "Split-train", "*")
    files = tf.io.gfile.glob(pattern)
    spec = {
        features.TOKENS_KEY: tf.io.VarLenFeature(tf.int64),
        features.TOKEN_COUNT_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH)
    docs = []
    for batch in dataset:
        parsed = tf.io.parse_example(batch, spec)
        dense = tf.sparse.to_dense(parsed[features.TOKENS_KEY]).numpy()
        docs.extend(row[row > 0] for row in dense)
    return docs


def text_token_ids(path: str, tf_transform_output: tft.TFTransformOutput) -> list[np.ndarray]:
    """Token ids of each line of ``path`` through the Transform graph."""
    raw_spec = tf_transform_output.raw_feature_spec()
    layer = tf_transform_output.transform_features_layer()
    docs: list[np.ndarray] = []
    with tf.io.gfile.GFile(path, "r") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    for start in range(0, len(lines), _BATCH):
        text = tf.constant(lines[start : start + _BATCH])
        tokens = layer(raw_text_features(text, raw_spec))[features.TOKENS_KEY].numpy()
        docs.extend(row[row > 0] for row in tokens)
    return docs


def cooccurrence(docs: list[np.ndarray], size: int, window: int) -> sparse.csr_matrix:
    """Symmetric co-occurrence counts within ``window`` tokens, weighted 1/distance."""
    gap = np.zeros(window, dtype=np.int64)  # id 0 between reviews: no pair crosses a boundary
    flat = np.concatenate([part for doc in docs for part in (doc.astype(np.int64), gap)])
    counts = sparse.csr_matrix((size, size), dtype=np.float64)
    for distance in range(1, window + 1):
        left, right = flat[:-distance], flat[distance:]
        keep = (left > 0) & (right > 0)
        rows, cols = left[keep], right[keep]
        weights = np.full(rows.shape, 1.0 / distance)
        pairs = sparse.coo_matrix((weights, (rows, cols)), shape=(size, size)).tocsr()
        counts = counts + pairs + pairs.T
    return counts


def ppmi_svd_vectors(
    counts: sparse.csr_matrix, dimension: int, seed: int = 0, smoothing: float = 0.75
) -> np.ndarray:
    """Rows of U * sqrt(S) of the positive PMI matrix (context counts smoothed by ^0.75)."""
    counts = counts.tocoo()
    total = counts.sum()
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    context = np.asarray(counts.sum(axis=0)).ravel() ** smoothing
    context_p = context / context.sum()
    with np.errstate(divide="ignore"):
        pmi = (
            np.log(counts.data / total)
            - np.log(row_sums[counts.row] / total)
            - np.log(context_p[counts.col])
        )
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)
    k = min(dimension, min(ppmi.shape) - 1)
    u, s, _ = randomized_svd(ppmi, n_components=k, n_iter=5, random_state=seed)
    vectors = u * np.sqrt(s)
    if k < dimension:
        vectors = np.pad(vectors, ((0, 0), (0, dimension - k)))
    std = vectors[1:].std()
    if std > 0:
        vectors *= _TARGET_STD / std
    vectors[features.PADDING_ID] = 0.0
    return vectors.astype(np.float32)


@tfx.dsl.components.component
def WordVectorsGen(
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph],
    transformed_examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    word_vectors: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    dimension: tfx.dsl.components.Parameter[int],
    num_oov_buckets: tfx.dsl.components.Parameter[int],
    unlabelled_text: tfx.dsl.components.Parameter[str] = "",
    window: tfx.dsl.components.Parameter[int] = 5,
    seed: tfx.dsl.components.Parameter[int] = 0,
) -> None:
    """Write ``vectors.npy`` [padding + vocabulary + OOV buckets, dimension]."""
    tf_transform_output = tft.TFTransformOutput(transform_graph.uri)
    size = (
        features.ID_OFFSET
        + tf_transform_output.vocabulary_size_by_name(features.VOCAB_NAME)
        + num_oov_buckets
    )
    docs = train_token_ids(transformed_examples.uri)
    train_docs = len(docs)
    if unlabelled_text:
        docs += text_token_ids(unlabelled_text, tf_transform_output)
    logging.info(
        "word vectors from %d train and %d unlabelled texts", train_docs, len(docs) - train_docs
    )
    vectors = ppmi_svd_vectors(cooccurrence(docs, size, window), dimension, seed)
    # Where a Model artifact keeps its payload: the Trainer gets this directory as base_model.
    out_dir = path_utils.serving_model_dir(word_vectors.uri)
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, VECTORS_FILE), "wb") as handle:
        np.save(handle, vectors)
    word_vectors.set_int_custom_property("documents", len(docs))
    word_vectors.set_int_custom_property("dimension", dimension)
