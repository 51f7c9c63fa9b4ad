"""``retrieval``: the captions of other samples of the run most similar to the positive's.

Similarity is BM25 over caption words (``rank_bm25``'s ``BM25Okapi`` scores, computed once per
pool by :class:`~geoforge.retrieval.bm25.PoolBM25` with the positive left out), the offline lexical
option the MMGeoLM set-up allows for retrieval negatives. The pool is the other samples of the
same shard, or, with a corpus-wide index (``NegativeConfig.retrieval_pool``), the captions of
the whole corpus nearest to the positive (:mod:`geoforge.retrieval`); either way retrieval stays
deterministic under ``--resume`` and any ``--workers``.

A retrieved caption's claims are written in the positive's style, with its question, so that a
negative differs from the positive in what it states and not in its form. Captions that name
only points the positive figure has come first (they are false by geometry, not because they
name an absent point); the others follow, most similar first. The verifier then drops any
retrieved caption whose claims all hold on the positive figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

import geoforge
from geoforge.caption.claims import VALUE_KINDS, Claim
from geoforge.perturb import CaptionCandidate, Positive
from geoforge.retrieval.bm25 import EMPTY, PoolBM25, tokens
from geoforge.verify import violation


class Retrieval:
    """Caption perturbation: other samples' captions, most similar first."""

    name = "retrieval"
    kind = "caption"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[CaptionCandidate]:
        indexed = [p for p in positive.pool if p.claims]
        own = [k for k, p in enumerate(indexed) if p.key == positive.key]
        if len(own) > 1:  # a pool that repeats the positive's key: index the others alone
            indexed, own = [p for p in indexed if p.key != positive.key], []
        pool = [p for k, p in enumerate(indexed) if k not in own]
        if not pool:
            return
        bm25 = _pool_bm25(tuple(p.text for p in indexed))
        scores = bm25.scores(tokens(positive.caption.text), own[0] if own else None)
        names = set(positive.scene.points)

        def names_absent_point(claims: tuple[Claim, ...]) -> bool:
            return any(not c.points <= names for c in claims)

        def all_hold(claims: tuple[Claim, ...]) -> bool:
            return all(violation(c, positive.scene) < 1.0 for c in claims if c.kind not in VALUE_KINDS)

        def candidate(k: int) -> CaptionCandidate:
            other = pool[k]
            change = f"retrieved from {other.key} (BM25 {scores[k]:.2f})"
            return CaptionCandidate(other.claims, change, other.claims)

        # Most similar first within three tiers: some relation false on the figure, then all
        # relations true, then naming an absent point. Judged lazily: the verifier usually
        # stops after the first few dozen of a shard's thousand.
        true_here: list[int] = []
        absent: list[int] = []
        for k in np.argsort(-scores, kind="stable").tolist():
            claims = pool[k].claims
            if names_absent_point(claims):
                absent.append(k)
            elif all_hold(claims):
                true_here.append(k)
            else:
                yield candidate(k)
        for k in true_here + absent:
            yield candidate(k)


@lru_cache(maxsize=2)
def _pool_bm25(texts: tuple[str, ...]) -> PoolBM25:
    """The BM25 index of a pool's captions, built once for all the positives of a shard that
    share it (a worker is handed the same pool for each few positives)."""
    return PoolBM25([tokens(t) or [EMPTY] for t in texts])


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(Retrieval())
