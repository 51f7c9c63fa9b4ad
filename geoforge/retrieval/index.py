"""The corpus pool on disk: every positive caption of a corpus, indexed once, queried by each
positive for its retrieval candidates.

A directory (e.g. ``OUT/retrieval/``) of flat files that every worker process memory-maps:

- ``index.json``: format, counts, BM25 parameters, the mode (``exact`` or ``approximate``)
  and, when approximate, the projection's and faiss's parameters;
- ``vocab.json``: the words, by id (first occurrence in the corpus);
- ``keys.npy`` (N,) bytes; ``text.bin`` with ``text_offsets.npy`` (N + 1,) int64: the captions;
  ``claims.bin`` with ``claims_offsets.npy``: each caption's claims, JSON ``[[kind, *args], ...]``;
- ``postings_indptr.npy`` (V + 1,) int64, ``postings_doc.npy`` (P,) int32,
  ``postings_weight.npy`` (P,) float64: BM25 posting lists (:class:`~geoforge.retrieval.bm25.Postings`);
- approximate only: ``projection.npy`` (dim, F) float32, ``projection_column.npy`` (V,) int32
  and ``ivf.faiss`` (:mod:`geoforge.retrieval.ann`).

Claims are stored rather than read back from the text at query time: reading 64 captions
back cost ~75% of a query's time.
"""

from __future__ import annotations

import json
import os
import shutil
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from geoforge.caption import Claim, read_caption
from geoforge.caption.read import CaptionReadError
from geoforge.errors import UsageError
from geoforge.perturb import PoolEntry
from geoforge.retrieval import ann
from geoforge.retrieval.ann import RetrievalIndexError
from geoforge.retrieval.bm25 import EMPTY, EPSILON, K1, B, Postings, idf_table, tokens, weights

FORMAT = "geoforge-retrieval/1"
#: Pools of more captions than this also get an approximate (faiss) index; smaller ones are
#: searched exactly. An exact query grows linearly with the pool (measured 18 ms at 100k, 58 ms
#: at 300k captions on a loaded 2-core machine; the approximate one 12 and 40 ms), while the
#: approximate index doubles the bytes on disk (docs/retrieval.md).
APPROXIMATE_ABOVE = 100_000
#: The approximate search gathers RERANK × (n + 1) candidates, re-scored exactly.
RERANK = 4
#: Captions tokenised per block before their term counts are taken.
_BLOCK = 65_536
_MADE = "expected a directory made by geoforge.retrieval.build_index"
_ARRAYS = {
    "keys.npy": None,
    "text_offsets.npy": np.int64,
    "claims_offsets.npy": np.int64,
    "postings_indptr.npy": np.int64,
    "postings_doc.npy": np.int32,
    "postings_weight.npy": np.float64,
}


