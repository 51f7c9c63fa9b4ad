"""How clearly a claim is false on a figure: violations in margin units, and canonical claims.

Falsity is measured by :func:`violation` in *margin units*: 1.0 means "off by exactly the
margin" (DESIGN.md, "Verification rules"). It is separate from
:func:`geoforge.facts.residual`, which measures how well a fact holds. Angles are plain angles
wherever a caption words them as ``∠ABC``; a point off its line or circle counts by its distance
as a share of the figure size (:attr:`Margins.incidence`), since that is what the image shows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import combinations

import numpy as np

from geoforge.caption.claims import CLAIM_KINDS, VALUE_KINDS, Claim
from geoforge.errors import GeoforgeError
from geoforge.facts import SHAPES, Fact, check_fact_shape, drawn_radii, residual
from geoforge.geometry import angle_at, cross, norm
from geoforge.scene import Scene


@dataclass(frozen=True)
class Margins:
    """How wrong a negative must be.

    ``angle_deg``: degrees; ``length_rel``: relative difference of lengths or ratios;
    ``pixel_diff``: fraction of pixels whose grey level differs by more than 64 of 255 between
    positive and negative renders; ``incidence``: how far a point must leave its line or
    circle, as a share of the figure size (the diagonal of the points' bounding box);
    ``similarity``: how far, as a share of the figure size, some point of an image negative
    must stay from the positive after the best similarity alignment when no length is printed;
    ``ink_kept``: the share of the positive's ink an image negative must keep in place.
    At 448 px the figure size is about 414 px (median of 100 ``mmgeo-4k`` figures), so 3% is
    about 12 px (11 px at the 10th percentile), nine stroke widths of 1.36 px; 1% is 4 px, three
    stroke widths, which reads as a drawing error. The audit of issue 8 found points left 0.7–2.9%
    off their lines that way. ``benchmarks/margins.py`` reproduces these figures.
    """

    angle_deg: float = 8.0
    length_rel: float = 0.12
    pixel_diff: float = 0.001
    incidence: float = 0.03
    similarity: float = 0.03
    ink_kept: float = 0.5


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


def _fact_violation(fact: Fact, scene: Scene, m: Margins, lengths_visible: bool = True) -> float:
    """How clearly ``fact`` is false on ``scene``, in margin units (0 if it holds). With
    ``lengths_visible`` False (the figure prints no length) a ``length`` value cannot be seen
    and never counts."""
    ang, rel = math.radians(m.angle_deg), m.length_rel
    off = m.incidence * scene.scale
    name, args = fact.name, fact.args
    if name == "shape":
        return max(
            _fact_violation(Fact(f.split()[0], tuple(args[1 + int(i)] for i in f.split()[1:])), scene, m)
            for f in SHAPES[args[0]][1]
        )
    if name == "length" and not lengths_visible:
        return 0.0
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
    if name == "eqangle_plain":
        return abs(angle_at(p[0], p[1], p[2]) - angle_at(p[3], p[4], p[5])) / ang
    if name == "drawn_circle":
        radii = drawn_radii(scene, args[0])
        if not radii:
            return math.inf
        return min(max(abs(norm(q - p[0]) - r) for q in p[1:]) for r in radii) / off
    if name == "eqangle":
        d = [math.atan2((q := p[i + 1] - p[i])[1], q[0]) for i in range(0, 8, 2)]
        gap = ((d[1] - d[0]) - (d[3] - d[2])) % math.pi
        return min(gap, math.pi - gap) / ang
    if name in ("cong", "contri"):
        pairs = [(0, 1, 2, 3)] if name == "cong" else [(0, 1, 3, 4), (1, 2, 4, 5), (2, 0, 5, 3)]
        return max(_rel(norm(p[a] - p[b]), norm(p[c] - p[d])) for a, b, c, d in pairs) / rel
    if name == "midp":
        mid, a, b = p
        return max(_rel(norm(mid - a), norm(mid - b)) / rel, _off_line([a, b, mid]) / off)
    if name == "coll":
        return _off_line(p) / off
    if name == "circle":
        radii = [norm(q - p[0]) for q in p[1:]]
        return max(_rel(r, radii[0]) for r in radii) / rel
    if name == "cyclic":
        return min(_off_circle(p, i) for i in combinations(range(len(p)), 3)) / off
    if name == "centroid":
        g, a, b, c = p
        median = norm(a - (b + c) / 2)
        return norm(g - (a + b + c) / 3) / max(median, 1e-12) / rel
    if name in ("eqratio", "simtri", "rconst", "lconst", "length"):
        return residual(fact, scene) / rel
    if name in ("s_angle", "aconst", "angle"):
        return residual(fact, scene) / ang
    if name in ("ncoll", "npara", "nperp", "diff", "convex"):
        # "Not parallel" and the like cannot be clearly false by a margin: a figure a few
        # degrees from parallel is a drawing error, not a different figure. Convexity is the
        # order a polygon is named in, which a picture does not show ("DBCA cyclic" names the
        # same four concyclic points as "ABCD cyclic"). They never make a claim clearly false
        # on their own.
        return 0.0
    raise ValueError(f"no violation measure for `{name}`")


def _off_line(p: list[np.ndarray]) -> float:
    """Largest distance (diagram units) of a point from the line through the two farthest."""
    a, b = max(combinations(p, 2), key=lambda ab: norm(ab[0] - ab[1]))
    base = norm(b - a)
    if base < 1e-12:
        return 0.0
    return max(abs(cross(b - a, q - a)) / base for q in p)


def _off_circle(p: list[np.ndarray], three: tuple[int, ...]) -> float:
    """Largest distance (diagram units) of the other points from the circle through three."""
    a, b, c = (p[i] for i in three)
    if abs(cross(b - a, c - a)) < 1e-12 * max(norm(b - a), norm(c - a), 1e-12) ** 2:
        return math.inf
    center = _circumcentre(a, b, c)
    r = norm(a - center)
    return max((abs(norm(q - center) - r) for i, q in enumerate(p) if i not in three), default=0.0)


def _circumcentre(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    ba, ca = b - a, c - a
    d = 2 * cross(ba, ca)
    return a + np.array(
        [(ca[1] * ba.dot(ba) - ba[1] * ca.dot(ca)) / d, (ba[0] * ca.dot(ca) - ca[0] * ba.dot(ba)) / d]
    )


def violation(
    claim: Claim, scene: Scene, margins: Margins = DEFAULT_MARGINS, lengths_visible: bool = True
) -> float:
    """How clearly ``claim`` is false on ``scene``, in margin units: the largest violation of
    its facts; ``inf`` if it names a point the scene does not have or a circle it does not
    draw. ≥ 1 means clearly false. ``lengths_visible=False`` ignores length values (a figure
    that prints no length shows no scale)."""
    return max(_fact_violation(f, scene, margins, lengths_visible) for f in claim.facts())


#: How a negative is false, from the most to the least informative (DESIGN.md).
HOW = ("geometry", "value", "undrawn circle", "absent point")


def how_false(claim: Claim, scene: Scene) -> str:
    """How a clearly false ``claim`` is false on ``scene``: ``absent point`` (it names a point
    the figure does not have), ``undrawn circle`` (a circle about a point the figure draws no
    circle about), ``value`` (a length or angle value) or ``geometry`` (a relation among drawn
    points)."""
    if any(p not in scene.points for f in claim.facts() for p in f.points):
        return "absent point"
    if any(f.name == "drawn_circle" and not drawn_radii(scene, f.args[0]) for f in claim.facts()):
        return "undrawn circle"
    return "value" if claim.kind in VALUE_KINDS else "geometry"


def how_false_of(violated: list[tuple[Claim, float]], scene: Scene) -> str:
    """The most informative :func:`how_false` over a negative's violated claims."""
    return min((how_false(c, scene) for c, _ in violated), key=HOW.index)


@cache
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
    :func:`claim_arity` non-empty strings, a ``length``/``angle`` value must parse, and it must
    not be degenerate (:func:`_degenerate`). Whether its points exist in a figure is not
    checked here (a missing point makes a claim false). Cached for well-typed claims (every
    caption candidate repeats most of its positive's claims)."""
    if not isinstance(claim, Claim):
        return f"not a Claim: {claim!r}"
    if (
        isinstance(claim.kind, str)
        and isinstance(claim.args, tuple)
        and all(isinstance(a, str) for a in claim.args)
    ):
        return _claim_problem(claim)
    return _claim_problem.__wrapped__(claim)


@lru_cache(maxsize=65536)
def _claim_problem(claim: Claim) -> str | None:
    """:func:`claim_problem` of a :class:`Claim`."""
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
    return _degenerate(claim)


#: Point pairs (argument indices) of a fact that must name two different points; predicates
#: not listed need all their points different.
_SEGMENTS = {
    "para": ((0, 1), (2, 3)),
    "perp": ((0, 1), (2, 3)),
    "cong": ((0, 1), (2, 3)),
    "eqangle_plain": ((0, 1), (2, 1), (0, 2), (3, 4), (5, 4), (3, 5)),
    "angle": ((0, 1), (2, 1), (0, 2)),
    "length": ((0, 1),),
    "eqratio": ((0, 1), (2, 3), (4, 5), (6, 7)),
    "rconst": ((0, 1), (2, 3)),
}
#: The largest printed value a caption may state (a length in given units, or degrees).
MAX_VALUE = 1e6


def _degenerate(claim: Claim) -> str | None:
    """Why a well-formed claim says nothing about a figure, or ``None``: a segment or angle
    with coinciding ends (``AA = BC``, ``∠BAB``, ``A midpoint of AB``), two relations of one
    line with itself (``AB ⊥ BA``), a length that is not positive or an angle not strictly
    between 0° and 180°, or a value beyond :data:`MAX_VALUE`."""
    text = " ".join(claim.to_json())
    for fact in claim.facts():
        pts = fact.points
        pairs = _SEGMENTS.get(fact.name)
        if pairs is None:
            if len(set(pts)) != len(pts):
                return f"claim `{text}` names a point twice in `{fact.text()}`"
            continue
        if any(pts[i] == pts[j] for i, j in pairs):
            return f"claim `{text}` has a segment or angle with coinciding ends in `{fact.text()}`"
        if fact.name in ("para", "perp", "cong") and {pts[0], pts[1]} == {pts[2], pts[3]}:
            return f"claim `{text}` relates line {pts[0]}{pts[1]} to itself"
    if claim.kind in VALUE_KINDS:
        from geoforge.exact import parse_value

        value = float(parse_value(claim.args[-1]))
        low, high = (0.0, 180.0) if claim.kind == "angle" else (0.0, MAX_VALUE)
        if not low < value < high:
            unit = "" if claim.kind == "length" else "°"
            return f"claim `{text}`: {value:g}{unit} is not between {low:g}{unit} and {high:g}{unit}"
    return None


# --- canonical claims -------------------------------------------------------------------------

_PAIRS = {"parallel", "perpendicular", "equal"}
_POLYGONS = {
    "square",
    "rectangle",
    "rhombus",
    "parallelogram",
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
    if k in ("cyclic_quadrilateral", "concyclic"):
        return (k, *sorted(a))
    if k in ("circumcentre", "incentre", "centroid", "orthocentre"):
        return (k, a[0], *sorted(a[1:]))
    if k in ("isosceles", "right"):
        return (k, a[0], *sorted(a[1:]))
    return (k, *a)
