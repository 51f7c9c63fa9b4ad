"""Caption claims: what a caption states, how each kind is checked and how it is worded.

A :class:`Claim` is one statement of a caption, e.g. ``Claim("altitude", ("A", "D", "B", "C"))``:
"AD is the altitude from A to BC". Each claim kind expands to facts (:mod:`geoforge.facts`) that
are checked on a Scene. Every wording of a kind states *all* of its facts and names every one of
its arguments, and no two kinds share a wording, so that :mod:`geoforge.caption.read` can read
the claims back from the text exactly (DESIGN.md, "Judge what the model sees"). Angles worded
as ``∠ABC`` are plain (undirected, in [0°, 180°]) angles; circles are named by their centre,
"circle O" being the circle drawn about ``O``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from geoforge.exact import format_literal
from geoforge.facts import Fact, residual
from geoforge.scene import Scene

#: A claim is kept only if every fact it expands to has a residual at most this.
CLAIM_TOL = 1e-6
#: Claim kinds whose last argument is a value (a length, degrees, a ratio), not a point.
VALUE_KINDS = ("length", "angle", "ratio")
STYLES = ("descriptive", "facts", "question")


@dataclass(frozen=True)
class ClaimKind:
    """How one kind of claim is checked and written.

    ``facts`` are fact texts over argument indices (``"perp 0 1 2 3"``); ``text`` has one
    template per style, formatted with the arguments (``{0}``, ``{1}``...) and ``{v}`` for a
    value; a tuple gives variants picked at random for the descriptive style.
    """

    facts: tuple[str, ...]
    descriptive: tuple[str, ...]
    terse: str


def _k(facts: str, descriptive: str | tuple[str, ...], terse: str) -> ClaimKind:
    d = (descriptive,) if isinstance(descriptive, str) else descriptive
    return ClaimKind(tuple(f.strip() for f in facts.split(",") if f.strip()), d, terse)


#: Claim kinds. Values (the last argument of ``length``/``angle``) are sympy expressions; a
#: ``ratio`` ends with a positive rational (``1/2``), worded ``1 : 2`` (:func:`ratio_text`).
#: ``eqangle_plain`` compares plain angles (bisector, incentre); ``drawn_circle O X...`` puts
#: points on the circle drawn about ``O`` ("circle O").
CLAIM_KINDS: dict[str, ClaimKind] = {
    "triangle": _k("ncoll 0 1 2", "{0}{1}{2} is a triangle", "△{0}{1}{2}"),
    "isosceles": _k(
        "shape isosceles 0 1 2",
        (
            "triangle {0}{1}{2} is isosceles with {0}{1} = {0}{2}",
            "{0}{1}{2} is an isosceles triangle in which {0}{1} = {0}{2}",
        ),
        "△{0}{1}{2} isosceles, {0}{1} = {0}{2}",
    ),
    "equilateral": _k(
        "shape equilateral 0 1 2", "triangle {0}{1}{2} is equilateral", "△{0}{1}{2} equilateral"
    ),
    "right": _k(
        "shape right 0 1 2",
        (
            "triangle {0}{1}{2} has a right angle at {0}",
            "{0}{1}{2} is a right triangle with its right angle at {0}",
        ),
        "right △{0}{1}{2}, right angle at {0}",
    ),
    "square": _k("shape square 0 1 2 3", "{0}{1}{2}{3} is a square", "square {0}{1}{2}{3}"),
    "rectangle": _k("shape rectangle 0 1 2 3", "{0}{1}{2}{3} is a rectangle", "rectangle {0}{1}{2}{3}"),
    "rhombus": _k("shape rhombus 0 1 2 3", "{0}{1}{2}{3} is a rhombus", "rhombus {0}{1}{2}{3}"),
    "parallelogram": _k("shape parallelogram 0 1 2 3", "{0}{1}{2}{3} is a parallelogram", "▱{0}{1}{2}{3}"),
    "trapezoid": _k(
        "shape trapezoid 0 1 2 3",
        "{0}{1}{2}{3} is a trapezoid with {0}{1} ∥ {2}{3}",
        "trapezoid {0}{1}{2}{3}, {0}{1} ∥ {2}{3}",
    ),
    "isosceles_trapezoid": _k(
        "shape isosceles_trapezoid 0 1 2 3",
        "{0}{1}{2}{3} is an isosceles trapezoid with {0}{1} ∥ {2}{3} and {1}{2} = {3}{0}",
        "isosceles trapezoid {0}{1}{2}{3}, {0}{1} ∥ {2}{3}, {1}{2} = {3}{0}",
    ),
    "kite": _k(
        "shape kite 0 1 2 3",
        "{0}{1}{2}{3} is a kite with {0}{1} = {0}{3} and {2}{1} = {2}{3}",
        "kite {0}{1}{2}{3}, {0}{1} = {0}{3}, {2}{1} = {2}{3}",
    ),
    "cyclic_quadrilateral": _k(
        "shape cyclic_quadrilateral 0 1 2 3",
        "{0}{1}{2}{3} is inscribed in a circle",
        "{0}{1}{2}{3} cyclic",
    ),
    "altitude": _k(
        "perp 0 1 2 3, coll 1 2 3",
        (
            "{0}{1} is the altitude from {0} to {2}{3}",
            "{1} is the foot of the perpendicular from {0} to {2}{3}",
        ),
        "{0}{1} ⊥ {2}{3} at {1}",
    ),
    "median": _k(
        "midp 1 2 3",
        (
            "{0}{1} is the median from {0}, so {1} is the midpoint of {2}{3}",
            "{1} is the midpoint of {2}{3} and {0}{1} is a median",
        ),
        "median {0}{1}, {1} midpoint of {2}{3}",
    ),
    "bisector": _k(
        "eqangle_plain 2 0 1 1 0 3, coll 1 2 3",
        (
            "{0}{1} bisects ∠{2}{0}{3} and meets {2}{3} at {1}",
            "{1} on {2}{3} with ∠{2}{0}{1} = ∠{1}{0}{3}",
        ),
        "∠{2}{0}{1} = ∠{1}{0}{3}, {1} ∈ {2}{3}",
    ),
    "midpoint": _k(
        "midp 0 1 2",
        ("{0} is the midpoint of {1}{2}", "{0} bisects segment {1}{2}"),
        "{0} midpoint of {1}{2}",
    ),
    "parallel": _k("para 0 1 2 3", ("{0}{1} is parallel to {2}{3}", "{0}{1} ∥ {2}{3}"), "{0}{1} ∥ {2}{3}"),
    "perpendicular": _k("perp 0 1 2 3", "{0}{1} is perpendicular to {2}{3}", "{0}{1} ⊥ {2}{3}"),
    "equal": _k("cong 0 1 2 3", "{0}{1} = {2}{3}", "{0}{1} = {2}{3}"),
    "on_segment": _k("coll 0 1 2", ("{0} lies on {1}{2}", "{0} is a point on line {1}{2}"), "{0} ∈ {1}{2}"),
    "intersection": _k("coll 0 1 2, coll 0 3 4", "{1}{2} and {3}{4} meet at {0}", "{1}{2} ∩ {3}{4} = {0}"),
    "circumcentre": _k(
        "circle 0 1 2 3",
        (
            "{0} is the centre of the circle through {1}, {2} and {3}",
            "the circumcircle of triangle {1}{2}{3} has centre {0}",
        ),
        "{0} circumcentre of △{1}{2}{3}",
    ),
    "incentre": _k(
        "eqangle_plain 2 1 0 0 1 3, eqangle_plain 1 2 0 0 2 3",
        (
            "{0} is the incentre of triangle {1}{2}{3}",
            "the angle bisectors of triangle {1}{2}{3} meet at {0}",
        ),
        "{0} incentre of △{1}{2}{3}",
    ),
    "touch": _k(
        "perp 0 1 2 3, coll 1 2 3, drawn_circle 0 1",
        "circle {0} touches {2}{3} at {1}",
        "⊙{0} touches {2}{3} at {1}",
    ),
    "centroid": _k(
        "centroid 0 1 2 3",
        (
            "{0} is the centroid of triangle {1}{2}{3}",
            "the medians of triangle {1}{2}{3} meet at {0}",
        ),
        "{0} centroid of △{1}{2}{3}",
    ),
    "orthocentre": _k(
        "perp 0 1 2 3, perp 0 2 1 3",
        (
            "{0} is the orthocentre of triangle {1}{2}{3}",
            "the altitudes of triangle {1}{2}{3} meet at {0}",
        ),
        "{0} orthocentre of △{1}{2}{3}",
    ),
    "on_circle": _k(
        "drawn_circle 1 0", ("{0} lies on circle {1}", "{0} is a point on circle {1}"), "{0} on ⊙{1}"
    ),
    "chord": _k("drawn_circle 2 0 1", "{0}{1} is a chord of circle {2}", "chord {0}{1} of ⊙{2}"),
    "diameter": _k(
        "midp 2 0 1, drawn_circle 2 0 1",
        (
            "{0}{1} is a diameter of circle {2}",
            "{0}{1} is a diameter of the circle with centre {2}",
        ),
        "diameter {0}{1} of ⊙{2}",
    ),
    "tangent": _k(
        "perp 0 1 1 2, drawn_circle 2 1",
        ("{0}{1} is tangent to circle {2} at {1}", "line {0}{1} touches circle {2} at {1}"),
        "{0}{1} tangent to ⊙{2} at {1}",
    ),
    "secant": _k(
        "coll 0 1 2, drawn_circle 3 1 2",
        "line {0}{1} cuts circle {3} again at {2}",
        "secant {0}{1}{2} of ⊙{3}",
    ),
    "concyclic": _k(
        "cyclic 0 1 2 3",
        ("{0}, {1}, {2} and {3} lie on one circle", "one circle passes through {0}, {1}, {2} and {3}"),
        "{0}, {1}, {2}, {3} concyclic",
    ),
    "ratio": _k(
        "rconst 0 1 2 3 4",
        ("{0}{1} : {2}{3} = {r}", "the ratio of {0}{1} to {2}{3} is {r}"),
        "{0}{1} : {2}{3} = {r}",
    ),
    "length": _k("length 0 1 2", ("{0}{1} = {v}", "the length of {0}{1} is {v}"), "{0}{1} = {v}"),
    "angle": _k(
        "angle 0 1 2 3",
        ("∠{0}{1}{2} = {v}°", "the angle {0}{1}{2} measures {v}°"),
        "∠{0}{1}{2} = {v}°",
    ),
}


@dataclass(frozen=True)
class Claim:
    """One statement of a caption: a kind from :data:`CLAIM_KINDS` and its arguments (point
    names; for ``length`` and ``angle`` a sympy value string last)."""

    kind: str
    args: tuple[str, ...]

    def facts(self) -> tuple[Fact, ...]:
        """The facts this claim asserts, with point names substituted. Raises KeyError for an
        unknown kind. Cached (the verifier and the plugins ask for the same claims' facts once
        per candidate)."""
        if isinstance(self.kind, str) and isinstance(self.args, tuple):
            return _facts(self.kind, self.args)
        return _facts.__wrapped__(self.kind, tuple(self.args))

    @property
    def points(self) -> frozenset[str]:
        """The names of the points the claim's facts use (its literal values left out)."""
        return frozenset(p for f in self.facts() for p in f.points)

    def holds(self, scene: Scene, tol: float = CLAIM_TOL) -> bool:
        """True if every fact of the claim has residual ≤ ``tol`` on ``scene``."""
        return all(residual(f, scene) <= tol for f in self.facts())

    def text(self, style: str, variant: int = 0) -> str:
        """The claim in words (``descriptive`` variants, or the terse form for other styles)."""
        kind = CLAIM_KINDS[self.kind]
        values = {}
        if self.kind in ("length", "angle"):
            values["v"] = format_literal(self.args[-1])
        elif self.kind == "ratio":
            values["r"] = ratio_text(self.args[-1])
        template = kind.descriptive[variant % len(kind.descriptive)] if style == "descriptive" else kind.terse
        return template.format(*self.args, **values)

    def to_json(self) -> list[str]:
        """``[kind, *args]``."""
        return [self.kind, *self.args]


