"""``move_vertex``: move one point just far enough to break a relation.

For each point the positive caption mentions, the clause that builds it is replaced by the
point pinned at a displaced position (everything built on it follows, everything else stays).
Displacements are tried from small to large, a fraction of the diagram size, so the first ones
the verifier accepts are the least visible that still break a claim (a right angle, a midpoint,
an equal length). A point that lies on a drawn line moves across it (within 30° of the
normal, either side): a move along its own line would leave every incidence true and change
little that a picture shows. Other points move in a random direction. Givens on the moved point and on points
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
from geoforge.scene import Scene

#: Displacements tried, as fractions of the diagram size.
STEPS = (0.06, 0.1, 0.16, 0.24)


def _direction(scene: Scene, point: str, rng: np.random.Generator) -> np.ndarray:
    """A unit vector (2,): across a drawn line through ``point`` if there is one, else random."""
    lines = [g for g in scene.lines if point in g and len(g) >= 3]
    angle = rng.uniform(0, 2 * np.pi)
    if lines:
        g = lines[int(rng.integers(len(lines)))]
        d = scene.points[g[-1]] - scene.points[g[0]]
        angle = float(np.arctan2(d[1], d[0])) + np.pi / 2 + rng.uniform(-np.pi / 6, np.pi / 6)
        angle += np.pi * int(rng.integers(2))
    return np.array([np.cos(angle), np.sin(angle)])


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
                shift = step * scene.scale * _direction(scene, point, rng)
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
