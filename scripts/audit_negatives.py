#!/usr/bin/env python
"""Audit the hard negatives stored in a geoforge corpus, independently of the verifier.

Usage::

    python scripts/audit_negatives.py CORPUS_DIR [--limit 1000] [--json]

It reads only the WebDataset shards (``CORPUS_DIR/shard-*.tar``). The only geoforge code it
uses is the figure itself: :func:`geoforge.program.parse_program` and
:func:`geoforge.realise.realise`. Everything that *judges* (is a claim false by a clear
margin, is a caption a paraphrase, do two images differ) is written here on plain numpy
coordinates, without :mod:`geoforge.verify`, :mod:`geoforge.facts` or
:mod:`geoforge.caption`, so that a bug there cannot hide itself.

Checks, for up to ``--limit`` negatives of each kind (image, caption, retrieval), taking the
samples in order:

* image negative: its PNG differs from the positive's in at least :data:`PIXEL_SHARE` of the
  pixels (grey levels differing by more than :data:`PIXEL_LEVEL`); its program re-realises
  (seed = the positive's ``realise_seed``, ``max_tries=3``, ``reference`` = the positive's
  points); at least one claim of the positive caption is false on it by the margins; and every
  claim the verifier recorded as ``violated`` is false by this script's measure;
* caption and retrieval negative: the positive re-realises to its stored points (to
  :data:`POINT_TOL`); at least one of the negative's claims is false on the positive figure;
  every claim recorded as ``violated`` is false; and its claims are not a paraphrase of the
  positive's (same set of claims up to the symmetries of each claim kind).

Margins: an angle off by at least :data:`ANGLE_MARGIN` degrees, a length or ratio off by at
least :data:`REL_MARGIN` (relative to the larger), or a point missing. Lengths are in the
given units of the positive figure (the first ``given length a b V`` fixes units = V/|ab|).

Prints a table per kind and plugin and every failure (key, kind, index, plugin, reason), or
the same as JSON with ``--json``. As a check on itself, it also judges each positive claim on
its own figure (none may be false). Exits 1 if any negative fails (or a positive claim is
false), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from geoforge.program import parse_program
from geoforge.realise import realise

#: An angle that differs from the claimed one by at least this many degrees is false.
ANGLE_MARGIN = 8.0
#: Two lengths (or a length and a claimed value) that differ by at least this fraction of the
#: larger are unequal.
REL_MARGIN = 0.12
#: A pixel differs when its grey level changes by more than this.
PIXEL_LEVEL = 64
#: An image negative must differ in at least this fraction of the pixels.
PIXEL_SHARE = 0.001
#: The re-realised positive must reproduce the stored coordinates to this (diagram units).
POINT_TOL = 1e-9
#: Vectors shorter than this fraction of the figure's size have no direction.
_EPS = 1e-9

KINDS = ("image", "caption", "retrieval")


# --------------------------------------------------------------------------- figure geometry


@dataclass
class Figure:
    """Named float64 points of one realised figure, and the factor from diagram units to the
    units of the givens."""

    points: dict[str, np.ndarray]
    unit: float = 1.0

    @property
    def scale(self) -> float:
        if len(self.points) < 2:
            return 1.0
        xy = np.array(list(self.points.values()))
        return max(float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))), 1e-12)

    def missing(self, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if n not in self.points]


def _dist(f: Figure, a: str, b: str) -> float:
    return float(np.hypot(*(f.points[a] - f.points[b])))


def _rel(x: float, y: float) -> float:
    """Relative difference of two non-negative magnitudes, 0 … 1 (0 when both vanish)."""
    top = max(abs(x), abs(y))
    return abs(x - y) / top if top > 0 else 0.0


def _spread(values: list[float]) -> float:
    """Relative difference between the largest and the smallest of ``values``."""
    return _rel(max(values), min(values))


def _direction(f: Figure, a: str, b: str) -> np.ndarray | None:
    v = f.points[b] - f.points[a]
    return v if float(np.hypot(*v)) > _EPS * f.scale else None


def _vec_angle(u: np.ndarray, v: np.ndarray) -> float:
    """Undirected angle between two vectors, degrees in [0, 180]."""
    cross = float(u[0] * v[1] - u[1] * v[0])
    return math.degrees(abs(math.atan2(cross, float(np.dot(u, v)))))


def _line_angle(f: Figure, a: str, b: str, c: str, d: str) -> float:
    """Angle between lines ab and cd, degrees in [0, 90]; NaN if either is undefined."""
    u, v = _direction(f, a, b), _direction(f, c, d)
    if u is None or v is None:
        return math.nan
    t = _vec_angle(u, v)
    return min(t, 180.0 - t)


def _vertex_angle(f: Figure, a: str, b: str, c: str) -> float:
    """Undirected angle abc at b, degrees in [0, 180]; NaN if undefined."""
    u, v = _direction(f, b, a), _direction(f, b, c)
    if u is None or v is None:
        return math.nan
    return _vec_angle(u, v)


def _off_line(f: Figure, p: str, a: str, b: str) -> float:
    """How far ``p`` is off line ab, as the largest angle between line ab and the line from
    a (or b) to p, degrees in [0, 90]; a view from an endpoint that p coincides with is
    skipped (0 when p coincides with both)."""
    views = [_line_angle(f, a, b, a, p), _line_angle(f, b, a, b, p)]
    views = [v for v in views if not math.isnan(v)]
    return max(views, default=0.0)


def _turns(f: Figure, names: tuple[str, ...]) -> list[float]:
    """Signed turning angle (degrees, −180 … 180) at each vertex of the closed polygon."""
    out = []
    n = len(names)
    for i in range(n):
        a, b, c = f.points[names[i - 1]], f.points[names[i]], f.points[names[(i + 1) % n]]
        u, v = b - a, c - b
        out.append(math.degrees(math.atan2(float(u[0] * v[1] - u[1] * v[0]), float(np.dot(u, v)))))
    return out


# --------------------------------------------------------------------------- falsity tests

#: A verdict: (false by the margins?, why, in words with the measured numbers).
Verdict = tuple[bool, str]


def _angle_off(name: str, measured: float, wanted: float) -> Verdict:
    off = abs(measured - wanted)
    return (not math.isnan(off) and off >= ANGLE_MARGIN), f"{name} = {measured:.2f}° (want {wanted:g}°)"


def _unequal(name: str, x: float, y: float) -> Verdict:
    r = _rel(x, y)
    return r >= REL_MARGIN, f"{name}: {x:.4g} vs {y:.4g} ({100 * r:.1f}% apart)"


def _any(*verdicts: Verdict) -> Verdict:
    """False if any part is false; the reason lists the parts that are (or all of them)."""
    bad = [why for ok, why in verdicts if ok]
    if bad:
        return True, "; ".join(bad)
    return False, "; ".join(why for _, why in verdicts)


def _coll(f: Figure, p: str, a: str, b: str) -> Verdict:
    off = _off_line(f, p, a, b)
    return off >= ANGLE_MARGIN, f"{p} off line {a}{b} by {off:.2f}°"


def _para(f: Figure, a: str, b: str, c: str, d: str) -> Verdict:
    t = _line_angle(f, a, b, c, d)
    return _angle_off(f"∠({a}{b},{c}{d})", t, 0.0)


def _perp(f: Figure, a: str, b: str, c: str, d: str) -> Verdict:
    t = _line_angle(f, a, b, c, d)
    return _angle_off(f"∠({a}{b},{c}{d})", t, 90.0)


def _cong(f: Figure, a: str, b: str, c: str, d: str) -> Verdict:
    return _unequal(f"|{a}{b}| vs |{c}{d}|", _dist(f, a, b), _dist(f, c, d))


def _midp(f: Figure, m: str, a: str, b: str) -> Verdict:
    return _any(
        _coll(f, m, a, b),
        _cong(f, a, m, m, b),
        _unequal(f"|{a}{m}| vs |{a}{b}|/2", _dist(f, a, m), _dist(f, a, b) / 2),
    )


def _degenerate(f: Figure, a: str, b: str, c: str) -> Verdict:
    angles = [_vertex_angle(f, c, a, b), _vertex_angle(f, a, b, c), _vertex_angle(f, b, c, a)]
    if any(math.isnan(t) for t in angles):
        return True, f"{a}{b}{c} has coincident vertices"
    top = max(angles)
    return top >= 180.0 - ANGLE_MARGIN, f"{a}{b}{c}: largest angle {top:.2f}°"


def _convex(f: Figure, names: tuple[str, ...]) -> Verdict:
    """Not convex by a margin: self-intersecting (turns cancel) or a turn of at least the angle
    margin against the polygon's orientation, or a vertex coinciding with the next."""
    if any(_direction(f, names[i - 1], names[i]) is None for i in range(len(names))):
        return True, f"{''.join(names)} has coincident vertices"
    turns = _turns(f, names)
    total = sum(turns)
    if abs(total) < 180.0:
        return True, f"{''.join(names)} is self-intersecting (turns sum to {total:.1f}°)"
    sign = 1.0 if total > 0 else -1.0
    worst = max(-sign * t for t in turns)
    return worst >= ANGLE_MARGIN, f"{''.join(names)}: reflex turn {max(worst, 0):.2f}°"


