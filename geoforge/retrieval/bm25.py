"""Okapi BM25 over caption words, as ``rank_bm25.BM25Okapi`` scores it, in arrays.

``rank_bm25`` keeps one Python dict per document and scores a query by visiting every
document for every query word, which is right for a shard's thousand captions and too slow
for a corpus of millions. :class:`Postings` holds the same numbers as arrays (one posting list
per word: the documents that contain it and their BM25 weight), so a query touches only the
postings of its own words. The arithmetic is ``rank_bm25``'s, operation for operation, so the
scores are bit-identical to ``BM25Okapi(corpus).get_scores(query)``.

Source: Robertson & Zaragoza, *The Probabilistic Relevance Framework: BM25 and Beyond* (2009),
with ``rank_bm25``'s IDF floor (``epsilon`` times the mean IDF for words in more than half the
documents; Trotman et al. 2014) and defaults ``k1 = 1.5``, ``b = 0.75``, ``epsilon = 0.25``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")

#: rank_bm25's BM25Okapi defaults.
K1, B, EPSILON = 1.5, 0.75, 0.25

#: The word an empty caption is indexed as (the retrieval plugin does the same), so its
#: length is 1 and no division by zero happens.
EMPTY = "∅"


def tokens(text: str) -> list[str]:
    """Lower-case words, numbers and symbols (``∥``, ``⊥``, ``°``) of a caption."""
    return [t.lower() for t in _WORD.findall(text)]


def idf_table(df: np.ndarray, n_docs: int, epsilon: float = EPSILON) -> np.ndarray:
    """BM25Okapi's IDF per word: ``log(N - df + 0.5) - log(df + 0.5)``, with a negative IDF
    (a word in more than half the documents) replaced by ``epsilon`` times the mean IDF.

    ``df``: (V,) int document frequencies, in the order the words first occur in the corpus
    (the order of ``rank_bm25``'s sum, so the mean is bit-identical). Returns (V,) float64.
    """
    idf = [math.log(n_docs - int(f) + 0.5) - math.log(int(f) + 0.5) for f in df]
    mean = 0.0
    for x in idf:  # a Python sum in first-occurrence order, as rank_bm25 does
        mean += x
    eps = epsilon * (mean / len(idf)) if idf else 0.0
    return np.array([eps if x < 0 else x for x in idf], dtype=np.float64)


def weights(
    tf: np.ndarray, doc_len: np.ndarray, idf: np.ndarray, avgdl: float, k1: float = K1, b: float = B
) -> np.ndarray:
    """BM25 weight of a word in a document: ``idf · tf (k1 + 1) / (tf + k1 (1 − b + b · dl / avgdl))``.

    ``tf``: (P,) int term frequencies; ``doc_len``: (P,) int lengths of their documents;
    ``idf``: (P,) float64 IDF of their words. Returns (P,) float64, computed in
    ``rank_bm25.BM25Okapi.get_scores``'s order of operations.
    """
    return idf * (tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl)))


@dataclass(frozen=True)
class Postings:
    """BM25 posting lists: word ``t``'s documents are ``doc[indptr[t]:indptr[t + 1]]``
    (int32, ascending) with weights ``weight[...]`` (float64, :func:`weights`).

    ``vocab`` maps each word to its id ``t``; ``n_docs`` is the number of documents.
    """

    vocab: dict[str, int]
    indptr: np.ndarray
    doc: np.ndarray
    weight: np.ndarray
    n_docs: int

    def query_ids(self, text: str) -> list[int]:
        """The word ids of ``text``'s tokens, in order and with repeats (``rank_bm25`` adds a
        repeated query word once per occurrence); words not in the corpus score 0 and are left out."""
        return [t for w in tokens(text) if (t := self.vocab.get(w)) is not None]

    def scores(self, text: str) -> np.ndarray:
        """(n_docs,) float64 BM25 score of every document for the query ``text``,
        bit-identical to ``BM25Okapi(corpus).get_scores(tokens(text))``."""
        out = np.zeros(self.n_docs, dtype=np.float64)
        for t in self.query_ids(text):
            lo, hi = self.indptr[t], self.indptr[t + 1]
            out[self.doc[lo:hi]] += self.weight[lo:hi]
        return out

    def scores_of(self, text: str, docs: np.ndarray) -> np.ndarray:
        """BM25 scores of the documents ``docs`` ((M,) int, any order) only: the same values as
        ``scores(text)[docs]``, found by binary search in each query word's posting list."""
        out = np.zeros(len(docs), dtype=np.float64)
        for t in self.query_ids(text):
            lo, hi = self.indptr[t], self.indptr[t + 1]
            posting = self.doc[lo:hi]
            at = np.searchsorted(posting, docs)
            found = at < len(posting)
            found[found] = posting[at[found]] == docs[found]
            out[found] += self.weight[lo:hi][at[found]]
        return out
