"""Reasoning questions: a length, angle or ratio that follows from what the figure states.

A reasoning question states the figure's claims (the question-style caption's set-up, givens
included) and asks for one value: "Find the length of BC.", "Find ∠ABC." or "Find the ratio
MN/BC.". Its answer is exact: the closed form (:func:`geoforge.exact.recognise`; whole or
fractional degrees for angles) checked on the figure to :data:`geoforge.qa.perception.EXACT`.

A value is asked only if it *follows* from what is stated. The program also holds values it
does not show (a hidden apex angle, the random position of a chord); a question whose answer
depends on one is unanswerable. So the figure is realised again (:func:`alternatives`): once
with another seed, and once per literal of the program nudged up and once nudged down (angles
and lengths ×1.1 and ×0.9). Every alternative on which all stated claims and givens still hold
is a figure the question describes equally well; the value must be the same on all of them
(to 1e-7 relative). A nudged literal that the claims or givens fix breaks one of them, so it
rules nothing out.

Each answer carries its chain: the givens and stated facts about the points it depends on,
and the facts of the constructions that build them (DSL text).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from geoforge.caption import Claim, Target, caption_text, exact_claim, question_text
from geoforge.constructions import REGISTRY
from geoforge.errors import GeoforgeError
from geoforge.exact import parse_value, recognise
from geoforge.facts import PREDICATES
from geoforge.program import Call, Program
from geoforge.qa.items import Answer
from geoforge.qa.perception import EXACT, segments, stated_facts
from geoforge.scene import Scene

#: Factors each literal is nudged by when looking for figures the question also describes.
NUDGES = (sympy.Rational(11, 10), sympy.Rational(9, 10))
#: Relative agreement required of a value on every alternative figure.
SAME = 1e-7
#: Largest denominator of a ratio's closed form (BD/DC = AB²/AC² = 9/16 in a 3-4-5 triangle).
RATIO_DEN = 36


@dataclass(frozen=True)
class Value:
    """A value a reasoning question may ask for: ``relation`` (``length``, ``angle``,
    ``ratio``), its points (``A B``; ``A B C`` with the vertex in the middle; ``A B C D`` for
    AB/CD), and ``measure`` on a scene (given units, degrees, or a plain ratio)."""

    relation: str
    points: tuple[str, ...]

    def measure(self, scene: Scene) -> float:
        """The value on ``scene``; ``nan`` if a point is missing or a segment vanishes."""
        if any(p not in scene.points for p in self.points):
            return math.nan
        if self.relation == "ratio":
            a, b, c, d = (scene.points[p] for p in self.points)
            den = math.hypot(*(c - d))
            return math.hypot(*(a - b)) / den if den > 1e-12 else math.nan
        return Target(self.relation, self.points).measure(scene)

    def question(self) -> str:
        """The question asked: "Find the length of AB.", "Find ∠ABC." or "Find the ratio AB/CD."."""
        if self.relation == "ratio":
            a, b, c, d = self.points
            return f"Find the ratio {a}{b}/{c}{d}."
        return question_text(Target(self.relation, self.points))


def _nudged(program: Program) -> list[Program]:
    """``program`` with one literal multiplied by each of :data:`NUDGES`, for every literal."""
    out = []
    for i, clause in enumerate(program.clauses):
        for j, call in enumerate(clause.calls):
            c = REGISTRY[call.name]
            for k, param in enumerate(c.params):
                if param not in c.literals:
                    continue
                for factor in NUDGES:
                    args = list(call.args)
                    args[k] = str(parse_value(args[k]) * factor).replace(" ", "")
                    calls = (*clause.calls[:j], Call(call.name, tuple(args)), *clause.calls[j + 1 :])
                    clauses = list(program.clauses)
                    clauses[i] = dataclasses.replace(clause, calls=calls)
                    out.append(dataclasses.replace(program, clauses=tuple(clauses)))
    return out


def alternatives(scene: Scene, claims: Sequence[Claim]) -> list[Scene]:
    """Other realisations of ``scene``'s program, and of its literal-nudged variants, on which
    every claim in ``claims`` and every given holds (module docstring). Nudged variants are
    realised next to ``scene`` (its seed, its points as reference)."""
    from geoforge.realise import realise

    out = []
    tries = [(scene.program, scene.seed + 1, None)] + [
        (p, scene.seed, scene.points) for p in _nudged(scene.program)
    ]
    for program, seed, reference in tries:
        try:
            alt = realise(program, seed=seed, max_tries=3, reference=reference)
        except GeoforgeError:
            continue
        if all(c.holds(alt) for c in claims):
            out.append(alt)
    return out


def _degrees(x: float) -> sympy.Expr | None:
    """``x`` degrees as a fraction with denominator at most 12, or ``None``."""
    for q in range(1, 13):
        p = round(x * q)
        if abs(p / q - x) <= 1e-9 * max(1.0, abs(x)):
            return sympy.Rational(p, q)
    return None


def exact_value(value: Value, scene: Scene) -> Answer | None:
    """The exact answer of ``value`` on ``scene``, checked there, or ``None``: lengths need a
    printed length (:func:`geoforge.caption.exact_claim`), angles lie strictly between 0° and
    180° in whole or fractional degrees, ratios have a closed form (denominator at most
    :data:`RATIO_DEN`)."""
    if value.relation == "ratio":
        r = value.measure(scene)
        exact = recognise(r, max_den=RATIO_DEN) if math.isfinite(r) and r > 0 else None
        if exact is None or abs(float(exact) - r) > EXACT * r:
            return None
        return Answer("ratio", str(exact).replace(" ", ""))
    if value.relation == "angle":
        deg = value.measure(scene)
        if not 0.5 < deg < 179.5 or _degrees(deg) is None:
            return None
    claim = exact_claim(Target(value.relation, value.points), scene)
    return None if claim is None else Answer(value.relation, claim.args[-1])


def follows(value: Value, scene: Scene, others: Sequence[Scene]) -> bool:
    """True if ``value`` is the same on ``scene`` and every alternative in ``others``."""
    x = value.measure(scene)
    return all(abs(value.measure(o) - x) <= SAME * max(abs(x), 1.0) for o in others)


def candidates(scene: Scene) -> list[Value]:
    """Values a figure invites: each drawn segment's length, each angle between two drawn
    segments that meet at a labelled point, and each ratio of two drawn segments."""
    segs = segments(scene)
    out = [Value("length", s) for s in segs]
    for v in scene.points:
        ends = sorted({n for g in scene.lines if v in g for n in _beside(g, v)})
        out += [Value("angle", (a, v, c)) for i, a in enumerate(ends) for c in ends[i + 1 :]]
    out += [Value("ratio", (*s, *t)) for s in segs for t in segs if s != t]
    return out


def _beside(line: tuple[str, ...], v: str) -> list[str]:
    i = line.index(v)
    return [line[j] for j in (i - 1, i + 1) if 0 <= j < len(line)]


def stated_values(claims: Sequence[Claim]) -> set[tuple[str, ...]]:
    """``(relation, *points)`` keys of the values the claims state outright (givens), in both
    orders, so that a question never asks for one."""
    out = set()
    for c in claims:
        if c.kind in ("length", "angle"):
            pts = c.args[:-1]
            out |= {(c.kind, *pts), (c.kind, *reversed(pts))}
    return out


def chain(scene: Scene, claims: Sequence[Claim], points: Sequence[str]) -> tuple[str, ...]:
    """The givens, stated facts and construction facts over the points that ``points``
    depend on (through the clauses that build them), as DSL text, givens first. Construction
    facts with a literal value (``lconst``, ``s_angle`` ...) are left out: a value the figure
    shows is among the givens."""
    program = scene.program
    need = set(points)
    facts: list[str] = []
    for clause in reversed(program.clauses):
        if not set(clause.points) & need:
            continue
        for call in clause.calls:
            c = REGISTRY[call.name]
            bind = dict(zip(c.params, call.args))
            need |= {bind[p] for p in c.inputs}
            facts += [
                " ".join((f.name, *(bind.get(a, a) for a in f.args)))
                for f in c.facts
                if not PREDICATES[f.name].literals
            ]
    givens = [st.text() for st in program.statements if st.kind == "given" and set(st.points) <= need]
    stated = [f.text() for f in stated_facts(claims) if set(f.points) <= need]
    return tuple(dict.fromkeys(givens + stated + facts[::-1]))


def setup(claims: Sequence[Claim], value: Value) -> str:
    """The question's words: the question-style caption of ``claims`` asking for ``value``."""
    return caption_text(list(claims), "question", question=value.question())
