"""The approximate side of the corpus pool: BM25 vectors projected to a few dense dimensions
and searched with a faiss inverted-file index; the candidates it finds are then re-scored
with exact BM25 (:meth:`geoforge.retrieval.bm25.Postings.scores_of`).

The projection is latent semantic analysis of the BM25 document-word matrix ``W`` (N × V):
the top ``dim`` right singular vectors ``P`` (dim × V) of ``W``, found as the eigenvectors of
``WᵀW`` over the ``terms`` most frequent words (Deerwester et al. 1990). A document is
``P w_d`` and a query ``P q`` (``q``: its word counts), so their inner product is the rank-``dim``
approximation of the BM25 score ``q · w_d``. faiss's ``IndexIVFFlat`` with the inner-product
metric searches the ``nprobe`` nearest of ``nlist`` k-means cells (Jégou et al. 2011).

faiss is imported here only, on first use; without it :func:`need_faiss` raises a one-line
error naming the ``geoforge[retrieval]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geoforge.errors import GeoforgeError

if TYPE_CHECKING:
    from pathlib import Path

#: Dense dimensions of the projected vectors (float32: 4·DIM bytes per caption).
DIM = 128
#: Words the projection is learned over, the most frequent first; rarer words still count in
#: the exact re-scoring, not in the search for candidates.
TERMS = 2048
#: Fewest cells searched per query (see :func:`nprobe_for`).
NPROBE = 64
#: Documents per block when the Gram matrix and the vectors are computed.
_BLOCK = 8192


class RetrievalIndexError(GeoforgeError):
    """A retrieval index that is missing, unreadable, or not what the request needs."""


def need_faiss() -> Any:
    """The ``faiss`` module; raises RetrievalIndexError naming the extra if it is missing."""
    try:
        import faiss
    except ImportError as e:
        raise RetrievalIndexError(
            f"an approximate retrieval index needs faiss ({e}): pip install 'geoforge[retrieval]'"
        ) from None
    return faiss


def nlist_for(n_docs: int) -> int:
    """Inverted lists for ``n_docs`` vectors: ≈ √N, the faiss wiki's guideline for IVF
    ("Guidelines to choose an index": between 4√N and 16√N cells for millions; √N keeps each
    cell's k-means well trained from a sample of 64 points per cell)."""
    return max(1, round(n_docs**0.5))


def nprobe_for(nlist: int) -> int:
    """Cells searched per query: a quarter of the ``nlist`` cells, at least :data:`NPROBE` (all
    of them for pools up to 4,096 captions). Measured on 20,000 distinct captions (141 cells,
    200 queries), recall@64 against exact BM25 was 0.962 with 32 cells searched, 0.989 with 64,
    0.993 with all 141 (benchmarks/retrieval_index.py, docs/retrieval.md); it falls as the share
    of cells searched falls, so the share is kept from falling below a quarter."""
    return min(nlist, max(NPROBE, nlist // 4))


def _segments(doc: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """The slice of the doc-major arrays (``doc`` ascending) that holds documents ``lo..hi-1``."""
    return int(np.searchsorted(doc, lo)), int(np.searchsorted(doc, hi))


def projection(
    doc: np.ndarray, term: np.ndarray, weight: np.ndarray, df: np.ndarray, n_docs: int, dim: int, terms: int
) -> tuple[np.ndarray, np.ndarray]:
    """The LSA projection of a BM25 matrix given doc-major as ``(doc, term, weight)`` (P,)
    arrays (``doc`` ascending, int32; ``weight`` float64) and per-word document frequencies
    ``df`` (V,).

    Returns ``column`` (V,) int32, each word's column in the projection or −1 (not among the
    ``terms`` most frequent, ties by id), and ``P`` (dim', F) float32 with ``dim' = min(dim, F)``:
    the eigenvectors of ``WᵀW`` with the largest eigenvalues, largest first, each signed so that
    its largest-magnitude entry is positive (deterministic up to floating point).
    """
    chosen = np.argsort(-df, kind="stable")[: min(terms, len(df))]
    column = np.full(len(df), -1, dtype=np.int32)
    column[chosen] = np.arange(len(chosen), dtype=np.int32)
    f = len(chosen)
    gram = np.zeros(f * f, dtype=np.float64)
    for lo in range(0, n_docs, _BLOCK):
        a, b = _segments(doc, lo, lo + _BLOCK)
        d, c, w = doc[a:b], column[term[a:b]], weight[a:b]
        keep = c >= 0
        d, c, w = d[keep], c[keep], w[keep]
        if not len(d):
            continue
        starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        lens = np.diff(np.r_[starts, len(d)])
        seg = np.repeat(np.arange(len(starts)), lens)  # segment of each nonzero
        reps = lens[seg]  # each nonzero pairs with every nonzero of its document
        first = np.repeat(np.arange(len(d)), reps)
        offset = np.arange(len(first)) - np.repeat(np.cumsum(reps) - reps, reps)
        second = starts[seg][first] + offset
        gram += np.bincount(c[first].astype(np.int64) * f + c[second], w[first] * w[second], minlength=f * f)
    values, vectors = np.linalg.eigh(gram.reshape(f, f))
    top = vectors[:, np.argsort(-values, kind="stable")[: min(dim, f)]].T
    signs = np.sign(top[np.arange(len(top)), np.abs(top).argmax(axis=1)])
    return column, (top * signs[:, None]).astype(np.float32)


def vectors(
    doc: np.ndarray, term: np.ndarray, weight: np.ndarray, column: np.ndarray, p: np.ndarray, lo: int, hi: int
) -> np.ndarray:
    """(hi − lo, dim) float32 projected vectors ``P w_d`` of documents ``lo..hi-1``."""
    out = np.zeros((hi - lo, p.shape[0]), dtype=np.float32)
    a, b = _segments(doc, lo, hi)
    d, c, w = doc[a:b], column[term[a:b]], weight[a:b]
    keep = c >= 0
    d, c, w = d[keep], c[keep], w[keep]
    if len(d):
        starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        out[d[starts] - lo] = np.add.reduceat(p.T[c] * w[:, None].astype(np.float32), starts, axis=0)
    return out


def build_ivf(
    doc: np.ndarray,
    term: np.ndarray,
    weight: np.ndarray,
    column: np.ndarray,
    p: np.ndarray,
    n_docs: int,
    path: Path,
) -> int:
    """Train and fill a faiss ``IndexIVFFlat`` (inner product) with every document's projected
    vector and write it to ``path``. The k-means sample is every ``n_docs // (64·nlist)``-th
    document (at least 39 per cell, faiss's minimum), so the build is deterministic.
    Returns ``nlist``."""
    faiss = need_faiss()
    dim = p.shape[0]
    nlist = nlist_for(n_docs)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    step = max(1, n_docs // (64 * nlist))
    sample = np.concatenate(
        [
            vectors(doc, term, weight, column, p, lo, min(lo + _BLOCK, n_docs))[(-lo) % step :: step]
            for lo in range(0, n_docs, _BLOCK)
        ]
    )
    index.cp.seed = 1234
    index.train(np.ascontiguousarray(sample))
    for lo in range(0, n_docs, _BLOCK):
        index.add(vectors(doc, term, weight, column, p, lo, min(lo + _BLOCK, n_docs)))
    faiss.write_index(index, str(path))
    return nlist


def query_vector(ids: list[int], column: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(1, dim) float32 ``P q`` for a query given as word ids with repeats."""
    cols = [int(column[t]) for t in ids if column[t] >= 0]
    return p[:, cols].sum(axis=1, dtype=np.float32)[None, :]