def _interior(f: Figure, names: tuple[str, ...]) -> list[tuple[str, float]]:
    n = len(names)
    return [
        (
            f"∠{names[i - 1]}{names[i]}{names[(i + 1) % n]}",
            _vertex_angle(f, names[i - 1], names[i], names[(i + 1) % n]),
        )
        for i in range(n)
    ]


def _sides(f: Figure, names: tuple[str, ...]) -> list[float]:
    n = len(names)
    return [_dist(f, names[i], names[(i + 1) % n]) for i in range(n)]


def _all_equal(label: str, values: list[float]) -> Verdict:
    r = _spread(values)
    return r >= REL_MARGIN, f"{label} {', '.join(f'{v:.4g}' for v in values)} ({100 * r:.1f}% apart)"


def _parallelogram_parts(f: Figure, a: str, b: str, c: str, d: str) -> list[Verdict]:
    return [
        _para(f, a, b, c, d),
        _para(f, b, c, d, a),
        _cong(f, a, b, c, d),
        _cong(f, b, c, d, a),
    ]


def _shape(kind: str, f: Figure, args: tuple[str, ...]) -> Verdict:
    q = tuple(args)
    a, b, c, d = q
    convex = _convex(f, q)
    right = [_angle_off(n, t, 90.0) for n, t in _interior(f, q)]
    if kind == "square":
        return _any(convex, _all_equal("sides", _sides(f, q)), *right)
    if kind == "rectangle":
        return _any(convex, *_parallelogram_parts(f, *q), *right)
    if kind == "rhombus":
        return _any(convex, _all_equal("sides", _sides(f, q)), *_parallelogram_parts(f, *q))
    if kind == "parallelogram":
        return _any(convex, *_parallelogram_parts(f, *q))
    if kind == "trapezoid":
        return _any(convex, _para(f, a, b, c, d))
    if kind == "isosceles_trapezoid":
        return _any(
            convex,
            _para(f, a, b, c, d),
            _cong(f, b, c, d, a),
            _angle_off(f"∠{d}{a}{b} vs ∠{a}{b}{c}", _vertex_angle(f, d, a, b), _vertex_angle(f, a, b, c)),
            _angle_off(f"∠{b}{c}{d} vs ∠{c}{d}{a}", _vertex_angle(f, b, c, d), _vertex_angle(f, c, d, a)),
        )
    if kind == "kite":
        return _any(convex, _cong(f, a, b, a, d), _cong(f, c, b, c, d))
    if kind == "cyclic_quadrilateral":
        angles = [t for _, t in _interior(f, q)]
        return _any(
            convex,
            _angle_off(f"∠{a} + ∠{c}", angles[0] + angles[2], 180.0),
            _angle_off(f"∠{b} + ∠{d}", angles[1] + angles[3], 180.0),
            *[_off_circle(f, q[k], *(q[(k + j) % 4] for j in (1, 2, 3))) for k in range(4)],
        )
    raise KeyError(kind)


