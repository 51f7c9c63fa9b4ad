"""Figure families and features: the textbook figures the sampler draws.

A *family* builds a base figure (a triangle, a quadrilateral, a circle, parallel lines) into a
:class:`Builder`, with givens (exact side lengths and angles) built into the construction so
they hold on every realisation. A *feature* adds to what exists (an altitude to a triangle, a
tangent to a circle...). Families and features record the claims a caption may make and the
values a question may ask for. Coverage follows MMGeoLM's data (Sun et al. 2025, §3): exam
figures of triangles, quadrilaterals, circles and parallel lines, and their compositions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from geoforge.sampler.builder import Builder

LENGTHS = (*tuple(str(n) for n in range(2, 16)), "2*sqrt(2)", "3*sqrt(2)", "2*sqrt(3)", "4*sqrt(3)")
PYTHAGOREAN = (
    ("3", "4"),
    ("6", "8"),
    ("5", "12"),
    ("8", "15"),
    ("9", "12"),
    ("7", "24"),
    ("12", "16"),
)
ANGLES = tuple(str(a) for a in range(20, 145, 5) if a not in (60, 90))


def _two_lengths(b: Builder) -> tuple[str, str]:
    """Two different lengths whose ratio is at most 3, so figures are not needle-thin."""
    x = b.choice(LENGTHS)
    y = b.choice([v for v in LENGTHS if v != x and 1 / 3 <= eval_length(v) / eval_length(x) <= 3])
    return x, y


def _sided(b: Builder, A: str, B: str, C: str, ab: str, ac: str, angle: str, show: bool) -> None:
    """Build triangle ABC from |AB|, |AC| and ∠BAC (side-angle-side); with ``show`` the
    values become givens on the figure and claims of the caption."""
    b.clause(f"{A} = free {A}")
    b.clause(f"{B} = lconst {B} {A} {ab}")
    b.clause(f"{C} = s_angle {B} {A} {C} {angle}, lconst {C} {A} {ac}")
    if show:
        b.stmt(f"given length {A} {B} {ab}")
        b.claim("length", A, B, ab)
        if ac != ab:
            b.stmt(f"given length {A} {C} {ac}")
        b.claim("length", A, C, ac)


def _given_angle(b: Builder, A: str, B: str, C: str, value: str, show: bool) -> None:
    if show:
        b.stmt(f"given angle {A} {B} {C} {value}")
        b.claim("angle", A, B, C, value)


# --- families ------------------------------------------------------------------------------
# Base shapes are always built from explicit lengths and angles, so every figure has its own
# proportions; ``givens`` decides whether those values are shown and claimed.


def triangle(b: Builder, givens: bool) -> None:
    """Scalene, isosceles, equilateral or right triangle ABC."""
    A, B, C = b.names("A", "B", "C")
    kind = b.choice(["scalene", "isosceles", "equilateral", "right"])
    b.features.append(kind)
    if kind == "scalene":
        ab, ac = _two_lengths(b)
        angle = b.choice([a for a in ANGLES if 30 <= int(a) <= 130])
        _sided(b, A, B, C, ab, ac, angle, givens)
        _given_angle(b, B, A, C, angle, givens)
        b.claim("triangle", A, B, C)
    elif kind == "isosceles":
        side, apex = b.choice(LENGTHS), b.choice(ANGLES)
        _sided(b, A, B, C, side, side, apex, givens)
        _given_angle(b, B, A, C, apex, givens)
        b.target("angle", A, B, C)
        b.stmt(f"mark equal {A} {B} {A} {C}")
        b.claim("isosceles", A, B, C)
    elif kind == "equilateral":
        side = b.choice(LENGTHS)
        _sided(b, A, B, C, side, side, "60", givens)
        b.claim("equilateral", A, B, C)
    else:
        ab, ac = b.choice(PYTHAGOREAN) if b.rng.uniform() < 0.3 else _two_lengths(b)
        _sided(b, A, B, C, ab, ac, "90", givens)
        b.stmt(f"mark right {B} {A} {C}")
        b.claim("right", A, B, C)
    b.stmt(f"draw polygon {A} {B} {C}")
    b.target("length", B, C)
    b.context["triangle"] = (A, B, C)


def quadrilateral(b: Builder, givens: bool) -> None:
    """Square, rectangle, rhombus, parallelogram, trapezoid, kite or cyclic quadrilateral ABCD."""
    A, B, C, D = b.names("A", "B", "C", "D")
    kinds = ["square", "rectangle", "rhombus", "parallelogram", "trapezoid", "isosceles_trapezoid"]
    kind = b.choice([*kinds, "kite", "cyclic_quadrilateral"])
    b.features.append(kind)
    if kind == "square":
        side = b.choice(LENGTHS)
        b.clause(f"{A} = free {A}")
        b.clause(f"{B} = lconst {B} {A} {side}")
        b.clause(f"{C} {D} = square {A} {B} {C} {D}")
        if givens:
            b.stmt(f"given length {A} {B} {side}")
            b.claim("length", A, B, side)
        b.target("length", A, C)
    elif kind in ("rectangle", "rhombus", "parallelogram"):
        ab, ad = _two_lengths(b)
        ad = ab if kind == "rhombus" else ad
        angle = "90" if kind == "rectangle" else b.choice(ANGLES)
        _sided(b, A, B, D, ab, ad, angle, givens)
        if kind != "rectangle":
            _given_angle(b, B, A, D, angle, givens)
        b.clause(f"{C} = parallelogram {B} {A} {D} {C}")
        b.target("length", B, D)
    elif kind in ("trapezoid", "isosceles_trapezoid"):
        while True:
            base, leg = _two_lengths(b)
            angle = b.choice([a for a in ANGLES if int(a) < 90])
            top = eval_length(base) - 2 * eval_length(leg) * math.cos(math.radians(int(angle)))
            if eval_length(base) > 3 and (kind == "trapezoid" or top > 0.25 * eval_length(base)):
                break
        if kind == "trapezoid":
            # The top is at most the base minus a margin so the legs are at least 12° from
            # parallel: a trapezoid must not pass for a parallelogram.
            top = _trapezoid_top(b, eval_length(base), eval_length(leg), int(angle))
        _sided(b, A, B, D, base, leg, angle, givens)
        _given_angle(b, B, A, D, angle, givens)
        if kind == "trapezoid":
            b.clause(f"{C} = aconst {A} {B} {D} {C} 0, lconst {C} {D} {top}")
            if givens:
                b.stmt(f"given length {D} {C} {top}")
                b.claim("length", D, C, top)
        else:
            b.clause(f"{C} = s_angle {A} {B} {C} -{angle}, lconst {C} {B} {leg}")
        b.target("length", B, C if kind == "trapezoid" else D)
    elif kind == "kite":
        M = b.name("M")
        p, q = _two_lengths(b)
        b.clause(f"{B} {D} = segment {B} {D}")
        b.clause(f"{M} = midpoint {M} {B} {D}")
        b.clause(f"{A} = on_tline {A} {M} {B} {D}, lconst {A} {M} {p}")
        b.clause(f"{C} = on_opline {C} {M} {A}, lconst {C} {M} {q}")
        b.stmt(f"draw segment {A} {C}")
        b.stmt(f"mark right {A} {M} {B}")
    else:
        O = b.name("O")
        arcs = _arcs(b)
        b.clause(f"{O} = free {O}")
        b.clause(f"{A} = lconst {A} {O} {b.choice(LENGTHS)}")
        for prev, p, arc in ((A, B, arcs[0]), (B, C, arcs[1]), (C, D, arcs[2])):
            b.clause(f"{p} = s_angle {prev} {O} {p} {arc}, on_circle {p} {O} {A}")
        b.stmt(f"draw circle {O} {A}")
        _given_angle(b, A, B, C, str((360 - int(arcs[0]) - int(arcs[1])) // 2), givens)
        b.target("angle", A, D, C)
        b.context["circle"] = (O, A)
    b.stmt(f"draw polygon {A} {B} {C} {D}")
    b.claim(kind, A, B, C, D)
    b.context["quad"] = (A, B, C, D)
    b.context["triangle"] = (A, B, C)


def _trapezoid_top(b: Builder, base: float, leg: float, angle: int) -> str:
    """A top length for trapezoid ABCD (A at the origin, AB along x, AD at ``angle``) whose
    leg BC is at least 12° from parallel to AD; the shortest listed length if none is."""
    d = (leg * math.cos(math.radians(angle)), leg * math.sin(math.radians(angle)))

    def leg_gap(top: float) -> float:
        bc = (d[0] + top - base, d[1])
        gap = abs(math.degrees(math.atan2(bc[1], bc[0]) - math.radians(angle))) % 180
        return min(gap, 180 - gap)

    options = [v for v in LENGTHS if eval_length(v) < base and leg_gap(eval_length(v)) >= 12]
    return b.choice(options) if options else min(LENGTHS, key=eval_length)


@lru_cache(maxsize=1024)
def eval_length(token: str) -> float:
    """The float value of a length literal such as ``3*sqrt(2)`` (cached: the sampler asks
    for the same few lengths thousands of times, and sympy's evaluation costs ~0.2 ms)."""
    from geoforge.exact import parse_value

    return float(parse_value(token))


def _arcs(b: Builder) -> tuple[str, str, str]:
    """Three central angles (even degrees, so inscribed angles stay whole) leaving room for a
    fourth arc of at least 50°."""
    while True:
        arcs = [int(b.rng.integers(25, 70)) * 2 for _ in range(3)]
        if sum(arcs) <= 310:
            return tuple(str(a) for a in arcs)  # type: ignore[return-value]


def circle(b: Builder, givens: bool) -> None:
    """Circle O through A, with its radius drawn."""
    O, A = b.names("O", "A")
    r = b.choice(LENGTHS)
    b.clause(f"{O} = free {O}")
    b.clause(f"{A} = lconst {A} {O} {r}")
    if givens:
        b.stmt(f"given length {O} {A} {r}")
        b.claim("length", O, A, r)
    b.stmt(f"draw circle {O} {A}")
    b.stmt(f"draw segment {O} {A}")
    b.features.append("circle")
    b.context["circle"] = (O, A)


def parallel(b: Builder, givens: bool) -> None:
    """Lines AB ∥ CD cut by a transversal PQ."""
    A, B, C, D, P, Q = b.names("A", "B", "C", "D", "P", "Q")
    length, gap = _two_lengths(b)
    b.clause(f"{A} = free {A}")
    b.clause(f"{B} = lconst {B} {A} {length}")
    b.clause(f"{C} = s_angle {B} {A} {C} {b.choice(ANGLES)}, lconst {C} {A} {gap}")
    b.clause(f"{D} = on_pline {D} {C} {A} {B}")
    b.clause(f"{P} = on_line {P} {A} {B}")
    angle = b.choice(ANGLES)
    b.clause(f"{Q} = s_angle {B} {P} {Q} {angle}, on_line {Q} {C} {D}")
    b.stmt(f"draw segment {P} {Q}")
    b.claim("parallel", A, B, C, D)
    b.claim("on_segment", P, A, B)
    b.claim("on_segment", Q, C, D)
    if givens:
        b.stmt(f"given angle {B} {P} {Q} {angle}")
        b.claim("angle", B, P, Q, angle)
        b.target("angle", P, Q, C)
    b.features.append("transversal")
    b.context["parallels"] = (A, B, C, D)


FAMILIES: dict[str, Callable[[Builder, bool], None]] = {
    "triangle": triangle,
    "quadrilateral": quadrilateral,
    "circle": circle,
    "parallel": parallel,
}
