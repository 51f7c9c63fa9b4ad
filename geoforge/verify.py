"""Verification of hard negatives: the engine's judgement, never skipped.

Rules (DESIGN.md, "Verification rules"). An image negative is kept only if

1. its program realises near the positive, with every label legible and every ``mark``
   (right-angle square, equal-length ticks, equal-angle arcs) true of the realised figure;
2. its render differs visibly from the positive's (:attr:`Margins.pixel_diff`);
3. a claim of the positive caption is false on it by a clear margin: an angle off by
   :attr:`Margins.angle_deg`, a length or ratio off by :attr:`Margins.length_rel`, or a point
   gone;
4. it is not the positive under relabelling (canonical program forms differ).

A caption negative is kept only if one of its claims is false on the positive figure by the
same margins and its claim set is not a paraphrase of the positive's (claims are compared in
canonical form: ``ABCD`` = ``DCBA`` = ``BCDA`` for a polygon, ``AB ∥ CD`` = ``DC ∥ BA``...).

Falsity is measured by :func:`violation` in *margin units*: 1.0 means "off by exactly the
margin". It is separate from :func:`geoforge.facts.residual`, which measures how well a fact
holds.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from geoforge.caption import CLAIM_KINDS, Claim, caption_text
from geoforge.errors import GeoforgeError
from geoforge.facts import SHAPES, Fact, check_fact_shape, residual
from geoforge.geometry import angle_at, cross, norm
from geoforge.perturb import Accepted, CaptionCandidate, ImageCandidate, Positive
from geoforge.program import Program
from geoforge.scene import Scene


@dataclass(frozen=True)
class Margins:
    """How wrong a negative must be. ``angle_deg``: degrees; ``length_rel``: relative
    difference of lengths or ratios; ``pixel_diff``: fraction of pixels whose grey level
    differs by more than 64 of 255 between positive and negative renders."""

    angle_deg: float = 8.0
    length_rel: float = 0.12
    pixel_diff: float = 0.001


#: The default margins, as DESIGN.md states them.
DEFAULT_MARGINS = Margins()


def _pts(scene: Scene, names: tuple[str, ...]) -> list[np.ndarray] | None:
    if any(n not in scene.points for n in names):
        return None
    return [scene.points[n] for n in names]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(a, b, 1e-12)


def _line_angle_gap(p: list[np.ndarray], target: float) -> float:
    """|∠(p0p1, p2p3) − target| for undirected lines, radians in [0, π/2]."""
    u, v = p[1] - p[0], p[3] - p[2]
    if norm(u) < 1e-12 or norm(v) < 1e-12:
        return math.inf
    a = math.atan2(cross(u, v), float(np.dot(u, v))) % math.pi
    d = abs(a - target) % math.pi
    return min(d, math.pi - d)


def _fact_violation(fact: Fact, scene: Scene, m: Margins) -> float:
    """How clearly ``fact`` is false on ``scene``, in margin units (0 if it holds)."""
    ang, rel = math.radians(m.angle_deg), m.length_rel
    name, args = fact.name, fact.args
    if name == "shape":
        return max(
            _fact_violation(Fact(f.split()[0], tuple(args[1 + int(i)] for i in f.split()[1:])), scene, m)
            for f in SHAPES[args[0]][1]
        )
    literal_free = {
        "s_angle": args[:3],
        "aconst": args[:4],
        "rconst": args[:4],
        "lconst": args[:2],
        "length": args[:2],
        "angle": args[:3],
    }.get(name, args)
    p = _pts(scene, literal_free)
    if p is None:
        return math.inf
    if name == "perp":
        return _line_angle_gap(p, math.pi / 2) / ang
    if name == "para":
        return _line_angle_gap(p, 0.0) / ang
    if name == "eqangle":
        d = [math.atan2((q := p[i + 1] - p[i])[1], q[0]) for i in range(0, 8, 2)]
        gap = ((d[1] - d[0]) - (d[3] - d[2])) % math.pi
        return min(gap, math.pi - gap) / ang
    if name in ("cong", "contri"):
        pairs = [(0, 1, 2, 3)] if name == "cong" else [(0, 1, 3, 4), (1, 2, 4, 5), (2, 0, 5, 3)]
        return max(_rel(norm(p[a] - p[b]), norm(p[c] - p[d])) for a, b, c, d in pairs) / rel
    if name == "midp":
        mid, a, b = p
        return max(_rel(norm(mid - a), norm(mid - b)), _coll_gap([a, b, mid]) / ang * rel) / rel
    if name == "coll":
        return _coll_gap(p) / ang
    if name in ("cyclic", "circle"):
        if name == "circle":
            radii = [norm(q - p[0]) for q in p[1:]]
            return max(_rel(r, radii[0]) for r in radii) / rel
        a, b, c = p[:3]
        if abs(cross(b - a, c - a)) < 1e-12:
            return math.inf
        center = _circumcentre(a, b, c)
        r = norm(a - center)
        return max(_rel(norm(q - center), r) for q in p[3:]) / rel
    if name == "centroid":
        g, a, b, c = p
        median = norm(a - (b + c) / 2)
        return norm(g - (a + b + c) / 3) / max(median, 1e-12) / rel
    if name in ("eqratio", "simtri", "rconst", "lconst", "length"):
        return residual(fact, scene) / rel
    if name in ("s_angle", "aconst", "angle"):
        return residual(fact, scene) / ang
    if name == "convex":
        return _worst_reflex_turn(p) / ang
    if name in ("ncoll", "npara", "nperp", "diff"):
        # "Not parallel" and the like cannot be clearly false by a margin: a figure a few
        # degrees from parallel is a drawing error, not a different figure. They never make
        # a claim clearly false on their own.
        return 0.0
    raise ValueError(f"no violation measure for `{name}`")


def _worst_reflex_turn(p: list[np.ndarray]) -> float:
    """The largest turn (radians) of a polygon against its prevailing orientation: 0 for a
    convex polygon, the reflex excess of its worst vertex otherwise."""
    turns = []
    for i in range(len(p)):
        e1, e2 = p[i] - p[i - 1], p[(i + 1) % len(p)] - p[i]
        if norm(e1) < 1e-12 or norm(e2) < 1e-12:
            return math.inf
        turns.append(math.atan2(cross(e1, e2), float(np.dot(e1, e2))))
    sign = 1.0 if sum(turns) >= 0 else -1.0
    return max(0.0, *(-sign * t for t in turns))


def _coll_gap(p: list[np.ndarray]) -> float:
    """Largest angle (radians) at which a point leaves the line of the two farthest points."""
    a, b = max(combinations(p, 2), key=lambda ab: norm(ab[0] - ab[1]))
    worst = 0.0
    for q in p:
        if norm(q - a) < 1e-12 or norm(q - b) < 1e-12:
            continue
        worst = max(
            worst,
            min(angle_at(b, a, q), math.pi - angle_at(b, a, q)),
            min(angle_at(a, b, q), math.pi - angle_at(a, b, q)),
        )
    return worst


def _circumcentre(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    ba, ca = b - a, c - a
    d = 2 * cross(ba, ca)
    return a + np.array(
        [(ca[1] * ba.dot(ba) - ba[1] * ca.dot(ca)) / d, (ba[0] * ca.dot(ca) - ca[0] * ba.dot(ba)) / d]
    )


def violation(claim: Claim, scene: Scene, margins: Margins = DEFAULT_MARGINS) -> float:
    """How clearly ``claim`` is false on ``scene``, in margin units: the largest violation of
    its facts; ``inf`` if it names a point the scene does not have. ≥ 1 means clearly false."""
    return max(_fact_violation(f, scene, margins) for f in claim.facts())


def claim_arity(kind: str) -> int:
    """The number of arguments a claim of ``kind`` takes (points, then a value for ``length``
    and ``angle``). Raises KeyError for an unknown kind."""
    k = CLAIM_KINDS[kind]
    used = [int(a) for f in k.facts for a in f.split()[1:] if a.isdigit()]
    used += [int(m) for t in (*k.descriptive, k.terse) for m in re.findall(r"\{(\d+)\}", t)]
    return max(used) + 1


def claim_problem(claim: object) -> str | None:
    """Why ``claim`` is not a well-formed :class:`Claim`, or ``None`` if it is: it must be a
    Claim of a kind in :data:`geoforge.caption.CLAIM_KINDS` with a tuple of exactly
    :func:`claim_arity` non-empty strings, and a ``length``/``angle`` value must parse. Whether
    its points exist in a figure is not checked here (a missing point makes a claim false)."""
    if not isinstance(claim, Claim):
        return f"not a Claim: {claim!r}"
    if claim.kind not in CLAIM_KINDS:
        return f"unknown claim kind {claim.kind!r}"
    if not isinstance(claim.args, tuple) or not all(isinstance(a, str) and a for a in claim.args):
        return f"claim `{claim.kind}` needs a tuple of non-empty strings, got {claim.args!r}"
    want = claim_arity(claim.kind)
    if len(claim.args) != want:
        return f"claim `{claim.kind}` takes {want} arguments, got {len(claim.args)}: {claim.args!r}"
    try:
        for fact in claim.facts():
            check_fact_shape(fact)
    except GeoforgeError as e:
        return f"claim `{' '.join(claim.to_json())}`: {e}"
    return None


# --- canonical claims -------------------------------------------------------------------------

_PAIRS = {"parallel", "perpendicular", "equal"}
_POLYGONS = {
    "square",
    "rectangle",
    "rhombus",
    "parallelogram",
    "cyclic_quadrilateral",
    "triangle",
    "equilateral",
}


def claim_key(claim: Claim) -> tuple[str, ...]:
    """A canonical form of a claim: symmetric readings of the same statement get the same key
    (``AB ∥ CD`` = ``BA ∥ DC`` = ``CD ∥ AB``; a polygon's rotations and reversals; the order of
    a segment's ends; the order of points on a circle)."""
    k, a = claim.kind, claim.args
    if k in _PAIRS:
        s1, s2 = tuple(sorted(a[:2])), tuple(sorted(a[2:4]))
        return (k, *min(s1 + s2, s2 + s1))
    if k in _POLYGONS:
        n = len(a)
        forms = [a[i:] + a[:i] for i in range(n)]
        forms += [tuple(reversed(f)) for f in forms]
        return (k, *min(forms))
    if k in ("length",):
        return (k, *sorted(a[:2]), a[2])
    if k == "angle":
        return (k, *min(a[:3], tuple(reversed(a[:3]))), a[3])
    if k in ("midpoint", "chord", "diameter", "on_segment"):
        return (
            (k, a[0], *sorted(a[1:3]), *a[3:])
            if k in ("midpoint", "on_segment")
            else (k, *sorted(a[:2]), *a[2:])
        )
    if k in ("circumcentre", "incentre", "centroid", "orthocentre"):
        return (k, a[0], *sorted(a[1:]))
    if k in ("isosceles", "right"):
        return (k, a[0], *sorted(a[1:]))
    return (k, *a)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The judgement on one candidate: ``ok``, the rejection ``reason`` (``""`` if ok) and the
    :class:`Accepted` negative when ok."""

    ok: bool
    reason: str = ""
    accepted: Accepted | None = None


def _gray(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def pixel_difference(a: bytes, b: bytes) -> float:
    """Fraction of pixels whose grey level differs by more than 64 (of 255) between two PNGs
    of the same size; 1.0 if the sizes differ."""
    x, y = _gray(a), _gray(b)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y) > 64).mean())


def verify_image(
    positive: Positive,
    candidate: ImageCandidate,
    positive_png: bytes,
    plugin: str,
    margins: Margins = DEFAULT_MARGINS,
    size: int = 448,
) -> Verdict:
    """Apply the image-negative rules to ``candidate``; never raises for a bad candidate."""
    from geoforge.render import layout
    from geoforge.render.draw import paint

    if not isinstance(candidate.program, Program):
        return Verdict(False, "malformed candidate")
    if candidate.program.canonical_hash() == positive.program.canonical_hash():
        return Verdict(False, "same program as the positive")
    try:
        scene = dataclasses.replace(_realise_near(candidate, positive), fixed_unit=positive.scene.unit)
    except GeoforgeError:
        return Verdict(False, "does not realise")
    if false_marks(scene):
        return Verdict(False, "a mark does not hold")
    plan = layout(scene, size)
    if plan.clashes:
        return Verdict(False, "labels not legible")
    violated = [(c, v) for c in positive.caption.claims if (v := violation(c, scene, margins)) >= 1.0]
    if not violated:
        return Verdict(False, "positive caption not false by the margin")
    png = paint(plan, "png")
    diff = pixel_difference(png, positive_png)
    if diff < margins.pixel_diff:
        return Verdict(False, "not visibly different")
    return Verdict(True, accepted=Accepted(plugin, candidate, violated, png, diff))


def false_marks(scene: Scene, tol: float = 1e-6) -> list[str]:
    """The ``mark right``/``mark equal``/``mark equalangle`` statements of ``scene``'s program
    that do not hold on it (an angle off 90° or from its partner by more than ``tol`` radians,
    lengths differing by more than ``tol`` relative). A render shows marks as facts, so a
    negative must not carry a false one."""
    p = scene.points
    bad = []
    for st in scene.program.statements:
        if st.kind != "mark" or any(n not in p for n in st.points):
            continue
        a = st.points
        if st.name == "right":
            ok = abs(angle_at(p[a[0]], p[a[1]], p[a[2]]) - math.pi / 2) <= tol
        elif st.name == "equal":
            lengths = [norm(p[a[i]] - p[a[i + 1]]) for i in range(0, len(a) - 1, 2)]
            ok = all(_rel(x, lengths[0]) <= tol for x in lengths)
        elif st.name == "equalangle":
            angles = [angle_at(p[a[i]], p[a[i + 1]], p[a[i + 2]]) for i in range(0, len(a) - 2, 3)]
            ok = all(abs(x - angles[0]) <= tol for x in angles)
        else:
            continue
        if not ok:
            bad.append(st.text())
    return bad


def _realise_near(candidate: ImageCandidate, positive: Positive) -> Scene:
    from geoforge.realise import realise

    return realise(candidate.program, seed=positive.scene.seed, max_tries=3, reference=positive.scene.points)


def verify_caption(
    positive: Positive,
    candidate: CaptionCandidate,
    plugin: str,
    rng: np.random.Generator,
    margins: Margins = DEFAULT_MARGINS,
) -> Verdict:
    """Apply the caption-negative rules to ``candidate``; never raises for a bad candidate."""
    if not isinstance(candidate.claims, tuple | list) or any(claim_problem(c) for c in candidate.claims):
        return Verdict(False, "malformed claims")
    if not candidate.claims:
        return Verdict(False, "empty caption")
    keys = {claim_key(c) for c in candidate.claims}
    violated = [(c, v) for c in candidate.claims if (v := violation(c, positive.scene, margins)) >= 1.0]
    if keys == {claim_key(c) for c in positive.caption.claims}:
        return Verdict(False, "paraphrase of the positive")
    if not violated:
        return Verdict(False, "no claim false by the margin")
    text = candidate.text or negative_text(positive, candidate.claims, rng)
    return Verdict(True, accepted=Accepted(plugin, candidate, violated, text=text))


class _Variants:
    """Stands in for the rng of :func:`geoforge.caption.caption_text`, which draws one
    descriptive variant per claim with ``rng.integers(8)``: hands out chosen variants."""

    def __init__(self, variants: list[int]) -> None:
        self._next = iter(variants)

    def integers(self, high: int) -> int:
        return next(self._next)


def _positive_variant(claim: Claim, text: str) -> int | None:
    """The descriptive variant a positive caption ``text`` words ``claim`` with, if any."""
    for v in range(len(CLAIM_KINDS[claim.kind].descriptive)):
        s = claim.text("descriptive", v)
        if f"In the figure, {s}." in text or f". {s[0].upper() + s[1:]}." in text:
            return v
    return None


def negative_text(
    positive: Positive, claims: tuple[Claim, ...] | list[Claim], rng: np.random.Generator
) -> str:
    """The words of a caption negative: the positive's style and, so that the two differ only
    where the claims do, the positive's wording of every claim they share (its descriptive
    variant) and its question. New claims get a variant drawn from ``rng``."""
    caption = positive.caption
    question = caption.question if caption.style == "question" else ""
    if caption.style != "descriptive":
        return caption_text(list(claims), caption.style, rng, question)
    variants = []
    for c in claims:
        v = _positive_variant(c, caption.text) if c in caption.claims else None
        variants.append(int(rng.integers(8)) if v is None else v)
    return caption_text(list(claims), caption.style, _Variants(variants))  # type: ignore[arg-type]