SHAPES = (
    "square",
    "rectangle",
    "rhombus",
    "parallelogram",
    "trapezoid",
    "isosceles_trapezoid",
    "kite",
    "cyclic_quadrilateral",
)


def _shape_claim(kind: str, f: Figure, *args: str) -> Verdict:
    return _shape(kind, f, args)


def _off_circle(f: Figure, x: str, a: str, b: str, c: str) -> Verdict:
    """``x`` is on the circle through a, b, c: false when its distance from that circle's
    centre and the radius differ by the length margin (never false if abc is flat)."""
    pa, pb, pc = f.points[a], f.points[b], f.points[c]
    u, w = pb - pa, pc - pa
    den = 2.0 * float(u[0] * w[1] - u[1] * w[0])
    if abs(den) < 1e-12 * f.scale**2:
        return False, f"{a}{b}{c} collinear: no circle"
    uu, ww = float(np.dot(u, u)), float(np.dot(w, w))
    centre = pa + np.array([(w[1] * uu - u[1] * ww) / den, (u[0] * ww - w[0] * uu) / den])
    radius = float(np.hypot(*(pa - centre)))
    return _unequal(
        f"{x} vs circle {a}{b}{c}: distance to centre vs radius",
        float(np.hypot(*(f.points[x] - centre))),
        radius,
    )


