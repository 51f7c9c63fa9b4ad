"""``caption_rules``: caption negatives made by editing one claim of the positive caption.

Four edits, as in MMGeoLM's rule-based negatives (Sun et al. 2025): a **value change** (a
length scaled by 3/2, 2/3, 5/4, ...; an angle moved by 10° to 30°), a **relation swap**
(parallel ↔ perpendicular, altitude ↔ median ↔ bisector, circumcentre ↔ incentre ↔ centroid ↔
orthocentre), a **shape swap** (square → rhombus → parallelogram, isosceles → equilateral,
...) and a **relabel** (two point names of a claim exchanged, or one replaced by another
point of the figure); a claim may also be replaced by a **false relation** between two drawn
segments (parallel, perpendicular or equal). A relabel that only rotates or reverses a polygon name is a
paraphrase, and the verifier rejects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from itertools import combinations, pairwise

import numpy as np
import sympy

import geoforge
from geoforge.caption import Claim
from geoforge.exact import parse_value
from geoforge.perturb import CaptionCandidate, Positive

SWAPS = {
    "parallel": ("perpendicular",),
    "perpendicular": ("parallel",),
    "altitude": ("median", "bisector"),
    "median": ("altitude", "bisector"),
    "bisector": ("altitude", "median"),
    "circumcentre": ("incentre", "centroid", "orthocentre"),
    "incentre": ("circumcentre", "centroid", "orthocentre"),
    "centroid": ("circumcentre", "orthocentre", "incentre"),
    "orthocentre": ("circumcentre", "centroid", "incentre"),
    "tangent": ("perpendicular",),
}
SHAPES = {
    "square": ("rhombus", "rectangle", "trapezoid"),
    "rectangle": ("square", "rhombus"),
    "rhombus": ("square", "rectangle"),
    "parallelogram": ("rectangle", "rhombus", "square", "isosceles_trapezoid"),
    "trapezoid": ("parallelogram", "isosceles_trapezoid", "rectangle"),
    "isosceles_trapezoid": ("parallelogram", "rectangle"),
    "kite": ("rhombus", "square", "parallelogram"),
    "cyclic_quadrilateral": ("square", "rectangle", "parallelogram"),
    "isosceles": ("equilateral", "right"),
    "equilateral": ("right",),
    "right": ("isosceles", "equilateral"),
    "triangle": ("isosceles", "equilateral", "right"),
}
LENGTH_FACTORS = ("3/2", "2/3", "5/4", "4/5", "2", "1/2")
ANGLE_STEPS = (10, 15, 20, 30)


@lru_cache(maxsize=4096)
def _scaled(value: str, factor: str) -> str:
    """The literal ``value`` times ``factor`` as claim text (cached: captions state the same few
    lengths again and again). The product is exact, so sympy's nsimplify (about a millisecond)
    is only needed for a float, which :func:`geoforge.exact.parse_value` does not make."""
    scaled = parse_value(value) * sympy.Rational(factor)
    return str(sympy.nsimplify(scaled) if scaled.has(sympy.Float) else scaled).replace(" ", "")


def _value_changes(claim: Claim) -> Iterator[tuple[Claim, str]]:
    if claim.kind == "length":
        for f in LENGTH_FACTORS:
            yield Claim("length", (*claim.args[:2], _scaled(claim.args[-1], f))), f"length × {f}"
    else:
        v = parse_value(claim.args[-1])
        for d in ANGLE_STEPS:
            for s in (1, -1):
                new = v + s * d
                if 0 < new < 180:
                    yield Claim("angle", (*claim.args[:3], str(new))), f"angle {s * d:+d}°"


def _relabels(claim: Claim, points: list[str], rng: np.random.Generator) -> Iterator[tuple[Claim, str]]:
    names = [a for a in claim.args if a in points]
    for a, b in combinations(sorted(set(names)), 2):
        swapped = tuple(b if x == a else a if x == b else x for x in claim.args)
        yield Claim(claim.kind, swapped), f"relabel {a}↔{b}"
    others = [p for p in points if p not in names]
    if others and names:
        old = names[int(rng.integers(len(names)))]
        new = others[int(rng.integers(len(others)))]
        yield Claim(claim.kind, tuple(new if x == old else x for x in claim.args)), f"relabel {old}→{new}"


def edits(claim: Claim, points: list[str], rng: np.random.Generator) -> Iterator[tuple[Claim, str]]:
    """Every rule edit of one claim: (new claim, description)."""
    if claim.kind in ("length", "angle"):
        yield from _value_changes(claim)
    for kind in SWAPS.get(claim.kind, ()):
        args = (
            claim.args
            if kind != "perpendicular" or claim.kind != "tangent"
            else claim.args[:2] + claim.args[1:3]
        )
        yield Claim(kind, args), f"{claim.kind} → {kind}"
    for kind in SHAPES.get(claim.kind, ()):
        yield Claim(kind, claim.args), f"{claim.kind} → {kind}"
    if claim.kind not in ("length", "angle"):
        yield from _relabels(claim, points, rng)


def _segments(positive: Positive) -> list[tuple[str, str]]:
    """Drawn segments between consecutive named points of each drawn line."""
    return [(a, b) for line in positive.scene.lines for a, b in pairwise(line)]


def false_relations(positive: Positive, rng: np.random.Generator, n: int = 12) -> Iterator[tuple[Claim, str]]:
    """Relations between drawn segments picked at random (parallel, perpendicular, equal);
    most are false on the figure, and the verifier drops the ones that hold."""
    segments = _segments(positive)
    if len(segments) < 2:
        return
    for _ in range(n):
        i, j = rng.choice(len(segments), 2, replace=False)
        (a, b), (c, d) = segments[int(i)], segments[int(j)]
        kind = ("parallel", "perpendicular", "equal")[int(rng.integers(3))]
        yield Claim(kind, (a, b, c, d)), f"false relation {kind}"


class CaptionRules:
    """Caption perturbation: one rule edit of one claim of the positive caption."""

    name = "caption_rules"
    kind = "caption"

    def propose(self, positive: Positive, rng: np.random.Generator) -> Iterator[CaptionCandidate]:
        claims = list(positive.caption.claims)
        points = sorted(positive.scene.points)
        options = [(i, new, change) for i, c in enumerate(claims) for new, change in edits(c, points, rng)]
        options += [
            (int(rng.integers(len(claims))), new, change) for new, change in false_relations(positive, rng)
        ]
        for j in rng.permutation(len(options)):
            i, new, change = options[int(j)]
            yield CaptionCandidate(tuple([*claims[:i], new, *claims[i + 1 :]]), change, (new,))


@geoforge.hookimpl
def geoforge_register_perturbations(register):  # type: ignore[no-untyped-def]
    register(CaptionRules())
