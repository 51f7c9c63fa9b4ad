"""Float64 plane geometry: lines, circles, intersections and angle helpers.

Points are ``numpy`` arrays of shape (2,), dtype float64, in diagram units (the realiser
samples free points in a box of side about 2). Angles are radians unless a name says
``_deg``. Functions raise :class:`geoforge.errors.DegenerateError` with a reason when an
intersection does not exist or is ill-conditioned, so the realiser can retry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoforge.errors import DegenerateError

Point = np.ndarray

#: Two lines whose directions differ by less than this (radians, about 0.57°) are treated as
#: parallel: their intersection would be numerically meaningless or far outside the figure.
MIN_CROSSING_ANGLE = 0.01


def pt(x: float, y: float) -> Point:
    """A point as a float64 array of shape (2,)."""
    return np.array([x, y], dtype=np.float64)


def cross(u: Point, v: Point) -> float:
    """z-component of the 2-D cross product ``u × v``."""
    return float(u[0] * v[1] - u[1] * v[0])


def norm(v: Point) -> float:
    """Euclidean length of ``v``."""
    return float(math.hypot(v[0], v[1]))


def rotate(v: Point, angle: float) -> Point:
    """``v`` rotated counter-clockwise by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def direction(a: Point, b: Point) -> float:
    """Direction of the line ``ab`` in radians, in [0, π) (a line has no orientation)."""
    return math.atan2(b[1] - a[1], b[0] - a[0]) % math.pi


def wrap_half_pi(angle: float) -> float:
    """``angle`` reduced modulo π into [-π/2, π/2): the signed gap between two line directions."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def angle_at(a: Point, b: Point, c: Point) -> float:
    """Undirected angle ∠abc at vertex ``b`` in radians, in [0, π]."""
    u, v = a - b, c - b
    return abs(math.atan2(cross(u, v), float(np.dot(u, v))))


@dataclass(frozen=True)
class Line:
    """The line through ``p`` with unit direction ``d`` (both float64 arrays of shape (2,))."""

    p: Point
    d: Point

    @staticmethod
    def through(a: Point, b: Point) -> Line:
        """The line through ``a`` and ``b``. Raises DegenerateError if they coincide."""
        v = b - a
        n = norm(v)
        if n < 1e-12:
            raise DegenerateError("line through two coincident points")
        return Line(a, v / n)

    def project(self, x: Point) -> Point:
        """Orthogonal projection of ``x`` onto the line."""
        return self.p + self.d * float(np.dot(x - self.p, self.d))

    def distance(self, x: Point) -> float:
        """Distance from ``x`` to the line."""
        return abs(cross(self.d, x - self.p))


@dataclass(frozen=True)
class Ray(Line):
    """The half-line from ``p`` in direction ``d``: sampling stays on it; intersections with it
    behave as with the full line."""


@dataclass(frozen=True)
class Circle:
    """Circle with float64 ``center`` of shape (2,) and ``radius`` > 0 in diagram units."""

    center: Point
    radius: float

    @staticmethod
    def through3(a: Point, b: Point, c: Point) -> Circle:
        """The circumcircle of ``a b c``. Raises DegenerateError if they are (nearly) collinear."""
        ba, ca = b - a, c - a
        d = 2 * cross(ba, ca)
        scale = max(norm(ba), norm(ca)) ** 2
        if abs(d) < 1e-9 * scale:
            raise DegenerateError("circle through three collinear points")
        ux = (ca[1] * ba.dot(ba) - ba[1] * ca.dot(ca)) / d
        uy = (ba[0] * ca.dot(ca) - ca[0] * ba.dot(ba)) / d
        center = a + np.array([ux, uy])
        return Circle(center, norm(center - a))


def intersect_ll(l1: Line, l2: Line) -> Point:
    """Intersection of two lines. Raises DegenerateError if they cross at less than
    :data:`MIN_CROSSING_ANGLE`."""
    s = cross(l1.d, l2.d)
    if abs(s) < math.sin(MIN_CROSSING_ANGLE):
        raise DegenerateError(f"near-parallel lines (angle {math.degrees(math.asin(min(1.0, abs(s)))):.3f}°)")
    t = cross(l2.p - l1.p, l2.d) / s
    return l1.p + t * l1.d


def intersect_lc(line: Line, circle: Circle) -> list[Point]:
    """Intersections of a line and a circle (0, 1 or 2 points; a tangency gives one).

    Raises DegenerateError if the line misses the circle.
    """
    foot = line.project(circle.center)
    h2 = circle.radius**2 - float(np.sum((foot - circle.center) ** 2))
    if h2 < -1e-12 * circle.radius**2:
        raise DegenerateError("line misses circle")
    h = math.sqrt(max(h2, 0.0))
    if h < 1e-9 * circle.radius:
        return [foot]
    return [foot - h * line.d, foot + h * line.d]


def intersect_cc(c1: Circle, c2: Circle) -> list[Point]:
    """Intersections of two circles (1 or 2 points). Raises DegenerateError if they do not
    meet or are concentric."""
    v = c2.center - c1.center
    d = norm(v)
    if d < 1e-12:
        raise DegenerateError("concentric circles")
    a = (c1.radius**2 - c2.radius**2 + d * d) / (2 * d)
    h2 = c1.radius**2 - a * a
    if h2 < -1e-12 * c1.radius**2:
        raise DegenerateError("circles do not meet")
    u = v / d
    base = c1.center + a * u
    h = math.sqrt(max(h2, 0.0))
    if h < 1e-9 * c1.radius:
        return [base]
    n = np.array([-u[1], u[0]])
    return [base + h * n, base - h * n]


def reflect_in_line(x: Point, line: Line) -> Point:
    """Mirror image of ``x`` in ``line``."""
    return 2 * line.project(x) - x