def _triangle(kind: str, f: Figure, a: str, b: str, c: str) -> Verdict:
    flat = _degenerate(f, a, b, c)
    if kind == "triangle":
        return flat
    if kind == "isosceles":
        return _any(
            flat,
            _cong(f, a, b, a, c),
            _angle_off(f"∠{a}{b}{c} vs ∠{a}{c}{b}", _vertex_angle(f, a, b, c), _vertex_angle(f, a, c, b)),
        )
    if kind == "equilateral":
        return _any(
            flat,
            _all_equal("sides", _sides(f, (a, b, c))),
            *[_angle_off(n, t, 60.0) for n, t in _interior(f, (a, b, c))],
        )
    if kind == "right":
        return _any(flat, _angle_off(f"∠{b}{a}{c}", _vertex_angle(f, b, a, c), 90.0))
    raise KeyError(kind)


def _foot(f: Figure, v: str, d: str, p: str, q: str) -> Verdict:
    """d is on line pq and vd ⊥ pq (altitude foot, incircle touch point)."""
    return _any(_perp(f, v, d, p, q), _coll(f, d, p, q))


def _split(f: Figure, v: str, x: str, i: str, y: str) -> Verdict:
    """Ray vi bisects ∠xvy: false when twice the angle between ray vi and the true (internal)
    bisector reaches the margin. Inside the angle that is exactly |∠xvi − ∠ivy|; outside it,
    it also counts how far the ray has left the angle."""
    ux, ui, uy = _direction(f, v, x), _direction(f, v, i), _direction(f, v, y)
    if ux is None or ui is None or uy is None:
        return False, f"∠{x}{v}{i}/∠{i}{v}{y} undefined (coincident points)"
    ux, ui, uy = (w / float(np.hypot(*w)) for w in (ux, ui, uy))
    mid = ux + uy
    if float(np.hypot(*mid)) < 1e-9:  # a straight angle: either perpendicular, the nearer one
        mid = np.array([-ux[1], ux[0]])
        mid = mid if float(np.dot(mid, ui)) >= 0 else -mid
    dev = _vec_angle(mid, ui)
    left, right = _vertex_angle(f, x, v, i), _vertex_angle(f, i, v, y)
    return 2 * dev >= ANGLE_MARGIN, (
        f"{v}{i} is {dev:.2f}° off the bisector of ∠{x}{v}{y} (∠{x}{v}{i} = {left:.2f}°, "
        f"∠{i}{v}{y} = {right:.2f}°)"
    )


def _bisector(f: Figure, v: str, d: str, p: str, q: str) -> Verdict:
    return _any(_split(f, v, p, d, q), _coll(f, d, p, q))


def _centroid(f: Figure, g: str, a: str, b: str, c: str) -> Verdict:
    parts = []
    for v, x, y in ((a, b, c), (b, c, a), (c, a, b)):
        m = (f.points[x] + f.points[y]) / 2
        tmp = Figure({**f.points, "__m": m}, f.unit)
        parts.append(_coll(tmp, g, v, "__m"))
        parts.append(_unequal(f"|{v}{g}| vs 2/3 median", _dist(tmp, v, g), 2 / 3 * _dist(tmp, v, "__m")))
    return _any(*parts)


def _orthocentre(f: Figure, h: str, a: str, b: str, c: str) -> Verdict:
    return _any(*[_perp(f, v, h, x, y) for v, x, y in ((a, b, c), (b, c, a), (c, a, b))])


def _value(text: str) -> float:
    """The float value of a claim's sympy value string (``6``, ``2*sqrt(3)``, ``135/2``)."""
    import sympy

    return float(sympy.sympify(text))


