"""WordVectorsGen's maths: exact co-occurrence counts, PPMI + SVD vectors."""

import numpy as np
from scipy import sparse

from components.word_vectors import cooccurrence, ppmi_svd_vectors


def test_cooccurrence_counts_are_exact_and_do_not_cross_documents():
    docs = [np.array([1, 2, 3]), np.array([3, 1])]
    counts = cooccurrence(docs, size=5, window=2).toarray()
    expected = np.zeros((5, 5))
    # doc 1: (1,2) at distance 1, (2,3) at 1, (1,3) at 2 -> weight 1/2; doc 2: (3,1) at 1.
    for a, b, w in [(1, 2, 1.0), (2, 3, 1.0), (1, 3, 0.5), (3, 1, 1.0)]:
        expected[a, b] += w
        expected[b, a] += w
    np.testing.assert_allclose(counts, expected)
    assert counts[0].sum() == 0 and counts[:, 0].sum() == 0  # padding id never counted


def test_vectors_put_words_with_shared_contexts_together():
    # Ids 1 and 2 ("good", "great") share contexts 5/6; ids 3 and 4 share contexts 7/8.
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(300):
        docs.append(np.array([5, rng.choice([1, 2]), 6]))
        docs.append(np.array([7, rng.choice([3, 4]), 8]))
    vectors = ppmi_svd_vectors(cooccurrence(docs, size=9, window=1), dimension=4, seed=0)
    assert vectors.shape == (9, 4) and vectors.dtype == np.float32
    assert np.all(vectors[0] == 0.0)  # padding row

    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert cosine(vectors[1], vectors[2]) > 0.9
    assert cosine(vectors[1], vectors[3]) < 0.5


def test_dimension_larger_than_vocabulary_is_padded():
    counts = sparse.csr_matrix(np.array([[0, 0, 0], [0, 0, 2.0], [0, 2.0, 0]]))
    vectors = ppmi_svd_vectors(counts, dimension=8)
    assert vectors.shape == (3, 8)
