"""The audit's own judge of geoforge claims: a falsity test per claim kind with the
verifier's margins, and a canonical form of claims, written independently of
geoforge.verify, geoforge.facts and geoforge.caption (see scripts/audit_negatives.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

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
