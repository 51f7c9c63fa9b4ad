"""Corpus-wide retrieval pools: a first pass indexes every positive caption of a corpus
(:func:`build_index`), then each positive draws its retrieval candidates from the whole corpus
(:meth:`PoolIndex.pool`) instead of its own shard.

Small pools are searched with exact BM25; large ones (more than :data:`APPROXIMATE_ABOVE`
captions) through a faiss index whose candidates are re-scored with exact BM25. See
docs/retrieval.md for the on-disk format, the recall measured against exact BM25 and the
memory per million captions.
"""

from geoforge.retrieval.ann import RetrievalIndexError
from geoforge.retrieval.bm25 import tokens
from geoforge.retrieval.index import APPROXIMATE_ABOVE, PoolIndex, build_index, load_index

__all__ = ["APPROXIMATE_ABOVE", "PoolIndex", "RetrievalIndexError", "build_index", "load_index", "tokens"]
