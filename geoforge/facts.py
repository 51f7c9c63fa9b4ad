"""Facts: typed predicates over named points, checked numerically on a Scene with a residual.

The vocabulary is AlphaGeometry's (``google-deepmind/alphageometry``, ``defs.txt`` and
``rules.txt``): ``coll para perp cong eqangle eqratio cyclic midp circle simtri contri``, the
preconditions ``ncoll npara nperp diff``, the constant predicates ``s_angle`` (AlphaGeometry)
and ``aconst rconst lconst`` (Newclid), plus value facts:

* ``length a b v``: |ab| equals ``v`` in the scene's given units (see :attr:`Scene.unit`);
* ``angle a b c v``: the undirected angle ∠abc equals ``v`` degrees;
* ``shape KIND p1 p2 ...``: the points form a ``KIND`` (see :data:`SHAPES`);
* ``centroid g a b c``: g is the centroid of triangle abc;
* ``convex p1 p2 p3 ...``: the polygon is convex, vertices in order;
* ``eqangle_plain a b c d e f``: the plain (undirected, [0°, 180°]) angles ∠abc and ∠def are
  equal, as a caption's "∠ABC = ∠DEF" says (``eqangle`` compares directed angles mod 180°, the
  AlphaGeometry standard, under which an external bisector also "bisects");
* ``drawn_circle o x1 x2 ...``: the points lie on a circle drawn about ``o`` (a caption's
  "circle O"); false when the figure draws no circle about ``o``.

Newclid's goal predicates (``LMCRC/Newclid`` ``rules.txt``, ``Newclid/Newclid``): ``sameclock``
(two triangles have the same orientation), ``sameside a b c x y z`` (a lies on the same side of
b and c as x of y and z), ``obtuse_angle a b c`` (∠abc > 90°), ``simtrir``/``contrir``
(similar/congruent with opposite orientations; ``simtri``/``contri`` accept either),
``r2const``/``l2const`` (squared ratio/length), ``lequation k1 a b k2 c d ... v`` (Σ kᵢ·|pᵢqᵢ| =
v), ``aequation k1 a b c d ... v`` (Σ kᵢ·∠(line, line) = v), and the value-asking ``acompute``,
``rcompute``, ``lcompute``, which hold whenever their value is defined
(:func:`geoforge.goals.answer` gives the value).

A residual is 0 when the fact holds exactly. Its unit depends on the fact's *kind*:

* ``length``: a distance divided by :attr:`Scene.scale` (the diagram's size);
* ``angle``: radians (line directions are compared modulo π, as AlphaGeometry's ``eqangle``);
* ``ratio``: a relative difference of two ratios.

Negated facts (``ncoll``, ``npara``, ``nperp``, ``diff``) have residual 0 when the underlying
fact fails by at least :data:`NEGATION_MARGIN` and the shortfall otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Protocol

import numpy as np

from geoforge.errors import ProgramError
from geoforge.geometry import angle_at, cross, direction, norm, wrap_half_pi

#: How far a negated fact's underlying fact must fail (in that fact's residual unit).
NEGATION_MARGIN = 1e-3


@dataclass(frozen=True)
class Fact:
    """A predicate in AlphaGeometry's vocabulary, e.g. ``Fact("perp", ("a", "h", "b", "c"))``.

    ``args`` are point names, with literal values in the positions :data:`PREDICATES` marks
    (the degrees of ``s_angle``, the value of ``length``, the kind of ``shape``).
    """

    name: str
    args: tuple[str, ...]

    def text(self) -> str:
        """The fact as DSL text: ``name arg1 arg2 ...``."""
        return " ".join((self.name, *self.args))

    @cached_property
    def points(self) -> tuple[str, ...]:
        """The point arguments (literals removed); computed once per fact (a claim's facts are
        cached and measured on every candidate)."""
        spec = PREDICATES[self.name]
        return tuple(a for i, a in enumerate(self.args) if not spec.is_literal(i, len(self.args)))


class SceneLike(Protocol):
    """What a residual needs: named float64 points of shape (2,), a size and a unit."""

    points: Mapping[str, np.ndarray]

    @property
    def scale(self) -> float: ...

    @property
    def unit(self) -> float: ...


_INF = math.inf


def _len(p: Mapping[str, np.ndarray], a: str, b: str) -> float:
    return norm(p[a] - p[b])


def _dir(p: Mapping[str, np.ndarray], a: str, b: str) -> float | None:
    if _len(p, a, b) < 1e-12:
        return None
    return direction(p[a], p[b])


def _coll(s: SceneLike, *names: str) -> float:
    p = s.points
    a, b = max(combinations(names, 2), key=lambda ab: _len(p, *ab))
    base = _len(p, a, b)
    if base < 1e-12:
        return 0.0
    d = (p[b] - p[a]) / base
    return max(abs(cross(d, p[x] - p[a])) for x in names) / s.scale


def _para(s: SceneLike, a: str, b: str, c: str, d: str) -> float:
    u, v = _dir(s.points, a, b), _dir(s.points, c, d)
    return _INF if u is None or v is None else abs(wrap_half_pi(u - v))


def _perp(s: SceneLike, a: str, b: str, c: str, d: str) -> float:
    u, v = _dir(s.points, a, b), _dir(s.points, c, d)
    return _INF if u is None or v is None else abs(wrap_half_pi(u - v + math.pi / 2))


def _cong(s: SceneLike, a: str, b: str, c: str, d: str) -> float:
    return abs(_len(s.points, a, b) - _len(s.points, c, d)) / s.scale


def _eqangle(s: SceneLike, *x: str) -> float:
    dirs = [_dir(s.points, x[i], x[i + 1]) for i in range(0, 8, 2)]
    if any(d is None for d in dirs):
        return _INF
    a, b, c, d = dirs
    return abs(wrap_half_pi((b - a) - (d - c)))  # type: ignore[operator]


def _ratio_gap(r1: float, r2: float) -> float:
    if not (math.isfinite(r1) and math.isfinite(r2)) or max(r1, r2) == 0:
        return _INF
    return abs(r1 - r2) / max(r1, r2)


def _safe_div(x: float, y: float) -> float:
    return x / y if y > 1e-12 else _INF


def _eqratio(s: SceneLike, a: str, b: str, c: str, d: str, e: str, f: str, g: str, h: str) -> float:
    p = s.points
    return _ratio_gap(_safe_div(_len(p, a, b), _len(p, c, d)), _safe_div(_len(p, e, f), _len(p, g, h)))


def _cyclic(s: SceneLike, *names: str) -> float:
    p = s.points
    best = max(combinations(names, 3), key=lambda t: abs(cross(p[t[1]] - p[t[0]], p[t[2]] - p[t[0]])))
    a, b, c = (p[n] for n in best)
    d2 = 2 * cross(b - a, c - a)
    if abs(d2) < 1e-12 * s.scale**2:
        return _INF
    ba, ca = b - a, c - a
    center = a + np.array(
        [
            (ca[1] * ba.dot(ba) - ba[1] * ca.dot(ca)) / d2,
            (ba[0] * ca.dot(ca) - ca[0] * ba.dot(ba)) / d2,
        ]
    )
    r = norm(center - a)
    return max(abs(norm(p[n] - center) - r) for n in names) / s.scale


def _midp(s: SceneLike, m: str, a: str, b: str) -> float:
    p = s.points
    return norm(p[m] - (p[a] + p[b]) / 2) / s.scale


def _convex(s: SceneLike, *names: str) -> float:
    """0 if the polygon is convex with its vertices in order (either orientation), else how far
    the sine of its worst turn falls short of :data:`NEGATION_MARGIN`."""
    p = [s.points[n] for n in names]
    turns = []
    for i in range(len(p)):
        e1, e2 = p[i] - p[i - 1], p[(i + 1) % len(p)] - p[i]
        n1, n2 = norm(e1), norm(e2)
        if min(n1, n2) < 1e-12:
            return _INF
        turns.append(cross(e1, e2) / (n1 * n2))
    sign = 1.0 if sum(turns) >= 0 else -1.0
    return max(0.0, NEGATION_MARGIN - min(sign * t for t in turns))


def _centroid(s: SceneLike, g: str, a: str, b: str, c: str) -> float:
    p = s.points
    return norm(p[g] - (p[a] + p[b] + p[c]) / 3) / s.scale


def _circle(s: SceneLike, o: str, *names: str) -> float:
    p = s.points
    r = _len(p, o, names[0])
    return max(abs(_len(p, o, n) - r) for n in names) / s.scale


def _sides(p: Mapping[str, np.ndarray], a: str, b: str, c: str) -> tuple[float, float, float]:
    return _len(p, a, b), _len(p, b, c), _len(p, c, a)


def _simtri(s: SceneLike, a: str, b: str, c: str, x: str, y: str, z: str) -> float:
    s1, s2 = _sides(s.points, a, b, c), _sides(s.points, x, y, z)
    ratios = [_safe_div(u, v) for u, v in zip(s1, s2)]
    return max(_ratio_gap(ratios[0], r) for r in ratios[1:])


def _contri(s: SceneLike, a: str, b: str, c: str, x: str, y: str, z: str) -> float:
    s1, s2 = _sides(s.points, a, b, c), _sides(s.points, x, y, z)
    return max(abs(u - v) for u, v in zip(s1, s2)) / s.scale


def _clock(s: SceneLike, a: str, b: str, c: str) -> float:
    """Signed area of triangle abc over the squared figure size: > 0 counter-clockwise."""
    p = s.points
    return cross(p[b] - p[a], p[c] - p[a]) / s.scale**2


def _same_sign(u: float, v: float) -> float:
    """0 when ``u`` and ``v`` have the same sign, both at least :data:`NEGATION_MARGIN` from 0;
    else the shortfall."""
    agree = min(abs(u), abs(v)) if u * v > 0 else -min(abs(u), abs(v))
    return max(0.0, NEGATION_MARGIN - agree)


def _sameclock(s: SceneLike, a: str, b: str, c: str, x: str, y: str, z: str) -> float:
    return _same_sign(_clock(s, a, b, c), _clock(s, x, y, z))


def _sameside(s: SceneLike, a: str, b: str, c: str, x: str, y: str, z: str) -> float:
    """``a`` lies on the same side of ``b`` and ``c`` (between them or not) as ``x`` of ``y``
    and ``z``: the dot products (b − a)·(c − a) and (y − x)·(z − x) have the same sign
    (AlphaGeometry's ``numericals.check_sameside``)."""
    p = s.points
    u = float(np.dot(p[b] - p[a], p[c] - p[a])) / s.scale**2
    v = float(np.dot(p[y] - p[x], p[z] - p[x])) / s.scale**2
    return _same_sign(u, v)


def _obtuse_angle(s: SceneLike, a: str, b: str, c: str) -> float:
    """The plain angle ∠abc exceeds 90° by at least :data:`NEGATION_MARGIN` radians."""
    p = s.points
    if min(_len(p, a, b), _len(p, c, b)) < 1e-12:
        return _INF
    return max(0.0, math.pi / 2 + NEGATION_MARGIN - angle_at(p[a], p[b], p[c]))


def _mirrored(check: Callable[..., float]) -> Callable[..., float]:
    """A triangle relation (similar, congruent) that also needs opposite orientations."""

    def mirrored(s: SceneLike, a: str, b: str, c: str, x: str, y: str, z: str) -> float:
        return max(check(s, a, b, c, x, y, z), _same_sign(_clock(s, a, b, c), -_clock(s, x, y, z)))

    return mirrored


def _directed(s: SceneLike, a: str, b: str, c: str, d: str, target: float) -> float:
    u, v = _dir(s.points, a, b), _dir(s.points, c, d)
    return _INF if u is None or v is None else abs(wrap_half_pi(v - u - target))


def _s_angle(s: SceneLike, a: str, b: str, x: str, y: str) -> float:
    from geoforge.exact import angle_radians

    return _directed(s, b, a, b, x, angle_radians(y))


def _aconst(s: SceneLike, a: str, b: str, c: str, d: str, r: str) -> float:
    from geoforge.exact import angle_radians

    return _directed(s, a, b, c, d, angle_radians(r))


def _value(token: str) -> float:
    from geoforge.exact import parse_value

    return float(parse_value(token))


def _rconst(s: SceneLike, a: str, b: str, c: str, d: str, r: str) -> float:
    p = s.points
    return _ratio_gap(_safe_div(_len(p, a, b), _len(p, c, d)), _value(r))


def _lconst(s: SceneLike, a: str, b: str, v: str) -> float:
    return abs(_len(s.points, a, b) - _value(v)) / s.scale


def _r2const(s: SceneLike, a: str, b: str, c: str, d: str, r: str) -> float:
    p = s.points
    return _ratio_gap(_safe_div(_len(p, a, b), _len(p, c, d)) ** 2, _value(r))


def _l2const(s: SceneLike, a: str, b: str, v: str) -> float:
    return abs(_len(s.points, a, b) - math.sqrt(max(_value(v), 0.0))) / s.scale


def _lequation(s: SceneLike, *args: str) -> float:
    """Σ kᵢ·|pᵢqᵢ| = v over groups ``k p q`` and a final ``v`` (Newclid), in diagram units."""
    total = sum(
        _value(args[i]) * _len(s.points, args[i + 1], args[i + 2]) for i in range(0, len(args) - 1, 3)
    )
    return abs(total - _value(args[-1])) / s.scale


def line_angle(s: SceneLike, a: str, b: str, c: str, d: str) -> float | None:
    """The directed angle from line ab to line cd in radians, in [0, π); None when a line is
    undefined (coincident points)."""
    u, v = _dir(s.points, a, b), _dir(s.points, c, d)
    return None if u is None or v is None else (v - u) % math.pi


def _aequation(s: SceneLike, *args: str) -> float:
    """Σ kᵢ·∠(pᵢqᵢ, rᵢtᵢ) = v (mod 180°) over groups ``k p q r t`` and a final ``v``
    (Newclid; directed line angles, ``v`` in degrees or ``pi`` radians)."""
    from geoforge.exact import angle_radians

    total = 0.0
    for i in range(0, len(args) - 1, 5):
        theta = line_angle(s, *args[i + 1 : i + 5])
        if theta is None:
            return _INF
        total += _value(args[i]) * theta
    return abs(wrap_half_pi(total - angle_radians(args[-1])))


def _compute(s: SceneLike, *names: str) -> float:
    """A value-asking goal (``acompute``, ``rcompute``, ``lcompute``) asks, so it holds whenever
    its value is defined (no segment of coincident points); :mod:`geoforge.goals` reports the
    value."""
    pairs = [names[i : i + 2] for i in range(0, len(names), 2)]
    return _INF if any(_len(s.points, *pq) < 1e-12 for pq in pairs) else 0.0


def _length(s: SceneLike, a: str, b: str, v: str) -> float:
    return _ratio_gap(_len(s.points, a, b) * s.unit, _value(v))


def _angle(s: SceneLike, a: str, b: str, c: str, v: str) -> float:
    p = s.points
    if min(_len(p, a, b), _len(p, c, b)) < 1e-12:
        return _INF
    return abs(angle_at(p[a], p[b], p[c]) - math.radians(_value(v)))


def _eqangle_plain(s: SceneLike, a: str, b: str, c: str, d: str, e: str, f: str) -> float:
    p = s.points
    if min(_len(p, a, b), _len(p, c, b), _len(p, d, e), _len(p, f, e)) < 1e-12:
        return _INF
    return abs(angle_at(p[a], p[b], p[c]) - angle_at(p[d], p[e], p[f]))


def drawn_radii(s: SceneLike, o: str) -> list[float]:
    """Radii (diagram units) of the circles ``s`` draws about point ``o``: those whose centre
    is named ``o`` or lies within 1e-7 of the figure size of it. Empty for a scene-like
    object without ``circles``."""
    centre = s.points[o]
    tol = 1e-7 * s.scale
    return [
        float(c.radius)
        for c in getattr(s, "circles", ())
        if c.center_name == o or norm(np.asarray(c.center) - centre) <= tol
    ]


def _drawn_circle(s: SceneLike, o: str, *names: str) -> float:
    radii = drawn_radii(s, o)
    if not radii:
        return _INF
    return min(max(abs(_len(s.points, o, n) - r) for n in names) for r in radii) / s.scale


def _negate(check: Callable[..., float]) -> Callable[..., float]:
    def negated(s: SceneLike, *args: str) -> float:
        return max(0.0, NEGATION_MARGIN - check(s, *args))

    return negated


def _diff(s: SceneLike, a: str, b: str) -> float:
    return _len(s.points, a, b) / s.scale


#: Shapes for ``shape KIND ...``: kind → (number of points, facts over p0, p1, ... that define it).
SHAPES: dict[str, tuple[int, tuple[str, ...]]] = {
    "triangle": (3, ("ncoll 0 1 2",)),
    "isosceles": (3, ("cong 0 1 0 2", "ncoll 0 1 2")),
    "equilateral": (3, ("cong 0 1 1 2", "cong 1 2 2 0", "ncoll 0 1 2")),
    "right": (3, ("perp 0 1 0 2", "ncoll 0 1 2")),
    "right_isosceles": (3, ("perp 0 1 0 2", "cong 0 1 0 2")),
    "parallelogram": (4, ("para 0 1 2 3", "para 1 2 3 0", "ncoll 0 1 2", "convex 0 1 2 3")),
    "rectangle": (4, ("para 0 1 2 3", "para 1 2 3 0", "perp 0 1 1 2", "convex 0 1 2 3")),
    "rhombus": (
        4,
        ("para 0 1 2 3", "para 1 2 3 0", "cong 0 1 1 2", "ncoll 0 1 2", "convex 0 1 2 3"),
    ),
    "square": (
        4,
        ("para 0 1 2 3", "para 1 2 3 0", "perp 0 1 1 2", "cong 0 1 1 2", "convex 0 1 2 3"),
    ),
    "trapezoid": (4, ("para 0 1 2 3", "ncoll 0 1 2", "npara 1 2 3 0", "convex 0 1 2 3")),
    "isosceles_trapezoid": (4, ("para 0 1 2 3", "cong 1 2 3 0", "npara 1 2 3 0", "convex 0 1 2 3")),
    "kite": (4, ("cong 0 1 0 3", "cong 2 1 2 3", "ncoll 0 1 2", "convex 0 1 2 3")),
    "cyclic_quadrilateral": (4, ("cyclic 0 1 2 3", "convex 0 1 2 3")),
}


def _shape(s: SceneLike, kind: str, *names: str) -> float:
    return max(
        residual(Fact(f.split()[0], tuple(names[int(i)] for i in f.split()[1:])), s) for f in SHAPES[kind][1]
    )


@dataclass(frozen=True)
class PredicateSpec:
    """How to check one predicate name.

    ``arity`` is the exact argument count, or ``-n`` for "at least n"; ``literals`` are the
    indices of literal (non-point) arguments, negative indices counting from the end; ``kind``
    is the residual's unit (``length``, ``angle``, ``ratio``); ``check`` computes it.
    """

    arity: int
    kind: str
    check: Callable[..., float]
    literals: tuple[int, ...] = ()
    groups: int = 0

    def is_literal(self, index: int, n: int) -> bool:
        """True if argument ``index`` of ``n`` is a literal. With ``groups`` = g, the arguments
        are groups of g led by a literal coefficient, then one literal (Newclid's
        ``lequation``/``aequation``)."""
        if self.groups:
            return index % self.groups == 0 or index == n - 1
        return index in self.literals or index - n in self.literals


PREDICATES: dict[str, PredicateSpec] = {
    "coll": PredicateSpec(-3, "length", _coll),
    "para": PredicateSpec(4, "angle", _para),
    "perp": PredicateSpec(4, "angle", _perp),
    "cong": PredicateSpec(4, "length", _cong),
    "eqangle": PredicateSpec(8, "angle", _eqangle),
    "eqratio": PredicateSpec(8, "ratio", _eqratio),
    "cyclic": PredicateSpec(-4, "length", _cyclic),
    "midp": PredicateSpec(3, "length", _midp),
    "circle": PredicateSpec(-3, "length", _circle),
    "centroid": PredicateSpec(4, "length", _centroid),
    "eqangle_plain": PredicateSpec(6, "angle", _eqangle_plain),
    "drawn_circle": PredicateSpec(-2, "length", _drawn_circle),
    "convex": PredicateSpec(-3, "angle", _convex),
    "simtri": PredicateSpec(6, "ratio", _simtri),
    "contri": PredicateSpec(6, "length", _contri),
    "ncoll": PredicateSpec(-3, "length", _negate(_coll)),
    "npara": PredicateSpec(4, "angle", _negate(_para)),
    "nperp": PredicateSpec(4, "angle", _negate(_perp)),
    "diff": PredicateSpec(2, "length", _negate(_diff)),
    "s_angle": PredicateSpec(4, "angle", _s_angle, (3,)),
    "aconst": PredicateSpec(5, "angle", _aconst, (4,)),
    "rconst": PredicateSpec(5, "ratio", _rconst, (4,)),
    "lconst": PredicateSpec(3, "length", _lconst, (2,)),
    "length": PredicateSpec(3, "ratio", _length, (2,)),
    "angle": PredicateSpec(4, "angle", _angle, (3,)),
    "shape": PredicateSpec(-4, "length", _shape, (0,)),
    # Newclid's goal predicates (LMCRC/Newclid rules.txt; Newclid/Newclid predicates)
    "sameclock": PredicateSpec(6, "length", _sameclock),
    "sameside": PredicateSpec(6, "length", _sameside),
    "obtuse_angle": PredicateSpec(3, "angle", _obtuse_angle),
    "simtrir": PredicateSpec(6, "ratio", _mirrored(_simtri)),
    "contrir": PredicateSpec(6, "length", _mirrored(_contri)),
    "r2const": PredicateSpec(5, "ratio", _r2const, (4,)),
    "l2const": PredicateSpec(3, "length", _l2const, (2,)),
    "lequation": PredicateSpec(-4, "length", _lequation, groups=3),
    "aequation": PredicateSpec(-6, "angle", _aequation, groups=5),
    "acompute": PredicateSpec(4, "angle", _compute),
    "rcompute": PredicateSpec(4, "ratio", _compute),
    "lcompute": PredicateSpec(2, "length", _compute),
}


def residual(fact: Fact, scene: SceneLike) -> float:
    """How far ``fact`` is from holding on ``scene`` (0 = exactly), in the unit of its kind
    (see the module docstring); ``inf`` when it is undefined (a zero-length segment).

    Raises KeyError for an unknown predicate or point; validate facts first with
    :func:`check_fact_shape`.
    """
    return PREDICATES[fact.name].check(scene, *fact.args)


def holds(fact: Fact, scene: SceneLike, tol: float = 1e-6) -> bool:
    """True if ``residual(fact, scene) <= tol``."""
    return residual(fact, scene) <= tol


def check_fact_shape(
    fact: Fact, defined: set[str] | None = None, source: str = "", role: str | None = None
) -> None:
    """Check a fact's name, arity, literals and (if ``defined`` is given) its points.

    Raises ProgramError naming the fact (as ``role``, e.g. ``"goal"``, when given) and what was
    expected, with a close-match suggestion for an unknown name and a hint when the name is a
    construction's.
    """
    import difflib

    from geoforge.errors import undefined_point

    text = fact.text()

    def fail(message: str, token: str = "", hint: str = "") -> ProgramError:
        return ProgramError(message, clause=role, text=text, source=source, token=token, hint=hint)

    spec = PREDICATES.get(fact.name)
    if spec is None:
        from geoforge.constructions import REGISTRY

        near = difflib.get_close_matches(fact.name, PREDICATES, n=1)
        suggestion = f" (did you mean `{near[0]}`?)" if near else ""
        hint = f"`{fact.name}` is a construction: use it before `?`" if fact.name in REGISTRY else ""
        raise fail(f"unknown predicate `{fact.name}`{suggestion}", fact.name, hint)
    n = len(fact.args)
    if fact.name == "shape":
        if not fact.args or fact.args[0] not in SHAPES:
            raise fail(f"unknown shape kind: expected one of {', '.join(SHAPES)}", fact.name)
        want = SHAPES[fact.args[0]][0] + 1
        if n != want:
            raise fail(f"`shape {fact.args[0]}` takes {want - 1} points, got {n - 1}", fact.name)
    elif spec.groups and (n < -spec.arity or (n - 1) % spec.groups):
        raise fail(
            f"`{fact.name}` takes groups of {spec.groups} arguments (a coefficient and "
            f"{spec.groups - 1} points) and then a value, got {n} arguments",
            fact.name,
        )
    elif (spec.arity >= 0 and n != spec.arity) or (spec.arity < 0 and n < -spec.arity):
        want = f"{spec.arity}" if spec.arity >= 0 else f"at least {-spec.arity}"
        raise fail(f"`{fact.name}` takes {want} arguments, got {n}", fact.name)
    for i, a in enumerate(fact.args):
        if spec.is_literal(i, n):
            if fact.name != "shape":
                from geoforge.exact import parse_value

                try:
                    parse_value(a)
                except ProgramError as e:
                    raise fail(e.message, a) from None
        elif defined is not None and a not in defined:
            raise undefined_point(a, defined, clause=role, text=text, source=source)


def parse_fact(text: str) -> Fact:
    """Parse ``"perp a h b c"`` into a Fact and check its shape (not its points)."""
    tokens = text.split()
    if not tokens:
        raise ProgramError("empty fact")
    fact = Fact(tokens[0], tuple(tokens[1:]))
    check_fact_shape(fact)
    return fact
