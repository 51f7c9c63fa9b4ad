"""The audit's own judge of caption statements (see scripts/audit_negatives.py).

Written independently of geoforge.caption, geoforge.verify and geoforge.facts, on plain numpy
points, so that a bug in geoforge's writer, reader or verifier cannot hide itself. The text is
read by the audit's own reader, scripts/audit/reader.py (re-exported here: :func:`read_caption`,
:func:`read_statement`, :class:`Statement`).

:func:`judge` measures one statement on a :class:`Figure` (the drawn points, the drawn circles
and the printed scale) and says whether it is *clearly false* by the audit's margins, how
(:data:`HOW`), and whether it *holds* to a tight tolerance (the self-check on positives).
:func:`judge_all` adds the ratios of stated lengths on a figure that prints no length.

Margins (DESIGN.md, "Verification rules"; issue 8): an angle off by :data:`ANGLE_MARGIN`
degrees, a length or ratio off by :data:`REL_MARGIN` of the larger, a point off its line or
circle by :data:`INCIDENCE_MARGIN` of the figure size (the diagonal of the points' bounding
box). Angles written ∠ABC are plain angles in [0°, 180°]. "Circle O" / "⊙O" is a circle the
figure draws about O; none drawn makes the statement false ("undrawn circle"). A statement
naming a point the figure lacks is false ("absent point").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from audit.reader import (
    DESCRIPTIVE_OPENING,
    FORMS,
    QUESTION_OPENING,
    ReadError,
    Reading,
    Statement,
    normalise,
    read_caption,
    read_statement,
    value_of,
)

__all__ = [
    "DESCRIPTIVE_OPENING",
    "QUESTION_OPENING",
    "ReadError",
    "Reading",
    "Statement",
    "normalise",
    "read_caption",
    "read_statement",
    "value_of",
]

ANGLE_MARGIN = 8.0
REL_MARGIN = 0.12
INCIDENCE_MARGIN = 0.03
#: Tolerances for "holds" (the self-check of positive captions).
HOLD_DEG = 1e-4
HOLD_REL = 1e-6
HOLD_INC = 1e-6

#: How a false statement is false, from the most to the least telling.
HOW = ("geometry", "value", "undrawn circle", "absent point")

# --------------------------------------------------------------------------- the figure


@dataclass
class Figure:
    """What a figure shows: named float64 points, the circles it draws as ``(centre (2,),
    radius)`` pairs, and ``unit``, the factor from diagram units to printed lengths (``None``
    when the figure prints no length)."""

    points: dict[str, np.ndarray]
    circles: list[tuple[np.ndarray, float]] = field(default_factory=list)
    unit: float | None = None

    def __post_init__(self) -> None:
        xy = np.array(list(self.points.values()), dtype=np.float64).reshape(-1, 2)
        self.size = max(float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))), 1e-12) if len(xy) > 1 else 1.0

    def p(self, name: str) -> np.ndarray:
        return self.points[name]

    def dist(self, a: str, b: str) -> float:
        return float(np.hypot(*(self.points[a] - self.points[b])))


@dataclass(frozen=True)
class Part:
    """One measured condition of a statement: ``false`` by the margins, ``holds`` to the tight
    tolerance, ``how`` it is false, and the measurement in words."""

    false: bool
    holds: bool
    how: str
    why: str


@dataclass(frozen=True)
class Judgement:
    """A statement on a figure: clearly ``false``, ``holds`` exactly, ``how`` false (one of
    :data:`HOW`, ``""`` if not false), ``why`` in words; ``judged`` is False when the figure
    cannot tell (a length value on a figure that prints no length)."""

    false: bool
    holds: bool
    how: str
    why: str
    judged: bool = True


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    """Undirected angle between two vectors, degrees in [0, 180]; NaN if one vanishes."""
    if float(np.hypot(*u)) < 1e-12 or float(np.hypot(*v)) < 1e-12:
        return math.nan
    return math.degrees(abs(math.atan2(_cross(u, v), float(np.dot(u, v)))))


def _rel(x: float, y: float) -> float:
    top = max(abs(x), abs(y))
    return abs(x - y) / top if top > 0 else 0.0


def vertex_angle(f: Figure, a: str, b: str, c: str) -> float:
    """Plain angle abc at b, degrees in [0, 180]."""
    return _angle(f.p(a) - f.p(b), f.p(c) - f.p(b))


def line_angle(f: Figure, a: str, b: str, c: str, d: str) -> float:
    """Angle between lines ab and cd, degrees in [0, 90]."""
    t = _angle(f.p(b) - f.p(a), f.p(d) - f.p(c))
    return min(t, 180.0 - t)


def off_line(f: Figure, p: str, a: str, b: str) -> float:
    """Distance of p from line ab as a share of the figure size (0 if a = b)."""
    u = f.p(b) - f.p(a)
    n = float(np.hypot(*u))
    if n < 1e-12 * f.size:
        return 0.0
    return abs(_cross(u, f.p(p) - f.p(a))) / n / f.size


def _part_deg(measured: float, wanted: float, what: str) -> Part:
    if math.isnan(measured):
        return Part(False, True, "geometry", f"{what} undefined (coincident points)")
    off = abs(measured - wanted)
    return Part(
        off >= ANGLE_MARGIN, off <= HOLD_DEG, "geometry", f"{what} = {measured:.2f}° (want {wanted:g}°)"
    )


def _part_angles_equal(x: float, y: float, what: str) -> Part:
    if math.isnan(x) or math.isnan(y):
        return Part(False, False, "geometry", f"{what} undefined (coincident points)")
    off = abs(x - y)
    return Part(off >= ANGLE_MARGIN, off <= HOLD_DEG, "geometry", f"{what}: {x:.2f}° vs {y:.2f}°")


def _part_equal(x: float, y: float, what: str, how: str = "geometry") -> Part:
    r = _rel(x, y)
    return Part(r >= REL_MARGIN, r <= HOLD_REL, how, f"{what}: {x:.4g} vs {y:.4g} ({100 * r:.1f}% apart)")


def _part_off(share: float, what: str) -> Part:
    return Part(
        share >= INCIDENCE_MARGIN,
        share <= HOLD_INC,
        "geometry",
        f"{what} by {100 * share:.2f}% of the figure",
    )


def _on_line(f: Figure, p: str, a: str, b: str) -> Part:
    return _part_off(off_line(f, p, a, b), f"{p} off line {a}{b}")


def _para(f: Figure, a: str, b: str, c: str, d: str) -> Part:
    return _part_deg(line_angle(f, a, b, c, d), 0.0, f"∠({a}{b}, {c}{d})")


def _perp(f: Figure, a: str, b: str, c: str, d: str) -> Part:
    return _part_deg(line_angle(f, a, b, c, d), 90.0, f"∠({a}{b}, {c}{d})")


def _cong(f: Figure, a: str, b: str, c: str, d: str) -> Part:
    return _part_equal(f.dist(a, b), f.dist(c, d), f"|{a}{b}| vs |{c}{d}|")


def _all_equal(values: list[float], what: str) -> Part:
    return _part_equal(max(values), min(values), what)


def _nondegenerate(f: Figure, a: str, b: str, c: str) -> Part:
    """A proper triangle: false if two vertices coincide (0.5% of the figure) or the largest
    angle is within 1° of flat."""
    if min(f.dist(a, b), f.dist(b, c), f.dist(c, a)) < 0.005 * f.size:
        return Part(True, False, "geometry", f"{a}{b}{c} has coincident vertices")
    top = max(vertex_angle(f, c, a, b), vertex_angle(f, a, b, c), vertex_angle(f, b, c, a))
    return Part(top >= 179.0, top < 180.0 - HOLD_DEG, "geometry", f"{a}{b}{c}: largest angle {top:.2f}°")


def _turns(f: Figure, names: tuple[str, ...]) -> list[float]:
    out = []
    for i in range(len(names)):
        u = f.p(names[i]) - f.p(names[i - 1])
        v = f.p(names[(i + 1) % len(names)]) - f.p(names[i])
        out.append(math.degrees(math.atan2(_cross(u, v), float(np.dot(u, v)))))
    return out


def _convex(f: Figure, names: tuple[str, ...]) -> Part:
    """A convex polygon in this vertex order: false if self-intersecting, a vertex turns the
    wrong way by the angle margin, or two consecutive vertices coincide."""
    label = "".join(names)
    if any(f.dist(names[i - 1], names[i]) < 0.005 * f.size for i in range(len(names))):
        return Part(True, False, "geometry", f"{label} has coincident vertices")
    turns = _turns(f, names)
    total = sum(turns)
    if abs(total) < 180.0:
        return Part(True, False, "geometry", f"{label} is self-intersecting (turns sum to {total:.0f}°)")
    sign = 1.0 if total > 0 else -1.0
    worst = max(-sign * t for t in turns)
    return Part(
        worst >= ANGLE_MARGIN,
        worst < -HOLD_DEG,
        "geometry",
        f"{label}: worst turn {worst:.2f}° against its orientation",
    )


def _interior(f: Figure, q: tuple[str, ...]) -> list[float]:
    n = len(q)
    return [vertex_angle(f, q[i - 1], q[i], q[(i + 1) % n]) for i in range(n)]


def _sides(f: Figure, q: tuple[str, ...]) -> list[float]:
    return [f.dist(q[i], q[(i + 1) % len(q)]) for i in range(len(q))]


def _circumcircle(f: Figure, a: str, b: str, c: str) -> tuple[np.ndarray, float] | None:
    pa, pb, pc = f.p(a), f.p(b), f.p(c)
    u, w = pb - pa, pc - pa
    den = 2.0 * _cross(u, w)
    if abs(den) < 1e-12 * f.size**2:
        return None
    uu, ww = float(np.dot(u, u)), float(np.dot(w, w))
    centre = pa + np.array([(w[1] * uu - u[1] * ww) / den, (u[0] * ww - w[0] * uu) / den])
    return centre, float(np.hypot(*(pa - centre)))


def _off_circle(f: Figure, centre: np.ndarray, radius: float, p: str) -> float:
    return abs(float(np.hypot(*(f.p(p) - centre))) - radius) / f.size


def _quad(kind: str, f: Figure, s: Statement) -> list[Part]:
    q = (s["A"], s["B"], s["C"], s["D"])
    a, b, c, d = q
    parts = [_convex(f, q)]
    if kind in ("square", "rectangle", "rhombus", "parallelogram"):
        parts += [_para(f, a, b, c, d), _para(f, b, c, d, a), _cong(f, a, b, c, d), _cong(f, b, c, d, a)]
    if kind in ("square", "rhombus"):
        parts.append(_all_equal(_sides(f, q), f"sides of {a}{b}{c}{d}"))
    if kind in ("square", "rectangle"):
        parts += [_part_deg(t, 90.0, f"angle {i + 1} of {a}{b}{c}{d}") for i, t in enumerate(_interior(f, q))]
    if kind in ("trapezoid", "isosceles_trapezoid"):
        parts.append(_para(f, a, b, c, d))
        legs = line_angle(f, b, c, d, a)  # a trapezoid's legs are not parallel (holds only)
        parts.append(Part(False, legs > HOLD_DEG, "geometry", f"legs {b}{c}, {d}{a} at {legs:.2f}°"))
    if kind == "isosceles_trapezoid":
        parts.append(_cong(f, b, c, d, a))
        t = _interior(f, q)
        parts.append(_part_angles_equal(t[0], t[1], f"∠{d}{a}{b} vs ∠{a}{b}{c}"))
    if kind == "kite":
        parts += [_cong(f, a, b, a, d), _cong(f, c, b, c, d)]
    if kind == "cyclic_quadrilateral":
        t = _interior(f, q)
        parts.append(_part_deg(t[0] + t[2], 180.0, f"∠{a} + ∠{c}"))
        for i in range(4):
            circle = _circumcircle(f, *(q[(i + j) % 4] for j in (1, 2, 3)))
            if circle is not None:
                parts.append(_part_off(_off_circle(f, *circle, q[i]), f"{q[i]} off circle of the others"))
    return parts


def _drawn_about(f: Figure, o: str, margin: float) -> list[tuple[np.ndarray, float]]:
    return [(c, r) for c, r in f.circles if float(np.hypot(*(c - f.p(o)))) <= margin * f.size]


def _on_drawn_circle(f: Figure, o: str, on: tuple[str, ...]) -> list[Part]:
    """The points ``on`` lie on one circle drawn about ``o``. False ("undrawn circle") when the
    figure draws no circle within the incidence margin of o; otherwise false when every such
    circle misses a point by the margin, or its centre is off o by the margin."""
    near = _drawn_about(f, o, INCIDENCE_MARGIN)
    if not near:
        return [Part(True, False, "undrawn circle", f"no circle is drawn about {o}")]
    options = []
    for centre, radius in near:
        parts = [
            _part_off(float(np.hypot(*(centre - f.p(o)))) / f.size, f"centre of the circle about {o} off {o}")
        ]
        parts += [_part_off(_off_circle(f, centre, radius, p), f"{p} off circle {o}") for p in on]
        options.append(parts)
    return min(options, key=lambda parts: (not all(x.holds for x in parts), any(x.false for x in parts)))


def _equal_split(f: Figure, v: str, x: str, d: str, y: str) -> Part:
    return _part_angles_equal(vertex_angle(f, x, v, d), vertex_angle(f, d, v, y), f"∠{x}{v}{d} vs ∠{d}{v}{y}")


def _centroid(f: Figure, s: Statement) -> list[Part]:
    g, a, b, c = s["G"], s["A"], s["B"], s["C"]
    true = (f.p(a) + f.p(b) + f.p(c)) / 3
    return [_part_off(float(np.hypot(*(f.p(g) - true))) / f.size, f"{g} off the centroid of {a}{b}{c}")]


def _value(f: Figure, s: Statement) -> list[Part]:
    wanted = value_of(s.value)
    if s.kind == "angle":
        a, b, c = s["A"], s["B"], s["C"]
        part = _part_deg(vertex_angle(f, a, b, c), wanted, f"∠{a}{b}{c}")
        return [Part(part.false, part.holds, "value", part.why)]
    a, b = s["A"], s["B"]
    assert f.unit is not None
    return [_part_equal(f.dist(a, b) * f.unit, wanted, f"|{a}{b}| (printed units) vs {s.value}", "value")]


_Judge = Callable[[Figure, Statement], list[Part]]
_JUDGES: dict[str, _Judge] = {
    "triangle": lambda f, s: [_nondegenerate(f, s["A"], s["B"], s["C"])],
    "isosceles": lambda f, s: [
        _nondegenerate(f, s["A"], s["B"], s["C"]),
        _cong(f, s["A"], s["B"], s["A"], s["C"]),
    ],
    "equilateral": lambda f, s: [
        _nondegenerate(f, s["A"], s["B"], s["C"]),
        _all_equal(_sides(f, (s["A"], s["B"], s["C"])), "sides"),
    ],
    "right": lambda f, s: [
        _nondegenerate(f, s["A"], s["B"], s["C"]),
        _part_deg(vertex_angle(f, s["B"], s["A"], s["C"]), 90.0, f"∠{s['B']}{s['A']}{s['C']}"),
    ],
    **{
        k: (lambda kind: lambda f, s: _quad(kind, f, s))(k)
        for k in (
            "square",
            "rectangle",
            "rhombus",
            "parallelogram",
            "trapezoid",
            "isosceles_trapezoid",
            "kite",
            "cyclic_quadrilateral",
        )
    },
    "altitude": lambda f, s: [_perp(f, s["V"], s["F"], s["B"], s["C"]), _on_line(f, s["F"], s["B"], s["C"])],
    "median": lambda f, s: [_on_line(f, s["M"], s["B"], s["C"]), _cong(f, s["B"], s["M"], s["M"], s["C"])],
    "midpoint": lambda f, s: [_on_line(f, s["M"], s["A"], s["B"]), _cong(f, s["A"], s["M"], s["M"], s["B"])],
    "bisector": lambda f, s: [
        _equal_split(f, s["V"], s["X"], s["D"], s["Y"]),
        _on_line(f, s["D"], s["X"], s["Y"]),
    ],
    "parallel": lambda f, s: [_para(f, s["A"], s["B"], s["C"], s["D"])],
    "perpendicular": lambda f, s: [_perp(f, s["A"], s["B"], s["C"], s["D"])],
    "equal": lambda f, s: [_cong(f, s["A"], s["B"], s["C"], s["D"])],
    "on_line": lambda f, s: [_on_line(f, s["P"], s["A"], s["B"])],
    "intersection": lambda f, s: [_on_line(f, s["P"], s["A"], s["B"]), _on_line(f, s["P"], s["C"], s["D"])],
    "circumcentre": lambda f, s: [
        _all_equal(
            [f.dist(s["O"], s[r]) for r in "ABC"],
            f"|{s['O']}{s['A']}|, |{s['O']}{s['B']}|, |{s['O']}{s['C']}|",
        )
    ],
    "incentre": lambda f, s: [
        _equal_split(f, s[v], s[x], s["I"], s[y])
        for v, x, y in (("A", "B", "C"), ("B", "C", "A"), ("C", "A", "B"))
    ],
    "touch": lambda f, s: [
        _perp(f, s["O"], s["T"], s["B"], s["C"]),
        _on_line(f, s["T"], s["B"], s["C"]),
        *_on_drawn_circle(f, s["O"], (s["T"],)),
    ],
    "centroid": _centroid,
    "orthocentre": lambda f, s: [
        _perp(f, s[v], s["H"], s[x], s[y]) for v, x, y in (("A", "B", "C"), ("B", "C", "A"), ("C", "A", "B"))
    ],
    "on_circle": lambda f, s: _on_drawn_circle(f, s["O"], (s["P"],)),
    "chord": lambda f, s: _on_drawn_circle(f, s["O"], (s["A"], s["B"])),
    "diameter": lambda f, s: [
        _on_line(f, s["O"], s["A"], s["B"]),
        _cong(f, s["A"], s["O"], s["O"], s["B"]),
        *_on_drawn_circle(f, s["O"], (s["A"], s["B"])),
    ],
    "tangent": lambda f, s: [
        _perp(f, s["P"], s["T"], s["T"], s["O"]),
        *_on_drawn_circle(f, s["O"], (s["T"],)),
    ],
    "secant": lambda f, s: [
        _on_line(f, s["C"], s["P"], s["B"]),
        *_on_drawn_circle(f, s["O"], (s["B"], s["C"])),
    ],
    "length": _value,
    "angle": _value,
}
assert set(_JUDGES) == set(FORMS)


def judge(s: Statement, f: Figure) -> Judgement:
    """Judge statement ``s`` on figure ``f`` (see the module docstring)."""
    gone = [p for p in s.points if p not in f.points]
    if gone:
        return Judgement(True, False, "absent point", f"the figure has no point {', '.join(gone)}")
    if s.kind == "length" and f.unit is None:
        return Judgement(False, False, "", f"{s.text}: the figure prints no length", judged=False)
    parts = _JUDGES[s.kind](f, s)
    bad = [p for p in parts if p.false]
    if bad:
        how = min((p.how for p in bad), key=HOW.index)
        return Judgement(True, False, how, "; ".join(p.why for p in bad))
    holds = all(p.holds for p in parts)
    return Judgement(False, holds, "", "; ".join(p.why for p in parts if holds or not p.holds))


def judge_all(statements: list[Statement], f: Figure) -> list[tuple[str, Judgement]]:
    """Each statement judged on ``f`` and, when ``f`` prints no length, each pair of length
    statements judged by their ratio (the one thing a figure without a printed scale shows of
    them), labelled by the text judged."""
    out = [(s.text, judge(s, f)) for s in statements]
    if f.unit is not None:
        return out
    lengths = [s for s in statements if s.kind == "length" and all(p in f.points for p in s.points)]
    for i, s in enumerate(lengths):
        for t in lengths[i + 1 :]:
            d = f.dist(t["A"], t["B"])
            stated = value_of(s.value) / value_of(t.value)
            part = _part_equal(f.dist(s["A"], s["B"]) / d if d > 0 else 0.0, stated, "ratio", "value")
            why = f"{s['A']}{s['B']} : {t['A']}{t['B']} {part.why.removeprefix('ratio')}"
            out.append(
                (
                    f"{s.text} and {t.text}",
                    Judgement(part.false, part.holds, part.how if part.false else "", why),
                )
            )
    return out


def how_false(judgements: list[Judgement]) -> str:
    """How a text is false, from its false statements: the first of :data:`HOW` met."""
    found = {j.how for j in judgements if j.false}
    return next((h for h in HOW if h in found), "")
