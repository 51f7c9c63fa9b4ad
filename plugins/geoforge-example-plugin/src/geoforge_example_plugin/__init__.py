"""geoforge-example-plugin: the ``misplaced_point`` caption perturbation.

"P lies on XY" is the kind of fine-grained claim a vision-language model gets wrong: the
point is drawn, the segment is drawn, and only their incidence differs. ``misplaced_point``
writes caption negatives that put a point of the figure on a drawn segment it is not on. If
the positive caption already says where the point lies (``on_segment P X Y``), that claim is
moved to the other segment; otherwise the false incidence is added to the positive's claims,
so the negative reads like the positive with one wrong statement.

Proposals come hardest first: the point closest to the segment's line that is still clearly
off it (at least :data:`MIN_ANGLE_DEG`, a little more than the verifier's 8° margin), ties
broken by ``rng``. geoforge's verifier decides what is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import combinations

import numpy as np

import geoforge
from geoforge.caption import Claim
from geoforge.perturb import CaptionCandidate, Positive
from geoforge.scene import Scene

__version__ = "0.1.0"

#: A point is proposed on segment XY only if it leaves line XY by at least this angle.
MIN_ANGLE_DEG = 10.0
#: Proposals are ordered by their angle in buckets of this many degrees, shuffled within one.
BUCKET_DEG = 5.0


def drawn_segments(scene: Scene) -> list[tuple[str, str]]:
    """Every segment between two named points of one drawn line, each once, sorted."""
    pairs = {tuple(sorted(ab)) for line in scene.lines for ab in combinations(line, 2)}
    return sorted(pairs)  # type: ignore[arg-type]


def off_line_angle(scene: Scene, p: str, x: str, y: str) -> float:
    """The larger of the angles (degrees, 0 to 90) that XP and YP make with line XY: 0 when P
    is on the line, 90 when it stands straight off an end."""
    P, X, Y = (scene.points[n] for n in (p, x, y))
    u = Y - X
    length = float(np.hypot(*u))
    near = min(float(np.hypot(*(P - X))), float(np.hypot(*(P - Y))))
    if length < 1e-12 or near < 1e-12:
        return 0.0
    distance = abs(float(u[0] * (P - X)[1] - u[1] * (P - X)[0])) / length
    return math.degrees(math.asin(min(1.0, distance / near)))


class MisplacedPoint:
    """Caption perturbation: claim that a point lies on a drawn segment it is not on."""

    name = "misplaced_point"
    kind = "caption"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[CaptionCandidate]:
        scene, claims = positive.scene, list(positive.caption.claims)
        options = [
            (angle, p, x, y)
            for x, y in drawn_segments(scene)
            for p in sorted(scene.points)
            if p not in (x, y) and (angle := off_line_angle(scene, p, x, y)) >= MIN_ANGLE_DEG
        ]
        shuffled = [options[int(i)] for i in rng.permutation(len(options))]
        shuffled.sort(key=lambda o: o[0] // BUCKET_DEG)  # stable: random order within a bucket
        for angle, p, x, y in shuffled:
            new = Claim("on_segment", (p, x, y))
            where = next((i for i, c in enumerate(claims) if c.kind == "on_segment" and c.args[0] == p), None)
            if where is None:
                changed = [*claims, new]
                change = f"add {p} on {x}{y} ({angle:.0f}° off)"
            else:
                changed = [*claims[:where], new, *claims[where + 1 :]]
                old = claims[where].args
                change = f"move {p} from {old[1]}{old[2]} to {x}{y} ({angle:.0f}° off)"
            yield CaptionCandidate(tuple(changed), change, (new,))


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    """Register :class:`MisplacedPoint`."""
    register(MisplacedPoint())
