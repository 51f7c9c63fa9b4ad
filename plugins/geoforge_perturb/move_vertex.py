"""``move_vertex``: move one point just far enough to break a relation.

For each point the positive caption mentions, the clause that builds it is replaced by the
point pinned at a displaced position (everything built on it follows, everything else stays).
Displacements are tried from small to large, a fraction of the diagram size, so the first ones
the verifier accepts are the least visible that still break a claim (a right angle, a midpoint,
an equal length). Each point moves in the three directions (of eight) that make the stated
claims on it most clearly false, so a move breaks a claim by construction instead of sliding a
point along its own line. Points with the fewest points built on them go first, so that the
change stays one detail, and a point whose every stated claim names a point built on it goes
after all the others, since those points follow it and keep the claim; a point that carries
:data:`~geoforge_perturb.MOST_INK` of the strokes goes last of all. Within each of these groups,
a move too short for a probe of it (:data:`PROBE`, the point alone moved) to take any stated
claim past its margin goes after the others. Givens on the moved point and on points
built from it are dropped, since their values no longer hold, and so are the marks (right-angle
squares, ticks, arcs) on the moved point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

import geoforge
from geoforge.caption import Claim
from geoforge.edit import clause_index, dependents, drop_givens, drop_marks, pin
from geoforge.errors import ProgramError
from geoforge.perturb import ImageCandidate, Positive
from geoforge.program import Program
from geoforge.scene import stroke_share
from geoforge.verify import violation
from geoforge_perturb import MOST_INK

#: Displacements tried, as fractions of the diagram size.
STEPS = (0.06, 0.1, 0.16, 0.24)


#: The probe move that ranks directions, as a fraction of the diagram size.
PROBE = 0.05

#: Candidate directions: eight compass points (radians).
COMPASS = np.arange(8) * np.pi / 4


def _draws(rng: np.random.Generator) -> tuple[float, list[float]]:
    """The random numbers :func:`_directions` uses for one point: the turn of the compass
    (radians) and one tie-break per direction, drawn in that order."""
    turn = float(rng.uniform(0, np.pi / 4))
    return turn, [float(rng.uniform()) for _ in COMPASS]


def _directions(
    positive: Positive, point: str, draws: tuple[float, list[float]], n: int = 3
) -> list[tuple[np.ndarray, float]]:
    """The ``n`` unit vectors (2,), of eight compass directions turned by a random angle, that
    make the stated claims on ``point`` most clearly false when ``point`` alone moves
    :data:`PROBE` of the figure size (:func:`geoforge.verify.violation`, points built on it held
    still): a move that breaks a claim by construction, rather than one along the point's own
    line. Each comes with its reach: the largest violation (margin units) of a claim after
    that probe move. Ties keep a random order. ``draws`` are :func:`_draws`'s turn and
    tie-breaks."""
    scene = positive.scene
    claims = [c for c in positive.caption.claims if point in c.points]
    turn, ties = draws
    units = [np.array([np.cos(t + turn), np.sin(t + turn)]) for t in COMPASS]
    probe = PROBE * scene.scale
    scores, reach = [], []
    for u in units:
        moved = {**scene.points, point: scene.points[point] + probe * u}
        trial = dataclasses.replace(scene, points=moved)
        found = [min(violation(c, trial), 10.0) for c in claims]
        scores.append(sum(found))
        reach.append(max(found, default=0.0))
    order = sorted(range(len(units)), key=lambda k: (-round(scores[k], 6), ties[k]))
    return [(units[k], reach[k]) for k in order[:n]]


#: What every move of one point shares: its clause's index, the program without the givens and
#: marks the move makes untrue, the claims it breaks, and its directions with their reach.
_Moves = tuple[int, Program, tuple[Claim, ...], list[tuple[np.ndarray, float]]]


class MoveVertex:
    """Image perturbation: displace one point of the figure."""

    name = "move_vertex"
    kind = "image"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[ImageCandidate]:
        program, scene = positive.program, positive.scene
        claims = positive.caption.claims
        named = {c: c.points for c in claims}
        mentioned = sorted({p for c in claims for p in named[c] if p in scene.points})
        # Points with the fewest points built on them first: moving them changes one detail.
        built = {p: dependents(program, {p}) - {p} for p in mentioned}
        weight = {p: len(built[p]) + float(rng.uniform()) for p in mentioned}
        mentioned.sort(key=weight.__getitem__)
        # A point whose every stated claim also names a point built on it goes last: those
        # points follow it, so its moves rarely break a claim (none of 47 on 40 ``mmgeo-4k``
        # positives did, against 194 of 357 for the others).
        direct = [p for p in mentioned if any(not (named[c] & built[p]) for c in claims if p in named[c])]
        # A point that carries most of the strokes goes after all of those: its moves swing most
        # of the ink or, everything built on it following, break no stated claim.
        inky = {p for p in mentioned if stroke_share(scene, built[p] | {p}) >= MOST_INK}
        groups = (
            [p for p in direct if p not in inky],
            [p for p in mentioned if p not in direct and p not in inky],
            [p for p in mentioned if p in inky],
        )
        draws = {p: _draws(rng) for p in mentioned}
        # What every move of one point shares, made when the point's first move is asked for (the
        # verifier often has its negatives before the last points): its clause, the program without
        # the givens and marks the move makes untrue (pinning the clause changes neither), the
        # claims it breaks and its directions. ``None``: the point cannot be moved.
        shared: dict[str, _Moves | None] = {}

        def moves(point: str) -> _Moves | None:
            if point not in shared:
                try:
                    kept = drop_marks(drop_givens(program, {point}), {point})
                except ProgramError:
                    shared[point] = None
                    return None
                breaks = tuple(c for c in claims if point in named[c])
                directions = _directions(positive, point, draws[point])
                shared[point] = (clause_index(program, point), kept, breaks, directions)
            return shared[point]

        def moved(found: _Moves, point: str, step: float, direction: np.ndarray) -> ImageCandidate | None:
            index, kept, breaks, _ = found
            coords = {p: tuple(scene.points[p]) for p in program.clauses[index].points}
            coords[point] = tuple(scene.points[point] + step * scene.scale * direction)
            try:
                negative = pin(kept, index, coords)  # type: ignore[arg-type]
            except ProgramError:
                return None
            return ImageCandidate(negative, index + 1, f"move {point} by {step:.2f} of the figure", breaks)

        # A step too short for any claim to reach its margin, judged from the probe move (the
        # violations grow about linearly with the step), is tried after the rest of its group.
        for group in groups:  # each step for every point of a group before the next step
            short: list[tuple[_Moves, str, float, np.ndarray]] = []
            for step in STEPS:
                for point in group:
                    found = moves(point)
                    if found is None:
                        continue
                    for direction, reach in found[3]:
                        if reach * step / PROBE < 1.0:
                            short.append((found, point, step, direction))
                        elif (candidate := moved(found, point, step, direction)) is not None:
                            yield candidate
            for later in short:
                if (candidate := moved(*later)) is not None:
                    yield candidate


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(MoveVertex())