def _length(f: Figure, a: str, b: str, value: str) -> Verdict:
    return _unequal(f"|{a}{b}| (given units) vs {value}", _dist(f, a, b) * f.unit, _value(value))


def _angle(f: Figure, a: str, b: str, c: str, value: str) -> Verdict:
    return _angle_off(f"∠{a}{b}{c}", _vertex_angle(f, a, b, c), _value(value))


#: kind → (number of point arguments, test on a figure with all of them present).
JUDGES: dict[str, tuple[int, Callable[..., Verdict]]] = {
    "triangle": (3, lambda f, *a: _triangle("triangle", f, *a)),
    "isosceles": (3, lambda f, *a: _triangle("isosceles", f, *a)),
    "equilateral": (3, lambda f, *a: _triangle("equilateral", f, *a)),
    "right": (3, lambda f, *a: _triangle("right", f, *a)),
    **{k: (4, partial(_shape_claim, k)) for k in SHAPES},
    "altitude": (4, _foot),
    "touch": (4, _foot),
    "median": (4, lambda f, v, m, p, q: _midp(f, m, p, q)),
    "bisector": (4, _bisector),
    "midpoint": (3, _midp),
    "parallel": (4, _para),
    "perpendicular": (4, _perp),
    "equal": (4, _cong),
    "on_segment": (3, _coll),
    "intersection": (5, lambda f, m, a, c, b, d: _any(_coll(f, m, a, c), _coll(f, m, b, d))),
    "circumcentre": (
        4,
        lambda f, o, a, b, c: _all_equal(f"|{o}{a}|,|{o}{b}|,|{o}{c}|", [_dist(f, o, x) for x in (a, b, c)]),
    ),
    "incentre": (
        4,
        lambda f, i, a, b, c: _any(*[_split(f, v, x, i, y) for v, x, y in ((a, b, c), (b, c, a), (c, a, b))]),
    ),
    "centroid": (4, _centroid),
    "orthocentre": (4, _orthocentre),
    "on_circle": (3, lambda f, x, o, a: _cong(f, o, x, o, a)),
    "chord": (3, lambda f, p, q, o: _cong(f, o, p, o, q)),
    "diameter": (3, lambda f, a, b, o: _midp(f, o, a, b)),
    "tangent": (3, lambda f, p, x, o: _perp(f, x, p, x, o)),
    "secant": (4, lambda f, p, b, c, o: _any(_coll(f, p, b, c), _cong(f, o, b, o, c))),
    "length": (2, _length),
    "angle": (3, _angle),
}


class UnknownClaim(ValueError):
    """A claim kind (or arity) this audit does not know."""


def judge(claim: list[str] | tuple[str, ...], fig: Figure) -> Verdict:
    """Is ``claim`` (``[kind, *args]``) false on ``fig`` by the margins? Returns the verdict and
    why. A claim naming a point the figure lacks is false. Raises UnknownClaim."""
    kind, *args = claim
    if kind not in JUDGES:
        raise UnknownClaim(f"unknown claim kind {kind!r}")
    npoints, test = JUDGES[kind]
    want = npoints + (1 if kind in ("length", "angle") else 0)
    if len(args) != want:
        raise UnknownClaim(f"claim {kind} takes {want} arguments, got {len(args)}")
    gone = fig.missing(tuple(args[:npoints]))
    if gone:
        return True, f"point {', '.join(gone)} missing"
    return test(fig, *args)


# --------------------------------------------------------------------------- paraphrases

