"""What a figure shows must hold and must be readable: marks as facts, and legibility warnings.

A ``mark`` statement claims something the reader sees (a right-angle square, equal ticks, equal
arcs), so a mark that does not hold on the realised figure is an error, like a false ``given``
(which :func:`geoforge.realise.realise` rejects). :func:`false_marks` measures each mark with
the facts module: ``mark right a b c`` is ``perp b a b c``, ``mark equal a b c d ...`` is
``cong`` of each segment with the first, ``mark equalangle a b c d e f ...`` is
``eqangle_plain`` of each angle with the first; a marked angle of 0° (or 180°) is refused too.

:func:`legibility_warnings` looks at a rendered layout: a point label nearer another point than
its own, and points crushed together by a circle much larger than their spread.
"""

from __future__ import annotations

import math

import numpy as np

from geoforge.errors import GeoforgeError
from geoforge.facts import Fact, residual
from geoforge.geometry import angle_at
from geoforge.render.layout import Layout
from geoforge.scene import Scene

#: A mark holds if each of its facts has a residual at most this (radians or share of size).
MARK_TOL = 1e-6
#: A marked angle under this many degrees (or this close to 180°) is a zero angle.
ZERO_ANGLE_DEG = 0.5
#: Points whose spread is under this share of the image, with a circle at least
#: :data:`CRUSH_RATIO` times that spread, are reported as crushed.
CRUSH_SHARE = 0.15
CRUSH_RATIO = 4.0


class MarkError(GeoforgeError):
    """A ``mark`` that does not hold on the figure (see :func:`false_marks`)."""


def _angle(scene: Scene, a: str, b: str, c: str) -> float:
    p = scene.points
    return math.degrees(angle_at(p[a], p[b], p[c]))


def _length(scene: Scene, a: str, b: str) -> float:
    return float(np.hypot(*(scene.points[a] - scene.points[b])))


def _check(scene: Scene, name: str, pts: tuple[str, ...]) -> str | None:
    """Why one mark is false, or None."""
    if name in ("right", "angle", "equalangle"):
        triples = [pts[i : i + 3] for i in range(0, len(pts), 3)]
        degrees = [_angle(scene, *t) for t in triples]
        for t, d in zip(triples, degrees):
            if d < ZERO_ANGLE_DEG or d > 180 - ZERO_ANGLE_DEG:
                return f"∠{''.join(t)} measures {d:.2f}°: a straight or zero angle cannot be marked"
        if name == "right" and residual(Fact("perp", (pts[1], pts[0], pts[1], pts[2])), scene) > MARK_TOL:
            return f"∠{''.join(pts)} measures {degrees[0]:.2f}°, not 90°"
        if name == "equalangle" and any(
            residual(Fact("eqangle_plain", (*triples[0], *t)), scene) > MARK_TOL for t in triples[1:]
        ):
            return ", ".join(f"∠{''.join(t)} = {d:.2f}°" for t, d in zip(triples, degrees)) + ": not equal"
        return None
    pairs = [pts[i : i + 2] for i in range(0, len(pts), 2)]
    if any(residual(Fact("cong", (*pairs[0], *q)), scene) > MARK_TOL for q in pairs[1:]):
        return ", ".join(f"|{''.join(q)}| = {_length(scene, *q):.4g}" for q in pairs) + ": not equal"
    return None


def false_marks(scene: Scene) -> list[str]:
    """One line per ``mark`` statement of ``scene``'s program that does not hold, naming the
    mark and what was measured, e.g. ``mark right a h b: ∠ahb measures 87.31°, not 90°``."""
    out = []
    for st in scene.program.statements:
        if st.kind == "mark" and (why := _check(scene, st.name, st.points)) is not None:
            out.append(f"`{st.text()}`: {why}")
    return out


def legibility_warnings(plan: Layout) -> list[str]:
    """Warnings about a laid-out figure that is hard to read: a point label nearer another
    point than its own, or all points squeezed into a small share of the image by a much
    larger circle."""
    out = []
    names = list(plan.points)
    xy = np.array([plan.points[n] for n in names]).reshape(-1, 2)
    for label in plan.labels:
        if label.kind != "point" or len(names) < 2:
            continue
        centre = (label.box[:2] + label.box[2:]) / 2
        d = np.hypot(*(xy - centre).T)
        own = names.index(label.text)
        nearest = int(np.argmin(d))
        if nearest != own and d[nearest] < d[own]:
            out.append(f"label `{label.text}` is nearer point `{names[nearest]}` than its own point")
    spread = float(np.ptp(xy, axis=0).max()) if len(xy) > 1 else 0.0
    biggest = float(plan.circles[:, 2].max()) * 2 if len(plan.circles) else 0.0
    if len(xy) > 1 and spread < CRUSH_SHARE * plan.size and biggest >= CRUSH_RATIO * max(spread, 1.0):
        ratio = biggest / max(spread, 1.0)
        out.append(
            f"the points fill {spread / plan.size:.0%} of the image: a circle {ratio:.0f} times their "
            "spread crushes them together"
        )
    return out
