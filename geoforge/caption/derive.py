"""Captions for any program: the claims a user's own program (or a problem file's) states.

The sampler knows what each figure it builds means and records claims as it goes
(:mod:`geoforge.sampler`). A user's program has no such record, so its claims are derived from
its constructions: a construction in :data:`CONSTRUCTION_CLAIMS` states the claims listed there
(``foot`` → "AD is the altitude from A to BC", ``triangle12`` → a triangle and "AB : AC = 1 : 2",
``s_angle`` → its plain angle); any other construction, a plugin's included, states the claims
of the facts it declares (:data:`FACT_CLAIMS`: ``coll`` → on a line, ``perp`` → perpendicular,
``cong`` → equal, ``cyclic`` → concyclic...). Captions name points as figures label them (an
upper-case letter, digits, primes), so :func:`display_names` relabels ``a`` as ``A``.

:func:`caption_program` realises the relabelled program and writes a caption of each style with
:func:`geoforge.caption.make_caption`, which keeps only the claims that hold on the figure and
reads its own text back, exactly as the sampler's captions are made. Goals are theorems to
prove, not what the figure is built from, so they are never claimed; a value-asking goal
(``acompute``, ``lcompute``) becomes the question of the question style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import sympy

from geoforge.caption.claims import STYLES, Claim, Target
from geoforge.caption.write import Caption, make_caption
from geoforge.program import Program
from geoforge.scene import Scene

#: Claims per construction, over its parameter names (comma-separated ``kind args``; a ratio's
#: value is written in place).
CONSTRUCTION_CLAIMS: dict[str, str] = {
    "triangle": "triangle a b c",
    "acute_triangle": "triangle a b c",
    "r_triangle": "right a b c",
    "risos": "right a b c, equal a b a c",
    "iso_triangle": "isosceles a b c",
    "iso_triangle0": "isosceles a b c",
    "ieq_triangle": "equilateral a b c",
    "eq_triangle": "equilateral x b c",
    "triangle12": "triangle a b c, ratio a b a c 1/2",
    "square": "square a b x y",
    "isquare": "square a b c d",
    "rectangle": "rectangle a b c d",
    "parallelogram": "parallelogram a b c x",
    "trapezoid": "trapezoid a b c d",
    "r_trapezoid": "trapezoid a b c d, perpendicular a b a d",
    "eq_trapezoid": "isosceles_trapezoid a b c d",
    "iso_trapezoid": "isosceles_trapezoid a b c d",
    "foot": "altitude a x b c",
    "midpoint": "midpoint x a b",
    "mirror": "midpoint b a x",
    "circle": "circumcentre x a b c",
    "circumcenter": "circumcentre x a b c",
    "incenter": "incentre x a b c",
    "orthocenter": "orthocentre x a b c",
    "centroid": "centroid i a b c, midpoint x b c, midpoint y c a, midpoint z a b",
    "on_circum": "concyclic a b c x",
    "on_circle": "on_circle x o",
    "lc_tangent": "tangent x a o",
    "tangent": "tangent a x o, tangent a y o",
    "intersection_ll": "intersection x a b c d",
    "between": "on_segment c a b",
    "between_bound": "on_segment x a b",
}
#: Claim kinds of declared facts, for constructions not in :data:`CONSTRUCTION_CLAIMS`.
FACT_CLAIMS = {
    "perp": "perpendicular",
    "para": "parallel",
    "cong": "equal",
    "midp": "midpoint",
    "cyclic": "concyclic",
    "circle": "circumcentre",
}

_LABEL = re.compile(r"^([A-Za-z])([0-9]*)('*)$")


def display_names(points: tuple[str, ...] | list[str]) -> dict[str, str]:
    """An injective map from point names to caption labels: ``a`` → ``A``, ``h1`` → ``H1``,
    ``b'`` → ``B'``; a name that is not one letter with digits or primes, or whose label is
    taken, gets its first letter and the smallest free number (``ma`` → ``M1``)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for p in points:
        m = _LABEL.match(p)
        label = f"{m.group(1).upper()}{m.group(2)}{m.group(3)}" if m else ""
        k = 1
        while not label or label in used:
            label = f"{p[0].upper()}{k}"
            k += 1
        used.add(label)
        out[p] = label
    return out


def _plain_degrees(token: str) -> str | None:
    """The plain angle (0°, 180°) that an ``s_angle`` of ``token`` degrees makes, as sympy
    text, or None (radians or a straight angle)."""
    from geoforge.exact import parse_value

    value = parse_value(token)
    if value.has(sympy.pi):
        value = value * 180 / sympy.pi
    folded = sympy.Mod(value, 360)
    plain = 360 - folded if folded > 180 else folded
    return None if plain in (0, 180) else str(sympy.nsimplify(plain)).replace(" ", "")


