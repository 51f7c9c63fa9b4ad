"""``delete_point``: remove a point and everything built on it.

MMGeoLM's "non-existent element" hallucination (Sun et al. 2025, Figure 1): the positive
caption names a point the negative figure does not have. One candidate per clause, points that
the caption mentions first; a deletion that would remove more than a third of the points is
skipped (the negative must stay near-identical).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

import geoforge
from geoforge.edit import delete_points, dependents
from geoforge.errors import ProgramError
from geoforge.perturb import ImageCandidate, Positive


class DeletePoint:
    """Image perturbation: delete one clause's points and their dependents."""

    name = "delete_point"
    kind = "image"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[ImageCandidate]:
        program = positive.program
        mentioned = {p for c in positive.caption.claims for p in c.points}
        order = sorted(
            range(1, len(program.clauses)),
            key=lambda i: (not set(program.clauses[i].points) & mentioned, float(rng.uniform())),
        )
        total = len(program.points)
        for i in order:
            points = set(program.clauses[i].points)
            gone = dependents(program, points)
            if len(gone) > max(1, total // 3):
                continue
            try:
                negative = delete_points(program, points)
            except ProgramError:
                continue
            breaks = tuple(c for c in positive.caption.claims if c.points & gone)
            yield ImageCandidate(negative, i + 1, f"delete {' '.join(sorted(gone))}", breaks)


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(DeletePoint())
