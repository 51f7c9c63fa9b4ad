"""Goals in words: what a failing goal measures, and what a value-asking goal answers.

A problem's goals are facts (:mod:`geoforge.facts`); checking one gives a residual. A residual
says *that* a goal fails, not *why*. :func:`explain` turns a failing goal into the values it
compares, measured on the Scene: angles in degrees, lengths in diagram units (or in the
givens' units), and, for an angle, whether the goal holds with its lines in the swapped order
(a common slip between AlphaGeometry's directed angles and a figure's plain angles).
:func:`answer` gives the value that Newclid's ``acompute``, ``rcompute`` and ``lcompute`` ask
for, with its exact form where one is recognised (:func:`geoforge.exact.recognise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoforge.facts import Fact, SceneLike, line_angle, residual

#: A swapped goal counts as holding at this residual (as :data:`geoforge.problems.GOAL_TOL`).
SWAP_TOL = 1e-6


def _deg(radians: float | None) -> str:
    return "undefined" if radians is None else f"{math.degrees(radians):.2f}°"


def _len(s: SceneLike, a: str, b: str) -> float:
    return float(np.hypot(*(s.points[a] - s.points[b])))


def _swapped(goal: Fact) -> Fact | None:
    """The goal with the lines of each angle in the other order, or None when that has no
    meaning for the predicate."""
    a = goal.args
    if goal.name == "eqangle":
        return Fact("eqangle", (*a[:4], *a[6:8], *a[4:6]))
    if goal.name == "aconst":
        return Fact("aconst", (*a[2:4], *a[0:2], a[4]))
    if goal.name == "s_angle":
        return Fact("s_angle", (a[2], a[1], a[0], a[3]))
    return None


def _measured(goal: Fact, s: SceneLike) -> str:
    a, name = goal.args, goal.name
    if name in ("perp", "para"):
        return f"lines {a[0]}{a[1]} and {a[2]}{a[3]} meet at {_deg(line_angle(s, *a[:4]))}"
    if name == "eqangle":
        return (
            f"∠({a[0]}{a[1]}, {a[2]}{a[3]}) = {_deg(line_angle(s, *a[:4]))}, ∠({a[4]}{a[5]}, {a[6]}{a[7]}) = "
            + _deg(line_angle(s, *a[4:8]))
        )
    if name == "aconst":
        return f"∠({a[0]}{a[1]}, {a[2]}{a[3]}) = {_deg(line_angle(s, *a[:4]))}, expected {a[4]}"
    if name == "s_angle":
        return (
            f"∠({a[1]}{a[0]}, {a[1]}{a[2]}) = {_deg(line_angle(s, a[1], a[0], a[1], a[2]))}, expected {a[3]}"
        )
    if name == "cong":
        return f"|{a[0]}{a[1]}| = {_len(s, a[0], a[1]):.4g}, |{a[2]}{a[3]}| = {_len(s, a[2], a[3]):.4g}"
    if name == "eqratio":
        r = [_len(s, a[i], a[i + 1]) / max(_len(s, a[i + 2], a[i + 3]), 1e-12) for i in (0, 4)]
        return f"|{a[0]}{a[1]}|/|{a[2]}{a[3]}| = {r[0]:.4g}, |{a[4]}{a[5]}|/|{a[6]}{a[7]}| = {r[1]:.4g}"
    if name in ("coll", "cyclic", "midp", "circle"):
        what = {
            "coll": "a common line",
            "cyclic": "a common circle",
            "midp": "the midpoint",
            "circle": "the circle",
        }
        return f"off {what[name]} by {residual(goal, s):.2%} of the figure size"
    return f"residual {residual(goal, s):.3g}"


def explain(goal: Fact, scene: SceneLike) -> str:
    """Why ``goal`` fails on ``scene``, in measured values: e.g. ``lines ah and bc meet at
    87.31°`` or ``∠(ab, cd) = 31.20°, ∠(ef, gh) = 148.80°; the swapped order `eqangle a b c d
    g h e f` holds``. Raises KeyError for an unknown point."""
    text = _measured(goal, scene)
    swapped = _swapped(goal)
    if swapped is not None:
        holds = residual(swapped, scene) <= SWAP_TOL
        text += f"; the swapped order `{swapped.text()}` " + ("holds" if holds else "does not hold either")
    return text


@dataclass(frozen=True)
class Answer:
    """The value a value-asking goal asks for: ``value`` (degrees for ``acompute``, a ratio for
    ``rcompute``, a length in the givens' units for ``lcompute``), its ``unit`` (``°`` or
    ``""``) and ``exact``, its exact form (sympy text such as ``60`` or ``2*sqrt(3)``) or None."""

    value: float
    unit: str
    exact: str | None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"value": round(self.value, 9), "unit": self.unit, "exact": self.exact}

    def text(self) -> str:
        """``90°`` or ``1.732 (exact √3)``."""
        from geoforge.exact import format_literal

        shown = f"{self.value:.6g}{self.unit}"
        return shown if self.exact is None else f"{shown} (exact {format_literal(self.exact, self.unit)})"


def answer(goal: Fact, scene: SceneLike) -> Answer | None:
    """The :class:`Answer` to ``goal`` if it asks for a value (``acompute a b c d``: the
    directed angle from line ab to line cd, in [0°, 180°); ``rcompute a b c d``: |ab|/|cd|;
    ``lcompute a b``: |ab|), else None. Angles are recognised as exact rationals of a degree
    (denominator ≤ 12), ratios and lengths as p/q·√n (:func:`geoforge.exact.recognise`)."""
    from geoforge.exact import recognise

    a = goal.args
    if goal.name == "acompute":
        theta = line_angle(scene, *a)
        if theta is None:
            return None
        value, unit, exact = math.degrees(theta), "°", recognise(math.degrees(theta), 1e-9, 12, 1)
    elif goal.name == "rcompute":
        value, unit = _len(scene, a[0], a[1]) / max(_len(scene, a[2], a[3]), 1e-12), ""
        exact = recognise(value)
    elif goal.name == "lcompute":
        value, unit = _len(scene, a[0], a[1]) * scene.unit, ""
        exact = recognise(value)
    else:
        return None
    return Answer(value, unit, None if exact is None else str(exact).replace(" ", ""))
