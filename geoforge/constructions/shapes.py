"""Free-shape sketches: triangles, quadrangles and special polygons sampled from scratch.

Shapes are drawn in local coordinates, then placed with a random rotation, shift and (half of
the time) a mirror image, as AlphaGeometry's ``random_rfss`` does. Sizes are about 2 diagram
units, and angles stay between about 25° and 125° so textbook figures are legible.
"""

from __future__ import annotations

import math

import numpy as np

from geoforge.constructions.sketches import Gen, sketch
from geoforge.errors import DegenerateError
from geoforge.geometry import Point, angle_at, norm


def _well_shaped(points: list[Point], min_angle: float = 25.0, max_angle: float = 125.0) -> bool:
    n = len(points)
    for i in range(n):
        ang = math.degrees(angle_at(points[i - 1], points[i], points[(i + 1) % n]))
        if not min_angle <= ang <= max_angle:
            return False
    return all(norm(points[i] - points[i - 1]) > 0.6 for i in range(n))


def _polygon(rng: Gen, n: int) -> tuple[Point, ...]:
    """A convex n-gon with vertices counter-clockwise on a jittered circle of radius about 1."""
    for _ in range(1000):
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * math.pi]))
        if gaps.min() < 0.6 * 2 * math.pi / n / 1.5:
            continue
        radii = rng.uniform(0.85, 1.15, n)
        pts = [np.array([r * math.cos(t), r * math.sin(t)]) for r, t in zip(radii, angles)]
        if n > 3 or _well_shaped(pts):
            return tuple(pts)
    raise DegenerateError(f"could not sample a well-shaped {n}-gon")


def _frame(rng: Gen) -> tuple[Point, Point, Point]:
    """A random origin, unit x-axis and unit y-axis for shapes given in local coordinates:
    a random rotation and, half of the time, a mirror image, so vertex order runs either way
    round as in real figures (AlphaGeometry's ``random_rfss`` does the same)."""
    t = rng.uniform(0, 2 * math.pi)
    ex = np.array([math.cos(t), math.sin(t)])
    flip = 1.0 if rng.uniform() < 0.5 else -1.0
    return rng.uniform(-0.2, 0.2, 2), ex, flip * np.array([-ex[1], ex[0]])


def _local(o: Point, ex: Point, ey: Point, *xy: tuple[float, float]) -> tuple[Point, ...]:
    return tuple(o + x * ex + y * ey for x, y in xy)


# --- free shapes -------------------------------------------------------------------------


@sketch
def free(rng: Gen) -> tuple[Point, ...]:
    return (rng.uniform(-1, 1, 2),)


@sketch
def segment(rng: Gen) -> tuple[Point, ...]:
    o, ex, _ = _frame(rng)
    half = rng.uniform(0.7, 1.0)
    return _local(o, ex, ex, (-half, 0), (half, 0))


@sketch
def triangle(rng: Gen) -> tuple[Point, ...]:
    return _polygon(rng, 3)


@sketch
def quadrangle(rng: Gen) -> tuple[Point, ...]:
    return _polygon(rng, 4)


@sketch
def pentagon(rng: Gen) -> tuple[Point, ...]:
    return _polygon(rng, 5)


@sketch
def acute_triangle(rng: Gen) -> tuple[Point, ...]:
    """A triangle with every angle between 25° and 85°."""
    for _ in range(1000):
        pts = _polygon(rng, 3)
        if _well_shaped(list(pts), max_angle=85.0):
            return pts
    raise DegenerateError("could not sample an acute triangle")


@sketch
def between(rng: Gen) -> tuple[Point, ...]:
    """c, a, b: a free segment ab and c strictly inside it (Newclid's ``between``)."""
    a, b = segment(rng)
    return (a + rng.uniform(0.2, 0.8) * (b - a), a, b)


@sketch
def r_triangle(rng: Gen) -> tuple[Point, ...]:
    o, ex, ey = _frame(rng)
    return _local(o, ex, ey, (0, 0), (rng.uniform(0.8, 1.6), 0), (0, rng.uniform(0.8, 1.6)))


@sketch
def iso_triangle(rng: Gen) -> tuple[Point, ...]:
    """Apex first: |ab| = |ac|, apex angle 30°–120°."""
    o, ex, ey = _frame(rng)
    half = math.radians(rng.uniform(15, 60))
    r = rng.uniform(1.2, 1.8)
    return _local(
        o,
        ex,
        ey,
        (0, r / 2),
        (-r * math.sin(half), r / 2 - r * math.cos(half)),
        (r * math.sin(half), r / 2 - r * math.cos(half)),
    )