def _ratio(token: str) -> str | None:
    from geoforge.exact import parse_value

    q = parse_value(token)
    return str(q) if isinstance(q, sympy.Rational) and q > 0 else None


def _fact_claim(name: str, args: tuple[str, ...], outputs: set[str]) -> Claim | None:
    """The claim a declared fact states, or None when none of the kinds says it."""
    if name == "coll" and len(args) == 3:
        first = next((a for a in args if a in outputs), args[0])
        return Claim("on_segment", (first, *(a for a in args if a != first)))
    if name == "lconst":
        return Claim("length", args)
    if name == "rconst":
        value = _ratio(args[-1])
        return None if value is None else Claim("ratio", (*args[:4], value))
    kind = FACT_CLAIMS.get(name)
    if (
        kind is None
        or (kind == "concyclic" and len(args) != 4)
        or (kind == "circumcentre" and len(args) != 4)
    ):
        return None
    return Claim(kind, args)


def program_claims(program: Program) -> tuple[list[Claim], list[Target]]:
    """The claims ``program``'s constructions state (see the module docstring), without
    repeats, and the values its goals ask for (``acompute`` of two lines through one point
    asks for a plain angle, ``lcompute`` for a length), in the program's point names."""
    from geoforge.constructions import REGISTRY

    claims: list[Claim] = []
    for clause in program.clauses:
        for call in clause.calls:
            c = REGISTRY[call.name]
            binding = dict(zip(c.params, call.args))
            found: list[Claim | None] = []
            if call.name == "s_angle":
                plain = _plain_degrees(binding["y"])
                found.append(
                    None
                    if plain is None
                    else Claim("angle", (binding["a"], binding["b"], binding["x"], plain))
                )
            elif call.name in CONSTRUCTION_CLAIMS:
                for item in CONSTRUCTION_CLAIMS[call.name].split(","):
                    kind, *names = item.split()
                    found.append(Claim(kind, tuple(binding.get(n, n) for n in names)))
            else:
                outputs = set(clause.points)
                for f in c.facts:
                    found.append(_fact_claim(f.name, tuple(binding.get(a, a) for a in f.args), outputs))
            claims.extend(k for k in found if k is not None and k not in claims)
    targets = []
    for g in program.goals:
        a = g.args
        if g.name == "acompute" and len(set(a)) == 3:
            shared = (set(a[:2]) & set(a[2:])).pop() if set(a[:2]) & set(a[2:]) else None
            if shared is not None:
                ends = [p for p in a if p != shared]
                targets.append(Target("angle", (ends[0], shared, ends[1])))
        elif g.name == "lcompute":
            targets.append(Target("length", a))
    return claims, targets


@dataclass
class Captioned:
    """A program captioned as the sampler captions its figures: ``program`` relabelled with
    ``labels`` (original name → caption label), its ``scene``, one caption per style,
    and the ``dropped`` claims that did not hold on the figure."""

    program: Program
    labels: dict[str, str]
    scene: Scene
    captions: dict[str, Caption]
    dropped: list[Claim] = field(default_factory=list)

    def to_json(self, style: str) -> dict[str, object]:
        """JSON-ready record in the shape of a corpus sample's ``KEY.json`` caption fields:
        ``program`` (relabelled, in its dialect), ``dialect``, ``labels``, ``seed``,
        ``style``, ``caption`` (of ``style``), ``captions`` (every style), ``facts`` and
        ``dropped`` claims."""
        caption = self.captions[style]
        return {
            "program": self.program.text(),
            "dialect": self.program.dialect,
            "labels": self.labels,
            "seed": self.scene.seed,
            "style": style,
            "caption": caption.to_json(),
            "captions": {s: c.to_json() for s, c in self.captions.items()},
            "facts": [f.text() for f in caption.facts()],
            "dropped": [c.to_json() for c in self.dropped],
        }


def caption_program(program: Program, seed: int = 0, styles: tuple[str, ...] = STYLES) -> Captioned:
    """Relabel ``program`` for captions, realise it with ``seed`` and write a caption of each
    of ``styles`` (descriptive wordings drawn from ``seed``). Raises RealiseError if the
    program cannot be realised and ValueError for an unknown style."""
    from geoforge.realise import realise

    labels = display_names(program.points)
    shown = program.renamed(labels)
    scene = realise(shown, seed=seed)
    claims, targets = program_claims(shown)
    rng = np.random.default_rng(seed)
    captions: dict[str, Caption] = {}
    dropped: list[Claim] = []
    for style in styles:
        captions[style], lost = make_caption(scene, claims, style, rng, targets)
        dropped += [c for c in lost if c not in dropped]
    return Captioned(shown, labels, scene, captions, dropped)