_DIHEDRAL4 = [(1, 2, 3, 0), (3, 2, 1, 0)]
_SEG_PAIRS = [(1, 0, 2, 3), (2, 3, 0, 1)]
_TRI_CENTRE = [(0, 2, 1, 3), (0, 1, 3, 2)]
#: kind → generators of the argument permutations that leave the claim's meaning unchanged
#: (over the point arguments; a length's or angle's value stays last).
SYMMETRIES: dict[str, list[tuple[int, ...]]] = {
    "triangle": [(1, 0, 2), (0, 2, 1)],
    "equilateral": [(1, 0, 2), (0, 2, 1)],
    "isosceles": [(0, 2, 1)],
    "right": [(0, 2, 1)],
    "square": _DIHEDRAL4,
    "rectangle": _DIHEDRAL4,
    "rhombus": _DIHEDRAL4,
    "parallelogram": _DIHEDRAL4,
    "cyclic_quadrilateral": _DIHEDRAL4,
    "trapezoid": [(1, 0, 3, 2), (2, 3, 0, 1)],
    "isosceles_trapezoid": [(1, 0, 3, 2), (2, 3, 0, 1)],
    "kite": [(0, 3, 2, 1), (2, 1, 0, 3)],
    "altitude": [(0, 1, 3, 2)],
    "touch": [(0, 1, 3, 2)],
    "median": [(0, 1, 3, 2)],
    "bisector": [(0, 1, 3, 2)],
    "midpoint": [(0, 2, 1)],
    "parallel": _SEG_PAIRS,
    "perpendicular": _SEG_PAIRS,
    "equal": _SEG_PAIRS,
    "on_segment": [(0, 2, 1)],
    "intersection": [(0, 2, 1, 3, 4), (0, 1, 2, 4, 3), (0, 3, 4, 1, 2)],
    "circumcentre": _TRI_CENTRE,
    "incentre": _TRI_CENTRE,
    "centroid": _TRI_CENTRE,
    "orthocentre": _TRI_CENTRE,
    "on_circle": [(2, 1, 0)],
    "chord": [(1, 0, 2)],
    "diameter": [(1, 0, 2)],
    "tangent": [],
    "secant": [],
    "length": [(1, 0)],
    "angle": [(2, 1, 0)],
}


