"""WordVectorsGen: word vectors pre-computed inside the pipeline (PPMI + SVD)."""

from components.word_vectors.component import (
    VECTORS_FILE,
    WordVectorsGen,
    cooccurrence,
    ppmi_svd_vectors,
)

__all__ = ["VECTORS_FILE", "WordVectorsGen", "cooccurrence", "ppmi_svd_vectors"]
