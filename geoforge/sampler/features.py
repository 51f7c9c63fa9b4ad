"""Features: additions to a base figure (see :mod:`geoforge.sampler.families`).

Each feature needs one context entry of the :class:`Builder` (``triangle``, ``quad``,
``circle``, ``parallels``), adds clauses, statements, claims and targets, and may add context
(a circumcircle gives a ``circle``). A feature appears at most once per figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geoforge.sampler.builder import Builder


def _vertex(b: Builder) -> tuple[str, str, str]:
    """A random vertex of the context triangle and its opposite side."""
    A, B, C = b.context["triangle"]
    k = int(b.rng.integers(3))
    return ((A, B, C), (B, C, A), (C, A, B))[k]


def altitude(b: Builder) -> None:
    v, p, q = _vertex(b)
    D = b.name("D", "E", "F")
    b.clause(f"{D} = foot {D} {v} {p} {q}")
    b.stmt(f"mark right {v} {D} {p if p != D else q}")
    b.claim("altitude", v, D, p, q)
    b.target("length", v, D)


def median(b: Builder) -> None:
    v, p, q = _vertex(b)
    M = b.name("M", "N", "D", "E")
    b.clause(f"{M} = midpoint {M} {p} {q}")
    b.stmt(f"draw segment {v} {M}")
    b.stmt(f"mark equal {p} {M} {M} {q}")
    b.claim("median", v, M, p, q)
    b.target("length", v, M)


def bisector(b: Builder) -> None:
    v, p, q = _vertex(b)
    D = b.name("D", "E", "F")
    b.clause(f"{D} = on_line {D} {p} {q}, angle_bisector {D} {p} {v} {q}")
    b.stmt(f"mark equalangle {p} {v} {D} {D} {v} {q}")
    b.claim("bisector", v, D, p, q)


def midline(b: Builder) -> None:
    v, p, q = _vertex(b)
    M, N = b.name("M", "D"), b.name("N", "E")
    b.clause(f"{M} = midpoint {M} {v} {p}")
    b.clause(f"{N} = midpoint {N} {v} {q}")
    b.stmt(f"draw segment {M} {N}")
    b.claim("midpoint", M, v, p)
    b.claim("midpoint", N, v, q)
    b.claim("parallel", M, N, p, q)
    b.target("length", M, N)


def circumcircle(b: Builder) -> None:
    A, B, C = b.context["triangle"]
    O = b.name("O", "K")
    b.clause(f"{O} = circumcenter {O} {A} {B} {C}")
    b.stmt(f"draw circle {O} {A}")
    b.claim("circumcentre", O, A, B, C)
    b.context["circle"] = (O, A)


def incircle(b: Builder) -> None:
    A, B, C = b.context["triangle"]
    X, Y, Z, I = b.name("D", "X"), b.name("E", "Y"), b.name("F", "Z"), b.name("I", "K")
    b.clause(f"{X} {Y} {Z} {I} = incenter2 {X} {Y} {Z} {I} {A} {B} {C}")
    b.stmt(f"draw circle {I} {X}")
    b.claim("incentre", I, A, B, C)
    b.claim("touch", I, X, B, C)


def centroid(b: Builder) -> None:
    A, B, C = b.context["triangle"]
    X, Y, Z, G = b.name("D", "L"), b.name("E", "M"), b.name("F", "N"), b.name("G", "K")
    b.clause(f"{X} {Y} {Z} {G} = centroid {X} {Y} {Z} {G} {A} {B} {C}")
    b.claim("centroid", G, A, B, C)
    b.claim("midpoint", X, B, C)


def orthocentre(b: Builder) -> None:
    A, B, C = b.context["triangle"]
    D, E, H = b.name("D", "L"), b.name("E", "M"), b.name("H", "K")
    b.clause(f"{D} = foot {D} {A} {B} {C}")
    b.clause(f"{E} = foot {E} {B} {C} {A}")
    b.clause(f"{H} = on_line {H} {A} {D}, on_line {H} {B} {E}")
    b.claim("altitude", A, D, B, C)
    b.claim("altitude", B, E, C, A)
    b.claim("orthocentre", H, A, B, C)


def diagonals(b: Builder) -> None:
    A, B, C, D = b.context["quad"]
    M = b.name("O", "M", "P")
    b.clause(f"{M} = intersection_ll {M} {A} {C} {B} {D}")
    b.stmt(f"draw segment {A} {C}")
    b.stmt(f"draw segment {B} {D}")
    b.claim("intersection", M, A, C, B, D)
    b.target("length", A, C)


def side_midpoint(b: Builder) -> None:
    A, B, C, D = b.context["quad"]
    p, q = b.choice([(A, B), (B, C), (C, D), (D, A)])
    M = b.name("M", "N", "E")
    b.clause(f"{M} = midpoint {M} {p} {q}")
    b.claim("midpoint", M, p, q)


def _on_circle(b: Builder, x: str, o: str, a: str) -> str:
    """A point on circle (o, |oa|) at a random whole-degree central angle from a."""
    return f"s_angle {a} {o} {x} {int(b.rng.integers(20, 340))}, on_circle {x} {o} {a}"


def _outside(b: Builder, p: str, a: str, o: str) -> str:
    """A point on ray oa beyond a, at 1.3–3 radii from o (a whole number of tenths)."""
    return f"on_opline {p} {a} {o}, rconst {o} {a} {o} {p} {10}/{int(b.rng.integers(13, 31))}"


def chord(b: Builder) -> None:
    O, A = b.context["circle"]
    P, Q = b.name("P", "E"), b.name("Q", "F")
    b.clause(f"{P} = {_on_circle(b, P, O, A)}")
    b.clause(f"{Q} = {_on_circle(b, Q, O, A)}")
    b.stmt(f"draw segment {P} {Q}")
    b.claim("chord", P, Q, O)


def diameter(b: Builder) -> None:
    O, A = b.context["circle"]
    B, C = b.name("B", "E"), b.name("C", "F")
    b.clause(f"{B} = mirror {B} {A} {O}")
    b.clause(f"{C} = {_on_circle(b, C, O, A)}")
    b.stmt(f"draw segment {A} {B}")
    b.stmt(f"draw polygon {A} {C} {B}")
    b.stmt(f"mark right {A} {C} {B}")
    b.claim("diameter", A, B, O)
    b.claim("on_circle", C, O)
    b.target("angle", A, C, B)


def tangent_at(b: Builder) -> None:
    O, A = b.context["circle"]
    T = b.name("T", "E")
    b.clause(f"{T} = lc_tangent {T} {A} {O}")
    b.stmt(f"draw segment {O} {A}")
    b.stmt(f"mark right {T} {A} {O}")
    b.claim("tangent", T, A, O)


def tangents_from(b: Builder) -> None:
    O, A = b.context["circle"]
    P, X, Y = b.name("P", "E"), b.name("X", "M"), b.name("Y", "N")
    b.clause(f"{P} = {_outside(b, P, A, O)}")
    b.clause(f"{X} {Y} = tangent {X} {Y} {P} {O} {A}")
    b.stmt(f"draw segment {P} {X}")
    b.stmt(f"draw segment {P} {Y}")
    b.stmt(f"mark right {P} {X} {O}")
    b.stmt(f"draw segment {O} {X}")
    b.claim("tangent", P, X, O)
    b.claim("tangent", P, Y, O)
    b.claim("equal", P, X, P, Y)


def secant(b: Builder) -> None:
    O, A = b.context["circle"]
    P, B, C = b.name("P", "E"), b.name("B", "F"), b.name("C", "G")
    b.clause(f"{P} = {_outside(b, P, A, O)}")
    b.clause(f"{B} = {_on_circle(b, B, O, A)}")
    b.clause(f"{C} = intersection_lc {C} {P} {O} {B}")
    b.stmt(f"draw segment {P} {C}")
    b.claim("secant", P, B, C, O)


def inscribed_angle(b: Builder) -> None:
    O, A = b.context["circle"]
    B, C = b.name("B", "E"), b.name("C", "F")
    if any(st.startswith("given length") for st in b.statements) or b.rng.uniform() < 0.5:
        angle = str(2 * int(b.rng.integers(20, 80)))
        b.clause(f"{B} = s_angle {A} {O} {B} {angle}, on_circle {B} {O} {A}")
        b.stmt(f"given angle {A} {O} {B} {angle}")
        b.claim("angle", A, O, B, angle)
        b.target("angle", A, C, B)
    else:
        b.clause(f"{B} = {_on_circle(b, B, O, A)}")
    b.clause(f"{C} = {_on_circle(b, C, O, A)}")
    b.stmt(f"draw polygon {A} {O} {B} {C}")
    b.claim("on_circle", B, O)
    b.claim("on_circle", C, O)


def second_transversal(b: Builder) -> None:
    A, B, C, D = b.context["parallels"]
    R, S = b.name("R", "E"), b.name("S", "F")
    b.clause(f"{R} = on_line {R} {A} {B}")
    b.clause(f"{S} = on_line {S} {C} {D}")
    b.stmt(f"draw segment {R} {S}")
    b.claim("on_segment", R, A, B)


@dataclass(frozen=True)
class Feature:
    """A feature: its ``name``, the context entry it ``needs`` and the function that adds it."""

    name: str
    needs: str
    add: Callable[[Builder], None]


FEATURES: tuple[Feature, ...] = (
    Feature("altitude", "triangle", altitude),
    Feature("median", "triangle", median),
    Feature("bisector", "triangle", bisector),
    Feature("midline", "triangle", midline),
    Feature("circumcircle", "triangle", circumcircle),
    Feature("incircle", "triangle", incircle),
    Feature("centroid", "triangle", centroid),
    Feature("orthocentre", "triangle", orthocentre),
    Feature("diagonals", "quad", diagonals),
    Feature("side_midpoint", "quad", side_midpoint),
    Feature("chord", "circle", chord),
    Feature("diameter", "circle", diameter),
    Feature("tangent_at", "circle", tangent_at),
    Feature("tangents_from", "circle", tangents_from),
    Feature("secant", "circle", secant),
    Feature("inscribed_angle", "circle", inscribed_angle),
    Feature("second_transversal", "parallels", second_transversal),
)