@sketch
def ieq_triangle(rng: Gen) -> tuple[Point, ...]:
    o, ex, ey = _frame(rng)
    s = rng.uniform(1.4, 1.8)
    return _local(
        o,
        ex,
        ey,
        (-s / 2, -s * math.sqrt(3) / 6),
        (s / 2, -s * math.sqrt(3) / 6),
        (0, s * math.sqrt(3) / 3),
    )


@sketch
def risos(rng: Gen) -> tuple[Point, ...]:
    o, ex, ey = _frame(rng)
    s = rng.uniform(1.0, 1.5)
    return _local(o, ex, ey, (0, 0), (s, 0), (0, s))


@sketch
def triangle12(rng: Gen) -> tuple[Point, ...]:
    """|ab| : |ac| = 1 : 2 with the angle at a between 40° and 120°."""
    o, ex, ey = _frame(rng)
    s = rng.uniform(0.6, 0.8)
    t = math.radians(rng.uniform(40, 120))
    return _local(o, ex, ey, (0, 0), (s, 0), (2 * s * math.cos(t), 2 * s * math.sin(t)))


@sketch
def rectangle(rng: Gen) -> tuple[Point, ...]:
    o, ex, ey = _frame(rng)
    w, h = rng.uniform(1.2, 2.0), rng.uniform(0.7, 1.4)
    return _local(o, ex, ey, (-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))


@sketch
def isquare(rng: Gen) -> tuple[Point, ...]:
    o, ex, ey = _frame(rng)
    s = rng.uniform(1.2, 1.7) / 2
    return _local(o, ex, ey, (-s, -s), (s, -s), (s, s), (-s, s))


@sketch
def trapezoid(rng: Gen) -> tuple[Point, ...]:
    """ab ∥ cd, counter-clockwise, with a top shorter than the base."""
    o, ex, ey = _frame(rng)
    w, h = rng.uniform(1.6, 2.2), rng.uniform(0.8, 1.3)
    x0 = rng.uniform(-w / 2 + 0.2, 0.0)
    x1 = rng.uniform(0.1, w / 2 - 0.2)
    return _local(o, ex, ey, (-w / 2, -h / 2), (w / 2, -h / 2), (x1, h / 2), (x0, h / 2))


@sketch
def r_trapezoid(rng: Gen) -> tuple[Point, ...]:
    """ab ∥ cd and ab ⊥ ad (right angle at a)."""
    o, ex, ey = _frame(rng)
    w, h = rng.uniform(1.5, 2.0), rng.uniform(0.8, 1.3)
    return _local(o, ex, ey, (0, 0), (w, 0), (rng.uniform(0.4, 0.8) * w, h), (0, h))


@sketch
def eq_trapezoid(rng: Gen) -> tuple[Point, ...]:
    """Isosceles trapezoid: dc ∥ ab and |da| = |bc| (symmetric about ab's bisector)."""
    o, ex, ey = _frame(rng)
    w, h, top = rng.uniform(1.6, 2.2), rng.uniform(0.8, 1.3), rng.uniform(0.3, 0.8)
    return _local(o, ex, ey, (-w / 2, 0), (w / 2, 0), (top * w / 2, h), (-top * w / 2, h))


@sketch
def eq_quadrangle(rng: Gen) -> tuple[Point, ...]:
    """|ad| = |bc|: a quadrangle whose two legs are equal but not parallel."""
    o, ex, ey = _frame(rng)
    w, leg = rng.uniform(1.6, 2.2), rng.uniform(0.9, 1.3)
    t1, t2 = math.radians(rng.uniform(60, 85)), math.radians(rng.uniform(95, 125))
    a, b = (-w / 2, 0.0), (w / 2, 0.0)
    return _local(
        o,
        ex,
        ey,
        a,
        b,
        (b[0] + leg * math.cos(t2), leg * math.sin(t2)),
        (a[0] + leg * math.cos(t1), leg * math.sin(t1)),
    )


@sketch
def eqdia_quadrangle(rng: Gen) -> tuple[Point, ...]:
    """Convex quadrangle with equal diagonals |ac| = |bd|, crossing at angle 50°–130°."""
    o, ex, ey = _frame(rng)
    diag = rng.uniform(1.6, 2.2)
    t = math.radians(rng.uniform(50, 130))
    s1, s2 = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
    u, v = np.array([1.0, 0.0]), np.array([math.cos(t), math.sin(t)])
    a, c = -s1 * diag * u, (1 - s1) * diag * u
    b, d = -s2 * diag * v, (1 - s2) * diag * v
    return _local(o, ex, ey, tuple(a), tuple(b), tuple(c), tuple(d))  # type: ignore[arg-type]
