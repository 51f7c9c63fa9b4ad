"""``move_vertex``: move one point just far enough to break a relation.

For each point the positive caption mentions, the clause that builds it is replaced by the
point pinned at a displaced position (everything built on it follows, everything else stays).
Displacements are tried from small to large, a fraction of the diagram size in a random
direction, so the first ones the verifier accepts are the least visible that still break a
claim (a right angle, a midpoint, an equal length). Givens on the moved point and on points
built from it are dropped, since their values no longer hold, and so are the marks (right-angle
squares, ticks, arcs) on the moved point.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

import geoforge
from geoforge.edit import clause_index, drop_givens, drop_marks, pin
from geoforge.errors import ProgramError
from geoforge.perturb import ImageCandidate, Positive

#: Displacements tried, as fractions of the diagram size.
STEPS = (0.06, 0.1, 0.16, 0.24)


class MoveVertex:
    """Image perturbation: displace one point of the figure."""

    name = "move_vertex"
    kind = "image"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[ImageCandidate]:
        program, scene = positive.program, positive.scene
        claims = positive.caption.claims
        mentioned = sorted({p for c in claims for f in c.facts() for p in f.points if p in scene.points})
        rng.shuffle(mentioned)
        for step in STEPS:
            for point in mentioned:
                index = clause_index(program, point)
                angle = rng.uniform(0, 2 * np.pi)
                shift = step * scene.scale * np.array([np.cos(angle), np.sin(angle)])
                coords = {p: tuple(scene.points[p]) for p in program.clauses[index].points}
                coords[point] = tuple(scene.points[point] + shift)
                try:
                    moved = pin(program, index, coords)  # type: ignore[arg-type]
                    negative = drop_marks(drop_givens(moved, {point}), {point})
                except ProgramError:
                    continue
                breaks = tuple(c for c in claims if point in {p for f in c.facts() for p in f.points})
                yield ImageCandidate(negative, index + 1, f"move {point} by {step:.2f} of the figure", breaks)


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(MoveVertex())
