"""``alter_relation``: swap one construction for a near relative.

perpendicular → oblique (``foot``, ``on_tline``, ``lc_tangent``), parallel → slightly
converging (``on_pline``), midpoint → off-centre point (``midpoint``, ``mirror``), bisector →
non-bisector (``angle_bisector``), a given angle or length changed (``s_angle``, ``aconst``,
``lconst``: isosceles → scalene, right → oblique), and a point on a circle moved off it
(``on_circle``). The new construction is written so the point lands near where it was (the
verifier realises negatives next to the positive). Angles change by 10° to 25° and lengths
by 20% to 40%, beyond the verifier's margins. A clause that most of the figure is built on is
changed last: the points built on it follow, so most of the ink moves (:data:`HEAVY`, and
:data:`~geoforge_perturb.MOST_INK` of the strokes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

import geoforge
from geoforge.caption import Claim
from geoforge.caption.claims import VALUE_KINDS
from geoforge.constructions import REGISTRY
from geoforge.edit import dependents, drop_givens, drop_marks, replace_clause, set_given
from geoforge.errors import ProgramError
from geoforge.exact import angle_radians, parse_value
from geoforge.perturb import ImageCandidate, Positive
from geoforge.program import Clause, Program
from geoforge.scene import Scene, stroke_share
from geoforge_perturb import MOST_INK

ANGLE_STEPS = (10, 12, 18, 25)
#: A clause whose points and the points built on them are more than this share of the figure's
#: is changed last: on 40 ``mmgeo-4k`` positives its value rewrites passed 3 times in 128 tries
#: (most moved most of the figure or needed a new framing), the others 15 in 89.
HEAVY = 0.5
LENGTH_FACTORS = ("6/5", "4/5", "7/5", "3/5")

Rule = Callable[[dict[str, str], Scene], list[tuple[str, str]]]


def _dir(scene: Scene, a: str, b: str) -> float:
    v = scene.points[b] - scene.points[a]
    return math.degrees(math.atan2(v[1], v[0]))


def _signed(scene: Scene, a: str, b: str, c: str, d: str) -> float:
    """Directed angle in degrees from direction a→b to direction c→d, in (−180, 180]."""
    return (_dir(scene, c, d) - _dir(scene, a, b) + 180) % 360 - 180


def _tilted(base: float) -> list[float]:
    return [round(base + s * d) for d in ANGLE_STEPS for s in (1, -1)]


def _turned(s: Scene, a: str, b: str, c: str, x: str, say: str, keep: str = "") -> list[tuple[str, str]]:
    """Put ``x`` on the ray from ``c`` at a directed angle, from direction a→b, 10°–25° off the
    one it has now (``aconst a b c x θ``), after the calls in ``keep``; ``say`` describes the
    change, with ``{t}`` for the new angle."""
    base = _signed(s, a, b, c, x)
    return [(f"{keep}aconst {a} {b} {c} {x} {t}", say.format(t=t)) for t in _tilted(base)]


def _foot(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, b, c = a["x"], a["a"], a["b"], a["c"]
    return _turned(s, b, c, p, x, f"foot {x} → {{t}}° to {b}{c}", keep=f"on_line {x} {b} {c}, ")


def _tline(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, b, c = a["x"], a["a"], a["b"], a["c"]
    return _turned(s, b, c, p, x, f"{p}{x} at {{t}}° to {b}{c} instead of 90°")


def _pline(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, b, c = a["x"], a["a"], a["b"], a["c"]
    return _turned(s, b, c, p, x, f"{p}{x} at {{t}}° to {b}{c}, not parallel")


def _tangent(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, o = a["x"], a["a"], a["o"]
    return _turned(s, o, p, p, x, f"line {p}{x} cuts the circle: {{t}}° to the radius")


def _midpoint(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, q = a["x"], a["a"], a["b"]
    return [
        (f"on_line {x} {p} {q}, rconst2 {x} {p} {q} {r}", f"{x} divides {p}{q} as {r}")
        for r in ("3/2", "2/3", "2", "1/2")
    ]


def _mirror(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, o = a["x"], a["a"], a["b"]
    return [
        (f"on_line {x} {p} {o}, rconst {o} {p} {o} {x} {r}", f"|{o}{x}| = |{o}{p}|/{r}")
        for r in ("4/3", "3/4", "3/2")
    ]


def _bisector(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, p, v = a["x"], a["a"], a["b"]
    return _turned(s, v, p, v, x, f"{v}{x} at {{t}}° from {v}{p}, not the bisector")


def _s_angle(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    y = float(parse_value(a["y"]))
    return [
        (f"s_angle {a['a']} {a['b']} {a['x']} {round(y + d)}", f"angle {y:g}° → {y + d:g}°") for d in _steps()
    ]


def _aconst(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    r = math.degrees(angle_radians(a["r"]))
    return [
        (f"aconst {a['a']} {a['b']} {a['c']} {a['x']} {round(r + d)}", f"angle {r:g}° → {r + d:g}°")
        for d in _steps()
    ]


def _steps() -> list[int]:
    return [s * d for d in ANGLE_STEPS for s in (1, -1)]


def _lconst(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    return [(f"lconst {a['x']} {a['a']} {a['l']}*{f}", f"length {a['l']} × {f}") for f in LENGTH_FACTORS]


def _on_circle(a: dict[str, str], s: Scene) -> list[tuple[str, str]]:
    x, o, p = a["x"], a["o"], a["a"]
    # rconst O P O X r makes OP : OX = r, so the new radius OX is OP × 1/r.
    return [
        (f"rconst {o} {p} {o} {x} {r}", f"{x} off circle {o}: radius × {inverse}")
        for r, inverse in (("5/4", "4/5"), ("4/5", "5/4"), ("3/2", "2/3"))
    ]


#: The rules that change a given value rather than a relation.
VALUE_RULES = ("s_angle", "aconst", "lconst")

#: Construction name → rule giving (replacement call text, description) pairs.
RULES: dict[str, Rule] = {
    "foot": _foot,
    "on_tline": _tline,
    "on_pline": _pline,
    "lc_tangent": _tangent,
    "midpoint": _midpoint,
    "mirror": _mirror,
    "angle_bisector": _bisector,
    "s_angle": _s_angle,
    "aconst": _aconst,
    "lconst": _lconst,
    "on_circle": _on_circle,
}


def _rewrites(clause: Clause, k: int, scene: Scene) -> Iterator[tuple[int, str, str]]:
    """Each (rank, clause text, description) with call ``k`` replaced by a rule's alternative;
    ``rank`` is the alternative's place in its rule's list (smallest changes first)."""
    call = clause.calls[k]
    rule = RULES.get(call.name)
    if rule is None:
        return
    binding = dict(zip(REGISTRY[call.name].params, call.args))
    for rank, (replacement, change) in enumerate(rule(binding, scene)):
        calls = [c.text() for c in clause.calls]
        calls[k] = replacement
        # A rule that keeps a locus of another call (foot → on_line ...) would duplicate it.
        unique = list(dict.fromkeys(calls))
        yield rank, f"{' '.join(clause.points)} = {', '.join(unique)}", change


def _with_givens(negative: Program, old: Clause, text: str) -> Program:
    """Keep the figure honest: a changed ``s_angle``/``lconst`` value updates the ``given``
    that shows it; any other change drops the givens on the moved point and what depends on it.
    ``negative`` has already lost the marks on the changed points (a right-angle square on a
    102° angle would show the very relation the negative breaks)."""
    new = negative.clauses[[c.points for c in negative.clauses].index(old.points)]
    for before, after in zip(old.calls, new.calls):
        if before == after:
            continue
        if before.name == after.name == "s_angle":
            a, b, x, y = after.args
            return set_given(negative, "angle", (a, b, x), str(abs(parse_value(y))))
        if before.name == after.name == "lconst":
            x, a, _ = after.args
            return set_given(negative, "length", (a, x), after.args[-1])
    return drop_givens(negative, set(old.points))


class AlterRelation:
    """Image perturbation: replace one construction by a near relative."""

    name = "alter_relation"
    kind = "image"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[ImageCandidate]:
        program, scene = positive.program, positive.scene
        options = []
        breaks: dict[int, tuple[Claim, ...]] = {}  # clause → the stated claims naming its points
        for i, clause in enumerate(program.clauses):
            if clause.pinned:
                continue
            # Most of the figure is built on this clause: changing it moves most of the ink.
            moved = dependents(program, set(clause.points))
            heavy = len(moved) > len(scene.points) * HEAVY or stroke_share(scene, moved) >= MOST_INK
            # A new value where the caption states no value on the clause's points rarely shows:
            # what is built on them follows it and keeps the stated relations.
            breaks[i] = tuple(c for c in positive.caption.claims if c.points & set(clause.points))
            valued = any(c.kind in VALUE_KINDS for c in breaks[i])
            for k, call in enumerate(clause.calls):
                blind = call.name in VALUE_RULES and not valued
                for rank, text, change in _rewrites(clause, k, scene):
                    options.append((heavy, blind, rank // 2, i, text, change))
        # Clauses that carry less than half the figure first, then the changes that may break a
        # stated value, then the smallest changes (each rule lists its alternatives from the
        # smallest, in pairs of opposite signs), in random order among clauses: the hardest
        # negatives are the least visible changes that still break a claim.
        keys = rng.permutation(len(options))
        unmarked: dict[int, Program | None] = {}  # clause → the program without its points' marks
        for *_, i, text, change in sorted((*o[:3], int(k), *o[3:]) for o, k in zip(options, keys)):
            points = set(program.clauses[i].points)
            if i not in unmarked:
                try:
                    unmarked[i] = drop_marks(program, points)
                except ProgramError:
                    unmarked[i] = None
            base = unmarked[i]
            if base is None:
                continue
            try:
                negative = _with_givens(replace_clause(base, i, text), program.clauses[i], text)
            except ProgramError:
                continue
            yield ImageCandidate(negative, i + 1, change, breaks[i])


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(AlterRelation())