def _orbit(args: tuple[str, ...], gens: list[tuple[int, ...]]) -> set[tuple[str, ...]]:
    seen = {args}
    todo = [args]
    while todo:
        cur = todo.pop()
        for g in gens:
            nxt = tuple(cur[i] for i in g)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def canonical(claim: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A claim's canonical form: the least argument order among those meaning the same, with
    a length's or angle's value as a rounded number."""
    kind, *args = claim
    tail: tuple[str, ...] = ()
    if kind in ("length", "angle") and args:
        try:
            tail = (f"{_value(args[-1]):.9g}",)
        except Exception:
            tail = (args[-1],)
        args = args[:-1]
    return (kind, *min(_orbit(tuple(args), SYMMETRIES.get(kind, []))), *tail)


def claim_set(claims: list[list[str]]) -> frozenset[tuple[str, ...]]:
    return frozenset(canonical(c) for c in claims)


# --------------------------------------------------------------------------- corpus reading


@dataclass
class Record:
    key: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads(self.files["json"])


def read_records(corpus: Path) -> Iterator[Record]:
    """The samples of every ``shard-*.tar`` under ``corpus``, in shard and member order."""
    for shard in sorted(corpus.glob("shard-*.tar")):
        current: Record | None = None
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                key, _, ext = name.partition(".")
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = Record(key)
                data = tar.extractfile(member)
                current.files[ext] = data.read() if data else b""
        if current is not None:
            yield current


def _grey(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("L"), dtype=np.int16)


def pixel_share(a: bytes, b: bytes) -> float:
    """Fraction of pixels whose grey level differs by more than :data:`PIXEL_LEVEL` (1.0 if the
    sizes differ)."""
    x, y = _grey(a), _grey(b)
    if x.shape != y.shape:
        return 1.0
    return float(np.mean(np.abs(x - y) > PIXEL_LEVEL))


def _stored_points(meta: dict[str, Any]) -> dict[str, np.ndarray]:
    return {p["name"]: np.array([float(p["x"]), float(p["y"])]) for p in meta["points"]}


def positive_unit(program_text: str, points: dict[str, np.ndarray]) -> float:
    """Given units per diagram unit: the first ``given length a b V`` fixes V/|ab|; 1 if none."""
    program = parse_program(program_text)
    for st in program.statements:
        if st.kind == "given" and st.name == "length":
            a, b, v = st.args
            d = float(np.hypot(*(points[a] - points[b])))
            return _value(v) / d if d > 0 else math.inf
    return 1.0


# --------------------------------------------------------------------------- the audit


@dataclass
class Tally:
    audited: int = 0
    passed: int = 0
    failed: int = 0

    def add(self, ok: bool) -> None:
        self.audited += 1
        if ok:
            self.passed += 1
        else:
            self.failed += 1


@dataclass
class Report:
    corpus: str
    limit: int
    kinds: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    plugins: dict[str, dict[str, Tally]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Positive claims this audit finds false on their own figure (an audit or generator bug).
    positive_failures: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    pixel_diffs: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, kind: str, key: str, index: int, plugin: str, reasons: list[str]) -> None:
        ok = not reasons
        self.kinds[kind].add(ok)
        self.plugins[kind].setdefault(plugin, Tally()).add(ok)
        if not ok:
            self.failures.append(
                {"key": key, "kind": kind, "index": index, "plugin": plugin, "reason": "; ".join(reasons)}
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "limit": self.limit,
            "samples_read": self.samples,
            "seconds": round(self.seconds, 2),
            "mean_pixel_diff": round(float(np.mean(self.pixel_diffs)), 5) if self.pixel_diffs else None,
            "kinds": {k: vars(t) for k, t in self.kinds.items()},
            "plugins": {k: {p: vars(t) for p, t in sorted(v.items())} for k, v in self.plugins.items()},
            "failures": self.failures,
            "positive_failures": self.positive_failures,
            "ok": not self.failures and not self.positive_failures,
        }


def _judge_all(claims: list[list[str]], fig: Figure) -> tuple[list[tuple[list[str], Verdict]], list[str]]:
    """Each claim's verdict on ``fig``, and the problems met (unknown kinds)."""
    out, problems = [], []
    for c in claims:
        try:
            out.append((c, judge(c, fig)))
        except (UnknownClaim, ValueError, TypeError) as e:
            problems.append(f"cannot judge claim {' '.join(c)}: {e}")
    return out, problems


def _violated_not_false(violated: list[list[str]], fig: Figure) -> list[str]:
    """Reasons for each recorded violation (``[kind, *args, v]``) that is not false on ``fig``."""
    out = []
    for row in violated:
        claim = row[:-1]
        try:
            bad, why = judge(claim, fig)
        except (UnknownClaim, ValueError, TypeError) as e:
            out.append(f"cannot judge violated claim {' '.join(claim)}: {e}")
            continue
        if not bad:
            out.append(
                f"recorded as violated ({row[-1]}) but holds within margins: {' '.join(claim)} [{why}]"
            )
    return out


def _audit_image(
    neg: dict[str, Any], rec: Record, meta: dict[str, Any], pos_fig: Figure, report: Report
) -> list[str]:
    reasons: list[str] = []
    png = rec.files.get(str(neg.get("file", "")))
    if png is None:
        reasons.append(f"image {neg.get('file')!r} is not in the shard")
    else:
        share = pixel_share(rec.files["png"], png)
        report.pixel_diffs.append(share)
        if share < PIXEL_SHARE:
            reasons.append(f"not visibly different: {share:.5f} of pixels differ by > {PIXEL_LEVEL}")
    try:
        program = parse_program(str(neg["program"]))
        scene = realise(program, seed=int(meta["realise_seed"]), max_tries=3, reference=pos_fig.points)
    except Exception as e:  # the figure does not exist: any geoforge error is a failure here
        reasons.append(f"negative does not realise: {type(e).__name__}: {e}")
        return reasons
    fig = Figure({n: np.asarray(p, dtype=np.float64) for n, p in scene.points.items()}, pos_fig.unit)
    verdicts, problems = _judge_all(meta["caption"]["claims"], fig)
    reasons.extend(problems)
    if not any(bad for _, (bad, _) in verdicts):
        detail = " | ".join(f"{' '.join(c)}: {why}" for c, (_, why) in verdicts)
        reasons.append(f"every positive claim still holds on the negative within margins [{detail}]")
    reasons.extend(_violated_not_false(neg.get("violated", []), fig))
    return reasons


def _audit_caption(
    neg: dict[str, Any], pos_fig: Figure, pos_claims: frozenset[tuple[str, ...]], reproduced: str | None
) -> list[str]:
    reasons = [reproduced] if reproduced else []
    claims = neg.get("claims", [])
    verdicts, problems = _judge_all(claims, pos_fig)
    reasons.extend(problems)
    if not any(bad for _, (bad, _) in verdicts):
        detail = " | ".join(f"{' '.join(c)}: {why}" for c, (_, why) in verdicts)
        reasons.append(f"every claim holds on the positive within margins [{detail}]")
    if claim_set(claims) == pos_claims:
        reasons.append("paraphrase of the positive (same claims up to symmetry)")
    reasons.extend(_violated_not_false(neg.get("violated", []), pos_fig))
    return reasons


def _positive(meta: dict[str, Any]) -> tuple[Figure, str | None]:
    """The positive figure (re-realised) and why it does not reproduce the stored points."""
    stored = _stored_points(meta)
    unit = positive_unit(str(meta["program"]), stored)
    try:
        scene = realise(parse_program(str(meta["program"])), seed=int(meta["realise_seed"]))
    except Exception as e:
        return Figure(stored, unit), f"positive does not realise: {type(e).__name__}: {e}"
    points = {n: np.asarray(p, dtype=np.float64) for n, p in scene.points.items()}
    if set(points) != set(stored):
        return Figure(stored, unit), f"positive realises other points: {sorted(points)} vs {sorted(stored)}"
    worst = max((float(np.max(np.abs(points[n] - stored[n]))) for n in stored), default=0.0)
    if worst > POINT_TOL:
        return Figure(stored, unit), f"positive does not reproduce its stored points (off by {worst:.3g})"
    return Figure(points, unit), None


def audit(corpus: Path, limit: int = 1000) -> Report:
    """Audit up to ``limit`` negatives of each kind in ``corpus``, samples in order."""
    start = time.perf_counter()
    report = Report(str(corpus), limit)
    for rec in read_records(corpus):
        if all(report.kinds[k].audited >= limit for k in KINDS):
            break
        report.samples += 1
        meta = rec.meta
        record = json.loads(meta.get("negatives") or "{}")
        wanted = {k: record.get(k, [])[: max(0, limit - report.kinds[k].audited)] for k in KINDS}
        if not any(wanted.values()):
            continue
        stored = _stored_points(meta)
        if wanted["caption"] or wanted["retrieval"]:
            pos_fig, reproduced = _positive(meta)
        else:
            pos_fig, reproduced = Figure(stored, positive_unit(str(meta["program"]), stored)), None
        image_ref = Figure(stored, pos_fig.unit)
        pos_claims = claim_set(meta["caption"]["claims"])
        for claim, (bad, why) in _judge_all(meta["caption"]["claims"], pos_fig)[0]:
            if bad:
                report.positive_failures.append(
                    {"key": rec.key, "claim": claim, "reason": f"false on its own figure: {why}"}
                )
        for i, neg in enumerate(wanted["image"]):
            reasons = _audit_image(neg, rec, meta, image_ref, report)
            report.add("image", rec.key, i, str(neg.get("plugin")), reasons)
        for kind in ("caption", "retrieval"):
            for i, neg in enumerate(wanted[kind]):
                reasons = _audit_caption(neg, pos_fig, pos_claims, reproduced)
                report.add(kind, rec.key, i, str(neg.get("plugin")), reasons)
    report.seconds = time.perf_counter() - start
    return report


def format_report(report: Report) -> str:
    lines = [f"audit of {report.corpus}: {report.samples} samples read in {report.seconds:.1f} s"]
    lines.append(f"{'kind':<10} {'plugin':<18} {'audited':>8} {'passed':>8} {'failed':>8}")
    for kind in KINDS:
        t = report.kinds[kind]
        lines.append(f"{kind:<10} {'(all)':<18} {t.audited:>8} {t.passed:>8} {t.failed:>8}")
        for plugin, p in sorted(report.plugins[kind].items()):
            lines.append(f"{'':<10} {plugin:<18} {p.audited:>8} {p.passed:>8} {p.failed:>8}")
    if report.pixel_diffs:
        lines.append(f"mean pixel difference of audited image negatives: {np.mean(report.pixel_diffs):.5f}")
    if report.failures:
        lines.append(f"{len(report.failures)} failures:")
        for f in report.failures:
            lines.append(f"  {f['key']} {f['kind']}[{f['index']}] ({f['plugin']}): {f['reason']}")
    else:
        lines.append("no failures")
    for f in report.positive_failures:
        lines.append(f"  positive {f['key']}: {' '.join(f['claim'])}: {f['reason']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="corpus directory holding shard-*.tar")
    parser.add_argument("--limit", type=int, default=1000, help="negatives of each kind to audit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir() or not any(args.corpus.glob("shard-*.tar")):
        print(f"error: {args.corpus}: no shard-*.tar found", file=sys.stderr)
        return 2
    report = audit(args.corpus, args.limit)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        print(format_report(report))
    return 1 if report.failures or report.positive_failures else 0


if __name__ == "__main__":
    sys.exit(main())
