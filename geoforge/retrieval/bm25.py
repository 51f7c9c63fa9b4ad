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


class PoolBM25:
    """``BM25Okapi`` over a small pool of tokenised captions (one shard's), built once and
    queried with any one document left out: ``PoolBM25(docs).scores(query, leave_out=j)`` is
    bit-identical to ``BM25Okapi(docs[:j] + docs[j + 1:]).get_scores(query)``.

    The retrieval plugin ranks a positive's shard against its caption without the positive
    itself; building ``BM25Okapi`` per positive cost O(shard) (23.6 ms per positive in a
    1,000-caption shard, against 8.0 ms in a 50-caption one). Leaving one document out changes
    only the document count, the mean length, the document frequencies of its words and, where
    it held a word's first occurrence, the order in which ``rank_bm25`` sums the IDFs (their
    mean sets the floor :func:`idf_table` gives common words), so each is recomputed from
    per-word postings in O(vocabulary + query × pool).

    ``docs``: each document's tokens (:func:`tokens`), none empty (the plugin indexes an empty
    caption as ``[EMPTY]``). Raises ValueError for an empty pool or document.
    """

    def __init__(self, docs: list[list[str]]) -> None:
        if not docs or not all(docs):
            raise ValueError("a BM25 pool needs at least one document and no empty document")
        vocab: dict[str, int] = {}
        postings: list[list[tuple[int, int]]] = []  # per word: (doc, tf), documents ascending
        firsts: list[list[int]] = []  # per word: where each of its documents first uses it
        #: Per document: ``(word, k)`` for each word it holds, ``k`` its rank among the
        #: documents holding that word.
        self._words: list[list[tuple[int, int]]] = []
        longest = max(len(d) for d in docs)
        for i, doc in enumerate(docs):
            counts: dict[int, int] = {}
            for at, word in enumerate(doc):
                t = vocab.setdefault(word, len(vocab))
                if t == len(postings):
                    postings.append([])
                    firsts.append([])
                if t not in counts:
                    firsts[t].append(i * longest + at)  # rank_bm25 orders its words by this key
                counts[t] = counts.get(t, 0) + 1
            for t, tf in counts.items():
                postings[t].append((i, tf))
            self._words.append([(t, len(postings[t]) - 1) for t in counts])
        self.vocab = vocab
        self.n_docs = len(docs)
        #: (n_docs,) int64 document lengths in tokens.
        self.doc_len = np.array([len(d) for d in docs], dtype=np.int64)
        self._total = int(self.doc_len.sum())
        self._tf = [np.array(p, dtype=np.int64) for p in postings]
        self._df = np.array([len(p) for p in postings], dtype=np.int64)
        #: (V,) int64 first and second use of each word (-1: no second document holds it).
        self._first = np.array([f[0] for f in firsts], dtype=np.int64)
        self._second = np.array([f[1] if len(f) > 1 else -1 for f in firsts], dtype=np.int64)

    def _idf(self, leave_out: int | None) -> tuple[np.ndarray, int]:
        """(V,) float64 IDF of every word (``nan`` for a word only the left-out document
        holds), summed for the floor in ``rank_bm25``'s order, and the document count, without
        ``leave_out``."""
        df, first, n = self._df, self._first, self.n_docs
        if leave_out is not None:
            held = self._words[leave_out]
            df, first, n = df.copy(), first.copy(), n - 1
            for t, k in held:
                df[t] -= 1
                if k == 0:  # its first use moves to the next document holding it, if any
                    first[t] = self._second[t]
        kept = np.flatnonzero(df > 0)
        order = kept[np.argsort(first[kept], kind="stable")]
        idf = np.full(len(df), np.nan)
        if len(order):
            idf[order] = idf_table(df[order], n)
        return idf, n

    def scores(self, query: list[str], leave_out: int | None = None) -> np.ndarray:
        """(n_docs - 1,) float64 scores of the other documents, in pool order, without
        ``leave_out``; (n_docs,) with ``None``. A repeated query word counts once per
        occurrence; an unknown one adds nothing (as ``rank_bm25`` does). Raises IndexError
        for a ``leave_out`` outside the pool, TypeError for one that is not an int (a bool
        or a float, say)."""
        if leave_out is not None and (
            isinstance(leave_out, bool) or not isinstance(leave_out, (int, np.integer))
        ):
            raise TypeError(f"leave_out must be a document index (int), not {leave_out!r}")
        if leave_out is not None and not 0 <= leave_out < self.n_docs:
            raise IndexError(f"document {leave_out} is not in a pool of {self.n_docs}")
        idf, n = self._idf(leave_out)
        left = 0 if leave_out is None else int(self.doc_len[leave_out])
        avgdl = (self._total - left) / n if n else 0.0
        out = np.zeros(self.n_docs, dtype=np.float64)
        for word in query:
            t = self.vocab.get(word)
            if t is None or np.isnan(idf[t]):
                continue
            tf = np.zeros(self.n_docs, dtype=np.int64)
            tf[self._tf[t][:, 0]] = self._tf[t][:, 1]  # rank_bm25's dense term frequencies
            out += weights(tf, self.doc_len, idf[t], avgdl)
        return out if leave_out is None else np.delete(out, leave_out)