def _counts(ids: array, lens: array, first_doc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc, term, tf) int32 arrays, doc-major then term ascending, of a block of captions given
    as concatenated word ids and per-caption lengths."""
    t = np.frombuffer(ids, dtype=np.int32).astype(np.int64)
    n = np.frombuffer(lens, dtype=np.int32)
    d = np.repeat(np.arange(first_doc, first_doc + len(n), dtype=np.int64), n)
    pairs, tf = np.unique((d << 32) | t, return_counts=True)
    return (pairs >> 32).astype(np.int32), (pairs & 0xFFFFFFFF).astype(np.int32), tf.astype(np.int32)


def build_index(
    entries: Iterable[PoolEntry | tuple[str, str]],
    out_dir: str | os.PathLike[str],
    *,
    approximate_above: int = APPROXIMATE_ABOVE,
    overwrite: bool = False,
) -> Path:
    """Index the captions ``entries`` — every positive of a corpus, in corpus order, each a
    :class:`~geoforge.perturb.PoolEntry` (:func:`geoforge.negatives.pool_entry` of a sample: its
    claims are stored as they are) or a ``(key, caption text)`` pair (its claims are read back
    from the text, about 0.1 ms a caption) — into the directory ``out_dir``; returns it as a Path.

    ``entries`` is read once: texts go straight to disk, and what is kept in memory is numpy
    arrays (word ids, then BM25 postings: about 12 bytes per distinct word of each caption) plus
    the keys. The index is written to a temporary sibling directory, then renamed, so no half
    index is ever under ``out_dir``. Pools of more than ``approximate_above`` captions also get
    the faiss index of :mod:`geoforge.retrieval.ann`. The same entries give the same bytes.

    Raises UsageError if ``out_dir`` exists and ``overwrite`` is false; RetrievalIndexError for
    no entries, a duplicate key, a text that is not a geoforge caption, or a pool above
    ``approximate_above`` without faiss installed.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise UsageError(f"{out}: a retrieval index is already there; pass --overwrite to replace it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write(entries, tmp, approximate_above)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _key_text_claims(entry: PoolEntry | tuple[str, str]) -> tuple[str, str, tuple[Claim, ...]]:
    """An entry's key, text and claims: a PoolEntry's own, or read back from a ``(key, text)``'s
    text (:func:`geoforge.caption.read_caption`; RetrievalIndexError naming the key if it is not
    a geoforge caption)."""
    if isinstance(entry, PoolEntry):
        return entry.key, entry.text, entry.claims
    key, text = entry
    try:
        return str(key), text, tuple(read_caption(text).claims)
    except CaptionReadError as e:
        raise RetrievalIndexError(f"caption {key}: not a geoforge caption ({e})") from None


def _write(entries: Iterable[PoolEntry | tuple[str, str]], tmp: Path, approximate_above: int) -> None:
    vocab: dict[str, int] = {}
    keys: list[bytes] = []
    offsets = {"text": array("q", [0]), "claims": array("q", [0])}
    ids, lens = array("i"), array("i")
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    doc_len = array("i")
    first = 0
    with open(tmp / "text.bin", "wb") as text_file, open(tmp / "claims.bin", "wb") as claims_file:
        for entry in entries:
            key, text, claims = _key_text_claims(entry)
            stated = json.dumps([c.to_json() for c in claims], ensure_ascii=False).encode()
            for name, f, raw in (("text", text_file, text.encode()), ("claims", claims_file, stated)):
                f.write(raw)
                offsets[name].append(offsets[name][-1] + len(raw))
            keys.append(key.encode())
            words = tokens(text) or [EMPTY]
            ids.extend(vocab.setdefault(w, len(vocab)) for w in words)
            lens.append(len(words))
            if len(lens) == _BLOCK:
                blocks.append(_counts(ids, lens, first))
                first += len(lens)
                doc_len.extend(lens)
                ids, lens = array("i"), array("i")
    if lens:
        blocks.append(_counts(ids, lens, first))
        doc_len.extend(lens)
    n = len(keys)
    if not n:
        raise RetrievalIndexError(f"{tmp.name}: no captions to index (expected one (key, text) per positive)")
    key_array = np.array(keys)
    unique, count = np.unique(key_array, return_counts=True)
    if (count > 1).any():
        twice = unique[count > 1][0].decode()
        raise RetrievalIndexError(f"duplicate key {twice!r}: each positive is indexed once")
    del keys, unique, count
    doc, term, tf = (np.concatenate(x) for x in zip(*blocks))
    del blocks
    lengths = np.frombuffer(doc_len, dtype=np.int32)
    df = np.bincount(term, minlength=len(vocab))
    avgdl = int(lengths.sum(dtype=np.int64)) / n
    idf = idf_table(df, n)
    weight = weights(tf, lengths[doc], idf[term], avgdl)
    del tf
    order = np.argsort(term, kind="stable")  # term-major, documents ascending within each word
    np.save(tmp / "keys.npy", key_array)
    for name, at in offsets.items():
        np.save(tmp / f"{name}_offsets.npy", np.frombuffer(at, dtype=np.int64))
    np.save(tmp / "postings_indptr.npy", np.r_[0, np.cumsum(df)].astype(np.int64))
    np.save(tmp / "postings_doc.npy", doc[order])
    np.save(tmp / "postings_weight.npy", weight[order])
    del order
    (tmp / "vocab.json").write_text(json.dumps(list(vocab), ensure_ascii=False), encoding="utf-8")
    meta: dict[str, object] = {
        "format": FORMAT,
        "captions": n,
        "words": len(vocab),
        "postings": len(doc),
        "bm25": {"k1": K1, "b": B, "epsilon": EPSILON, "avgdl": avgdl},
        "mode": "exact",
    }
    if n > approximate_above:
        column, p = ann.projection(doc, term, weight, df, n, ann.DIM, ann.TERMS)
        np.save(tmp / "projection.npy", p)
        np.save(tmp / "projection_column.npy", column)
        nlist = ann.build_ivf(doc, term, weight, column, p, n, tmp / "ivf.faiss")
        dim, terms = (int(x) for x in p.shape)
        meta.update(mode="approximate", dim=dim, terms=terms, nlist=nlist, nprobe=ann.nprobe_for(nlist))
    (tmp / "index.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


class PoolIndex:
    """A loaded corpus pool (see the module docstring), memory-mapped; use :func:`load_index`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = _read_json(path / "index.json")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RetrievalIndexError(f"{path / 'index.json'}: not a retrieval index (expected {FORMAT!r})")
        self.meta = meta
        arrays = {name: _read_npy(path / name, dtype) for name, dtype in _ARRAYS.items()}
        vocab = _read_json(path / "vocab.json")
        n = int(meta["captions"])
        for name in ("keys.npy", "text_offsets.npy", "claims_offsets.npy"):
            if len(arrays[name]) != n + name.endswith("offsets.npy"):
                raise RetrievalIndexError(f"{path / name}: does not hold {n} captions (index.json)")
        self.keys = arrays["keys.npy"]
        self.offsets, self.claim_offsets = arrays["text_offsets.npy"], arrays["claims_offsets.npy"]
        self.text = _read_bytes(path / "text.bin", int(self.offsets[-1]))
        self.claims = _read_bytes(path / "claims.bin", int(self.claim_offsets[-1]))
        self.postings = Postings(
            {w: i for i, w in enumerate(vocab)},
            arrays["postings_indptr.npy"],
            arrays["postings_doc.npy"],
            arrays["postings_weight.npy"],
            n,
        )
        self.ivf = None
        if meta.get("mode") == "approximate":
            faiss = ann.need_faiss()
            faiss.omp_set_num_threads(1)  # one query at a time per worker process
            self.projection = _read_npy(path / "projection.npy", np.float32)
            self.column = _read_npy(path / "projection_column.npy", np.int32)
            ivf_path = path / "ivf.faiss"
            if not ivf_path.is_file():
                raise RetrievalIndexError(f"{ivf_path}: missing (expected an approximate pool's faiss index)")
            # memory-mapped: the inverted lists stay in the page cache, shared by every worker
            self.ivf = faiss.read_index(str(ivf_path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            self.ivf.nprobe = int(meta["nprobe"])

    def __len__(self) -> int:
        return self.postings.n_docs

    def entry(self, i: int) -> PoolEntry:
        """Caption ``i`` (corpus order): its key, text and claims."""
        text = self.text[self.offsets[i] : self.offsets[i + 1]].tobytes().decode()
        raw = self.claims[self.claim_offsets[i] : self.claim_offsets[i + 1]].tobytes()
        claims = tuple(Claim(c[0], tuple(c[1:])) for c in json.loads(raw))
        return PoolEntry(self.keys[i].decode(), text, claims)

    def ranked(self, text: str, m: int) -> np.ndarray:
        """Up to ``m`` caption indices, BM25 score against ``text`` descending, ties in corpus
        order: all captions scored exactly, or (approximate mode) the faiss candidates re-scored."""
        if self.ivf is None:
            return _top(self.postings.scores(text), m)
        vec = ann.query_vector(self.postings.query_ids(text), self.column, self.projection)
        _, found = self.ivf.search(vec, min(m, len(self)))
        docs = found[0][found[0] >= 0].astype(np.int64)
        scores = self.postings.scores_of(text, docs)
        return docs[np.lexsort((docs, -scores))]

    def pool(self, key: str, text: str, n: int) -> tuple[PoolEntry, ...]:
        """The ``n`` captions most similar to ``text`` by BM25 (``rank_bm25``'s Okapi, IDF over
        the whole corpus), most similar first, leaving out ``key`` itself and captions without
        claims. Approximate mode searches ``RERANK × (n + 1)`` candidates and may return fewer
        than ``n`` if most of them are left out."""
        out: list[PoolEntry] = []
        for i in self._candidates(text, n):
            if self.keys[i].decode() == key:
                continue
            entry = self.entry(int(i))
            if entry.claims:
                out.append(entry)
                if len(out) == n:
                    break
        return tuple(out)

    def _candidates(self, text: str, n: int) -> Iterator[int]:
        if self.ivf is not None:
            yield from self.ranked(text, RERANK * (n + 1))
            return
        scores = self.postings.scores(text)
        m = n + 1
        done = 0
        while done < len(self):
            order = _top(scores, m)
            yield from order[done:]
            done, m = len(order), 2 * m


def _top(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` highest ``scores``, highest first, ties in index order (the order
    of ``numpy.argsort(-scores, kind="stable")[:m]``, without sorting everything)."""
    if m >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, m - 1)[:m]
    cut = scores[part].min()
    above = np.flatnonzero(scores > cut)
    chosen = np.r_[above, np.flatnonzero(scores == cut)[: m - len(above)]]
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RetrievalIndexError(f"{path}: missing ({_MADE})") from None
    except (OSError, ValueError) as e:
        raise RetrievalIndexError(f"{path}: unreadable ({e})") from None


def _read_bytes(path: Path, size: int) -> np.ndarray:
    """``path`` memory-mapped as (size,) uint8; raises RetrievalIndexError if it is missing or
    not ``size`` bytes long."""
    try:
        found = path.stat().st_size
    except OSError:
        raise RetrievalIndexError(f"{path}: missing ({_MADE})") from None
    if found != size:
        raise RetrievalIndexError(f"{path}: {found} bytes, expected {size} (its offsets file)")
    return np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)


def _read_npy(path: Path, dtype: type | None) -> np.ndarray:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise RetrievalIndexError(f"{path}: missing ({_MADE})") from None
    except (OSError, ValueError) as e:
        raise RetrievalIndexError(f"{path}: not a numpy array file ({e})") from None
    if dtype is not None and a.dtype != dtype:
        raise RetrievalIndexError(f"{path}: dtype {a.dtype}, expected {np.dtype(dtype)}")
    return a


_LOADED: dict[tuple[str, int], PoolIndex] = {}


def load_index(path: str | os.PathLike[str]) -> PoolIndex:
    """The corpus pool at ``path`` (a directory made by :func:`build_index`), memory-mapped and
    loaded once per process (again if its ``index.json`` changes). Raises RetrievalIndexError,
    one line naming the file, for a missing or malformed index, or an approximate one without
    faiss installed."""
    where = Path(path)
    if not where.is_dir():
        raise RetrievalIndexError(f"{where}: no retrieval index there ({_MADE})")
    try:
        stamp = (where / "index.json").stat().st_mtime_ns
    except OSError:
        stamp = -1
    cache = (str(where.resolve()), stamp)
    if cache not in _LOADED:
        _LOADED[cache] = PoolIndex(where)
    return _LOADED[cache]
