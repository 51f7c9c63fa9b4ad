"""``retrieval``: the captions of other samples of the run most similar to the positive's.

Similarity is BM25 over caption words (``rank_bm25``'s ``BM25Okapi``), the offline lexical
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

import numpy as np

import geoforge
from geoforge.caption.claims import VALUE_KINDS
from geoforge.perturb import CaptionCandidate, Positive
from geoforge.retrieval.bm25 import EMPTY, tokens
from geoforge.verify import violation


class Retrieval:
    """Caption perturbation: other samples' captions, most similar first."""

    name = "retrieval"
    kind = "caption"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[CaptionCandidate]:
        from rank_bm25 import BM25Okapi

        pool = [p for p in positive.pool if p.key != positive.key and p.claims]
        if not pool:
            return
        bm25 = BM25Okapi([tokens(p.text) or [EMPTY] for p in pool])
        scores = bm25.get_scores(tokens(positive.caption.text))
        names = set(positive.scene.points)

        def rank(k: int) -> tuple[bool, bool]:
            claims = pool[k].claims
            if any(p not in names for c in claims for f in c.facts() for p in f.points):
                return True, True
            relation = [c for c in claims if c.kind not in VALUE_KINDS]
            return False, all(violation(c, positive.scene) < 1.0 for c in relation)

        ranked = [int(k) for k in np.argsort(-scores, kind="stable")]
        for k in sorted(ranked, key=rank):
            other = pool[k]
            yield CaptionCandidate(
                other.claims, f"retrieved from {other.key} (BM25 {scores[k]:.2f})", other.claims
            )


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(Retrieval())