def ratio_text(value: str) -> str:
    """A positive rational as a caption words a ratio: ``1/2`` → ``1 : 2``, ``3`` → ``3 : 1``.
    Raises ValueError for a value that is not a positive rational."""
    import sympy

    from geoforge.exact import parse_value

    q = parse_value(value)
    if not (isinstance(q, sympy.Rational) and q > 0):
        raise ValueError(f"a ratio claim needs a positive rational, got {value!r}")
    return f"{q.p} : {q.q}"


@dataclass(frozen=True)
class Target:
    """A value a question may ask for: ``kind`` is ``length`` (points a, b) or ``angle``
    (points a, b, c; the angle at b, in degrees)."""

    kind: str
    points: tuple[str, ...]

    def measure(self, scene: Scene) -> float:
        """The value on ``scene``: a length in given units, or degrees."""
        p = [scene.points[n] for n in self.points]
        if self.kind == "length":
            return float(np.hypot(*(p[0] - p[1]))) * scene.unit
        u, v = p[0] - p[1], p[2] - p[1]
        return math.degrees(abs(math.atan2(u[0] * v[1] - u[1] * v[0], float(np.dot(u, v)))))


@lru_cache(maxsize=65536)
def _facts(kind: str, args: tuple[str, ...]) -> tuple[Fact, ...]:
    """:meth:`Claim.facts` of the claim ``(kind, args)``."""
    out = []
    for f in CLAIM_KINDS[kind].facts:
        name, *idx = f.split()
        out.append(Fact(name, tuple(a if not a.isdigit() else args[int(a)] for a in idx)))
    return tuple(out)
